package deploy

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/api/krusty"
	ktypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/dexbridge/dexbridge/internal/app"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestKubernetes renders deploy/kubernetes as `kubectl apply -k` would, decodes every
// object strictly into its Kubernetes API type, and checks what the API server
// would not: that every reference resolves within the set, and that every
// dexbridge container runs real services with a configuration that passes
// `dexbridge check`, sets only variables dexbridge reads, and is probed where
// dexbridge serves its health.
func TestKubernetes(t *testing.T) {
	m := render(t, "kubernetes")
	cmds := commands(t)
	img := readImage(t)

	t.Run("names", func(t *testing.T) { m.checkNames(t) })
	t.Run("workloads", func(t *testing.T) { m.checkWorkloads(t) })
	t.Run("services", func(t *testing.T) { m.checkServices(t) })
	t.Run("disruption budgets", func(t *testing.T) { m.checkBudgets(t) })
	var nats *natsCluster
	t.Run("nats", func(t *testing.T) { nats = m.checkNATS(t) })
	ran := map[string][]string{}
	for _, w := range m.workloads {
		for _, c := range w.template.Spec.Containers {
			if imageName(c.Image) != "dexbridge" {
				continue
			}
			services, err := servicesRun(cmds, c.Args)
			for _, s := range services {
				ran[s] = append(ran[s], w.name)
			}
			t.Run(w.name, func(t *testing.T) {
				if err != nil {
					t.Errorf("args %q: %v", c.Args, err)
				}
				m.checkDexbridge(t, img, nats, w, c, services)
			})
		}
	}
	for _, s := range app.ServiceNames() {
		if len(ran[s]) != 1 {
			t.Errorf("dexbridge's %s runs in %d workloads %v, want one (a role per Deployment)", s, len(ran[s]), ran[s])
		}
	}
}

// manifests are the rendered objects by kind.
type manifests struct {
	namespaces []*corev1.Namespace
	configMaps map[string]*corev1.ConfigMap // by namespace/name
	secrets    map[string]*corev1.Secret
	claims     map[string]*corev1.PersistentVolumeClaim
	services   []*corev1.Service
	budgets    []*policyv1.PodDisruptionBudget
	workloads  []workload
	all        []metav1.Object
}

// workload is a Deployment or StatefulSet: what its pods are.
type workload struct {
	kind, namespace, name string
	replicas              int32
	selector              *metav1.LabelSelector
	template              corev1.PodTemplateSpec
	claimTemplates        []corev1.PersistentVolumeClaim
	serviceName           string // a StatefulSet's headless service
}

func key(namespace, name string) string { return namespace + "/" + name }

// render builds the kustomization in dir the way `kubectl apply -k` does, with the
// secrets it generates from files taken from their committed examples, and decodes
// every object strictly.
func render(t *testing.T, dir string) manifests {
	t.Helper()
	const root = "/kustomization"
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		return mem.WriteFile(path.Join(root, filepath.ToSlash(rel)), raw)
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k ktypes.Kustomization
	if err := k8syaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	for _, g := range k.SecretGenerator {
		files := slices.Clone(g.EnvSources)
		for _, src := range g.FileSources {
			_, file, ok := strings.Cut(src, "=")
			if !ok {
				file = src
			}
			files = append(files, file)
		}
		for _, file := range files {
			example, err := os.ReadFile(filepath.Join(dir, file+".example"))
			if err != nil {
				t.Fatalf("secret %s: %s has no example beside it: %v", g.Name, file, err)
			}
			if err := mem.WriteFile(path.Join(root, file), example); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, root)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	m := manifests{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, claims: map[string]*corev1.PersistentVolumeClaim{}}
	for _, r := range res.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, err := decodeStrict(y)
		if err != nil {
			t.Errorf("%s %s: %v", r.GetKind(), r.GetName(), err)
			continue
		}
		m.all = append(m.all, obj)
		switch o := obj.(type) {
		case *corev1.Namespace:
			m.namespaces = append(m.namespaces, o)
		case *corev1.ConfigMap:
			m.configMaps[key(o.Namespace, o.Name)] = o
		case *corev1.Secret:
			m.secrets[key(o.Namespace, o.Name)] = o
		case *corev1.PersistentVolumeClaim:
			m.claims[key(o.Namespace, o.Name)] = o
		case *corev1.Service:
			m.services = append(m.services, o)
		case *policyv1.PodDisruptionBudget:
			m.budgets = append(m.budgets, o)
		case *appsv1.Deployment:
			m.workloads = append(m.workloads, workload{kind: "Deployment", namespace: o.Namespace, name: o.Name,
				replicas: replicas(o.Spec.Replicas), selector: o.Spec.Selector, template: o.Spec.Template})
		case *appsv1.StatefulSet:
			m.workloads = append(m.workloads, workload{kind: "StatefulSet", namespace: o.Namespace, name: o.Name,
				replicas: replicas(o.Spec.Replicas), selector: o.Spec.Selector, template: o.Spec.Template,
				claimTemplates: o.Spec.VolumeClaimTemplates, serviceName: o.Spec.ServiceName})
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// decodeStrict decodes one object into its API type, refusing unknown and
// duplicate fields, and kinds this deployment has no business creating.
func decodeStrict(y []byte) (metav1.Object, error) {
	var tm metav1.TypeMeta
	if err := k8syaml.Unmarshal(y, &tm); err != nil {
		return nil, err
	}
	var obj metav1.Object
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		obj = &corev1.Namespace{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1 Secret":
		obj = &corev1.Secret{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "v1 PersistentVolumeClaim":
		obj = &corev1.PersistentVolumeClaim{}
	case "apps/v1 Deployment":
		obj = &appsv1.Deployment{}
	case "apps/v1 StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "policy/v1 PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	default:
		return nil, fmt.Errorf("%s %s: a kind this test does not know", tm.APIVersion, tm.Kind)
	}
	if err := k8syaml.UnmarshalStrict(y, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// TestDecodeStrictRefusesUnknownFields keeps the decoder strict: a misspelt field
// is an error, not a field the API server would silently drop.
func TestDecodeStrictRefusesUnknownFields(t *testing.T) {
	for name, doc := range map[string]string{
		"misspelt field":           "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n",
		"field at the wrong level": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n    - port: 80\n      path: /healthz\n",
		"duplicate field":          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n",
		"wrong type":               "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec: {maxUnavailable: [1]}\n",
		"unknown kind":             "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
	} {
		if _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("%s: decoded, want an error", name)
		}
	}
	if _, err := decodeStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 2\n")); err != nil {
		t.Errorf("a valid Deployment: %v", err)
	}
}

func (m manifests) checkNames(t *testing.T) {
	for _, o := range m.all {
		for _, msg := range validation.IsDNS1123Subdomain(o.GetName()) {
			t.Errorf("name %q: %s", o.GetName(), msg)
		}
		for k, v := range o.GetLabels() {
			for _, msg := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				t.Errorf("%s: label %s=%s: %s", o.GetName(), k, v, msg)
			}
		}
		if _, ok := o.(*corev1.Namespace); !ok && !slices.ContainsFunc(m.namespaces, func(n *corev1.Namespace) bool { return n.Name == o.GetNamespace() }) {
			t.Errorf("%s: namespace %q is not in the set", o.GetName(), o.GetNamespace())
		}
	}
}

// checkWorkloads checks what every pod needs: a selector that matches its own pods,
// requests and limits, probes, and references that resolve within the set.
func (m manifests) checkWorkloads(t *testing.T) {
	for _, w := range m.workloads {
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(w.template.Labels)) {
			t.Errorf("%s %s: selector %v does not select its pods %v (%v)", w.kind, w.name, w.selector, w.template.Labels, err)
		}
		spec := w.template.Spec
		volumes := map[string]corev1.Volume{}
		for _, v := range spec.Volumes {
			volumes[v.Name] = v
			m.checkVolume(t, w, v)
		}
		for _, c := range spec.Containers {
			where := fmt.Sprintf("%s %s container %s", w.kind, w.name, c.Name)
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, okReq := c.Resources.Requests[r]
				lim, okLim := c.Resources.Limits[r]
				if !okReq || !okLim {
					t.Errorf("%s: want a %s request and limit, got %v and %v", where, r, c.Resources.Requests, c.Resources.Limits)
				} else if req.Cmp(lim) > 0 {
					t.Errorf("%s: %s request %s above its limit %s", where, r, req.String(), lim.String())
				}
			}
			if c.LivenessProbe == nil || c.ReadinessProbe == nil {
				t.Errorf("%s: want a liveness and a readiness probe", where)
			}
			for _, p := range c.Ports {
				for _, msg := range validation.IsValidPortName(p.Name) {
					t.Errorf("%s: port %q: %s", where, p.Name, msg)
				}
			}
			for _, vm := range c.VolumeMounts {
				_, isVolume := volumes[vm.Name]
				isClaim := slices.ContainsFunc(w.claimTemplates, func(pvc corev1.PersistentVolumeClaim) bool { return pvc.Name == vm.Name })
				if !isVolume && !isClaim {
					t.Errorf("%s: mount %s names no volume or claim template", where, vm.MountPath)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					s, ok := m.secrets[key(w.namespace, r.Name)]
					if !ok {
						t.Errorf("%s: %s: secret %s is not in the set", where, e.Name, r.Name)
					} else if _, ok := secretData(s)[r.Key]; !ok {
						t.Errorf("%s: %s: secret %s has no key %s", where, e.Name, r.Name, r.Key)
					}
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					cm, ok := m.configMaps[key(w.namespace, r.Name)]
					if !ok {
						t.Errorf("%s: %s: config map %s is not in the set", where, e.Name, r.Name)
					} else if _, ok := cm.Data[r.Key]; !ok {
						t.Errorf("%s: %s: config map %s has no key %s", where, e.Name, r.Name, r.Key)
					}
				}
			}
			if len(c.EnvFrom) > 0 {
				t.Errorf("%s: envFrom hides which variables are set; name each", where)
			}
		}
	}
}

func (m manifests) checkVolume(t *testing.T, w workload, v corev1.Volume) {
	t.Helper()
	var have map[string][]byte
	var items []corev1.KeyToPath
	switch {
	case v.ConfigMap != nil:
		cm, ok := m.configMaps[key(w.namespace, v.ConfigMap.Name)]
		if !ok {
			t.Errorf("%s %s: volume %s: config map %s is not in the set", w.kind, w.name, v.Name, v.ConfigMap.Name)
			return
		}
		have, items = configMapData(cm), v.ConfigMap.Items
	case v.Secret != nil:
		s, ok := m.secrets[key(w.namespace, v.Secret.SecretName)]
		if !ok {
			t.Errorf("%s %s: volume %s: secret %s is not in the set", w.kind, w.name, v.Name, v.Secret.SecretName)
			return
		}
		have, items = secretData(s), v.Secret.Items
	case v.PersistentVolumeClaim != nil:
		if _, ok := m.claims[key(w.namespace, v.PersistentVolumeClaim.ClaimName)]; !ok {
			t.Errorf("%s %s: volume %s: claim %s is not in the set", w.kind, w.name, v.Name, v.PersistentVolumeClaim.ClaimName)
		}
	case v.EmptyDir != nil:
	default:
		t.Errorf("%s %s: volume %s: a kind of volume this test does not know", w.kind, w.name, v.Name)
	}
	for _, it := range items {
		if _, ok := have[it.Key]; !ok {
			t.Errorf("%s %s: volume %s: no key %s", w.kind, w.name, v.Name, it.Key)
		}
	}
}

func configMapData(cm *corev1.ConfigMap) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range cm.Data {
		out[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		out[k] = v
	}
	return out
}

func secretData(s *corev1.Secret) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range s.Data {
		out[k] = v
	}
	for k, v := range s.StringData {
		out[k] = []byte(v)
	}
	return out
}

// selected are the workloads of a namespace whose pods a selector picks.
func (m manifests) selected(namespace string, sel labels.Selector) []workload {
	var out []workload
	for _, w := range m.workloads {
		if w.namespace == namespace && sel.Matches(labels.Set(w.template.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

// containerPort resolves a target port (a number or a port name) on a pod.
func containerPort(spec corev1.PodSpec, port intstr.IntOrString) (int32, bool) {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

// checkServices checks that every service selects pods and that each of its ports
// is a port those pods declare.
func (m manifests) checkServices(t *testing.T) {
	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 {
			t.Errorf("service %s: no selector", s.Name)
			continue
		}
		ws := m.selected(s.Namespace, labels.SelectorFromSet(s.Spec.Selector))
		if len(ws) == 0 {
			t.Errorf("service %s: selector %v matches no workload's pods", s.Name, s.Spec.Selector)
		}
		for _, w := range ws {
			for _, p := range s.Spec.Ports {
				target := p.TargetPort
				if target.Type == intstr.Int && target.IntVal == 0 {
					target = intstr.FromInt32(p.Port)
				}
				if _, ok := containerPort(w.template.Spec, target); !ok {
					t.Errorf("service %s: port %s targets %s, which %s %s does not declare", s.Name, p.Name, target.String(), w.kind, w.name)
				}
			}
		}
	}
	for _, w := range m.workloads {
		if w.kind != "StatefulSet" {
			continue
		}
		if !slices.ContainsFunc(m.services, func(s *corev1.Service) bool {
			return s.Namespace == w.namespace && s.Name == w.serviceName && s.Spec.ClusterIP == corev1.ClusterIPNone
		}) {
			t.Errorf("StatefulSet %s: serviceName %q is no headless service of the set", w.name, w.serviceName)
		}
	}
}

// checkBudgets checks that every workload has one disruption budget and that it lets
// a node drain (one pod at a time).
func (m manifests) checkBudgets(t *testing.T) {
	covered := map[string]int{}
	for _, b := range m.budgets {
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil {
			t.Errorf("budget %s: %v", b.Name, err)
			continue
		}
		ws := m.selected(b.Namespace, sel)
		if len(ws) != 1 {
			t.Errorf("budget %s: selects %d workloads, want one", b.Name, len(ws))
			continue
		}
		w := ws[0]
		covered[w.name]++
		switch {
		case b.Spec.MaxUnavailable != nil && b.Spec.MinAvailable != nil:
			t.Errorf("budget %s: both maxUnavailable and minAvailable", b.Name)
		case b.Spec.MaxUnavailable != nil:
			if v, err := intstr.GetScaledValueFromIntOrPercent(b.Spec.MaxUnavailable, int(w.replicas), true); err != nil || v < 1 {
				t.Errorf("budget %s: maxUnavailable %s lets no pod of %s be evicted: a node drain would hang", b.Name, b.Spec.MaxUnavailable.String(), w.name)
			}
		case b.Spec.MinAvailable != nil:
			if v, err := intstr.GetScaledValueFromIntOrPercent(b.Spec.MinAvailable, int(w.replicas), true); err != nil || int32(v) >= w.replicas {
				t.Errorf("budget %s: minAvailable %s of %d replicas lets no pod be evicted: a node drain would hang", b.Name, b.Spec.MinAvailable.String(), w.replicas)
			}
		default:
			t.Errorf("budget %s: neither maxUnavailable nor minAvailable", b.Name)
		}
	}
	for _, w := range m.workloads {
		if covered[w.name] != 1 {
			t.Errorf("%s %s: %d disruption budgets, want one", w.kind, w.name, covered[w.name])
		}
	}
}

// natsCluster is the NATS server set the manifests run, as nats-server read its
// configuration.
type natsCluster struct {
	workload   workload
	clientPort int32
}

// checkNATS finds the StatefulSet that runs nats-server and checks its configuration
// with nats-server's own parser: JetStream synced to disk on the pods' own volumes,
// one route per replica by its stable name, and probes on its monitoring port.
func (m manifests) checkNATS(t *testing.T) *natsCluster {
	var found []*natsCluster
	for _, w := range m.workloads {
		for _, c := range w.template.Spec.Containers {
			args := append(slices.Clone(c.Command), c.Args...)
			if len(args) == 0 || path.Base(args[0]) != "nats-server" {
				continue
			}
			if w.kind != "StatefulSet" {
				t.Errorf("%s %s runs nats-server: JetStream needs a StatefulSet (stable names and volumes)", w.kind, w.name)
				continue
			}
			found = append(found, m.checkNATSServer(t, w, c, args))
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d StatefulSets run nats-server, want one", len(found))
	}
	return found[0]
}

func (m manifests) checkNATSServer(t *testing.T, w workload, c corev1.Container, args []string) *natsCluster {
	t.Helper()
	i := slices.IndexFunc(args, func(a string) bool { return a == "-c" || a == "--config" })
	if i < 0 || i+1 == len(args) {
		t.Fatalf("%s: %q names no configuration file", w.name, args)
	}
	cfs := m.containerFS(t, w, c, image{workdir: "/"})
	if !cfs.exists(args[i+1]) {
		t.Fatalf("%s: %s is not mounted", w.name, args[i+1])
	}
	pod := w.name + "-0"
	opts := natsOptions(t, withTestCerts(t, cfs, cfs.host(args[i+1])), m.env(t, w, c, pod))
	if opts.TLSConfig == nil || opts.Cluster.TLSConfig == nil {
		t.Error("clients or routes in clear: NATS carries employees' data between the pods")
	} else if opts.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Error("cluster routes: want mutual TLS (verify: true), so only the cluster's nodes join it")
	}
	if opts.Authorization == "" && opts.Username == "" && len(opts.Nkeys) == 0 && len(opts.Users) == 0 {
		t.Error("no authorization: any pod of the cluster could read the streams")
	}
	checkJetStream(t, opts, func(dir string) bool {
		return slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
			return vm.MountPath == dir && slices.ContainsFunc(w.claimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == vm.Name })
		})
	})
	if opts.ServerName != pod {
		t.Errorf("server_name %q, want the pod's name %q so each node's is its own", opts.ServerName, pod)
	}
	if w.replicas < 3 {
		t.Errorf("%d replicas: JetStream needs three to survive the loss of one", w.replicas)
	}
	var want, got []string
	for i := range w.replicas {
		want = append(want, fmt.Sprintf("%s-%d.%s:%d", w.name, i, w.serviceName, opts.Cluster.Port))
	}
	for _, r := range opts.Routes {
		got = append(got, r.Host)
	}
	if !slices.Equal(got, want) {
		t.Errorf("cluster routes %v, want one per replica by its stable name %v", got, want)
	}
	ports := map[string]int{"client": opts.Port, "cluster": opts.Cluster.Port, "monitor": opts.HTTPPort}
	for name, p := range ports {
		if _, ok := containerPort(w.template.Spec, intstr.FromInt32(int32(p))); !ok {
			t.Errorf("the %s port %d is not a container port", name, p)
		}
	}
	for kind, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP probe of /healthz", kind)
			continue
		}
		p, _ := containerPort(w.template.Spec, probe.HTTPGet.Port)
		if int(p) != opts.HTTPPort || !strings.HasPrefix(probe.HTTPGet.Path, "/healthz") {
			t.Errorf("%s probe: %s on port %s, want /healthz on the monitoring port %d", kind, probe.HTTPGet.Path, probe.HTTPGet.Port.String(), opts.HTTPPort)
		}
	}
	return &natsCluster{workload: w, clientPort: int32(opts.Port)}
}

// withTestCerts checks that the certificate files a nats-server configuration names
// are mounted, then returns a copy of it naming real certificates in their place: the
// committed secrets are placeholders, and nats-server parses what it is given.
func withTestCerts(t *testing.T, cfs *containerFS, conf string) string {
	t.Helper()
	raw, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	certs := testenv.Certs(t)
	real := map[string]string{"cert_file": certs.ServerCert, "key_file": certs.ServerKey, "ca_file": certs.CA}
	out := regexp.MustCompile(`(?m)^(\s*)(cert_file|key_file|ca_file):\s*(\S+)\s*$`).ReplaceAllStringFunc(string(raw), func(line string) string {
		m := regexp.MustCompile(`^(\s*)(\w+):\s*(\S+)`).FindStringSubmatch(line)
		if !cfs.exists(m[3]) {
			t.Errorf("nats-server %s %s is not mounted", m[2], m[3])
		}
		return fmt.Sprintf("%s%s: %q", m[1], m[2], real[m[2]])
	})
	path := filepath.Join(t.TempDir(), filepath.Base(conf))
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// containerFS is a container's file system: the image's files and its mounts, with
// the keys of the config maps and secrets the set holds.
func (m manifests) containerFS(t *testing.T, w workload, c corev1.Container, img image) *containerFS {
	t.Helper()
	cfs := newContainerFS(t, img)
	volumes := map[string]corev1.Volume{}
	for _, v := range w.template.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, vm := range c.VolumeMounts {
		v := volumes[vm.Name]
		var data map[string][]byte
		var items []corev1.KeyToPath
		switch {
		case v.ConfigMap != nil:
			if cm, ok := m.configMaps[key(w.namespace, v.ConfigMap.Name)]; ok {
				data, items = configMapData(cm), v.ConfigMap.Items
			}
		case v.Secret != nil:
			if s, ok := m.secrets[key(w.namespace, v.Secret.SecretName)]; ok {
				data, items = secretData(s), v.Secret.Items
			}
		}
		if len(items) > 0 {
			picked := map[string][]byte{}
			for _, it := range items {
				picked[it.Path] = data[it.Key]
			}
			data = picked
		}
		if vm.SubPath != "" {
			t.Errorf("%s: mount %s uses subPath, which never sees an updated config map or secret", w.name, vm.MountPath)
		}
		cfs.addVolume(t, vm.MountPath, data)
	}
	return cfs
}

// env is a container's environment as the kubelet would set it in pod.
func (m manifests) env(t *testing.T, w workload, c corev1.Container, pod string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			if s, ok := m.secrets[key(w.namespace, r.Name)]; ok {
				out[e.Name] = string(secretData(s)[r.Key])
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			if cm, ok := m.configMaps[key(w.namespace, r.Name)]; ok {
				out[e.Name] = cm.Data[r.Key]
			}
		case e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				out[e.Name] = pod
			case "metadata.namespace":
				out[e.Name] = w.namespace
			default:
				t.Errorf("%s: %s: field %s is not one this test knows", w.name, e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		case e.ValueFrom.ResourceFieldRef != nil:
			r := e.ValueFrom.ResourceFieldRef
			var q = c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(r.Resource, "limits."))]
			if strings.HasPrefix(r.Resource, "requests.") {
				q = c.Resources.Requests[corev1.ResourceName(strings.TrimPrefix(r.Resource, "requests."))]
			}
			if q.IsZero() {
				t.Errorf("%s: %s: %s is not set", w.name, e.Name, r.Resource)
			}
			out[e.Name] = fmt.Sprint(q.Value())
		}
	}
	return out
}

// secretVariable says whether a variable carries a secret: such a value comes from a
// Secret, never from the manifest.
func secretVariable(name string) bool {
	return name == "DATABASE_URL" || strings.HasSuffix(name, "_SECRET") || strings.HasSuffix(name, "_PASSWORD") || strings.HasSuffix(name, "_TOKEN")
}

// checkDexbridge checks one dexbridge container, which runs services.
func (m manifests) checkDexbridge(t *testing.T, img image, nats *natsCluster, w workload, c corev1.Container, services []string) {
	if len(c.Command) > 0 && !reflect.DeepEqual([]string(c.Command), img.entrypoint) {
		t.Errorf("command %q replaces the image's entrypoint %q", c.Command, img.entrypoint)
	}
	for _, e := range c.Env {
		switch {
		case e.Name == "DATABASE_URL" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil):
			t.Error("DATABASE_URL: take it from a Secret (secretKeyRef)")
		case e.Name != "DATABASE_URL" && secretVariable(e.Name):
			// DATABASE_URL has no file form; every other secret has one.
			t.Errorf("%s: a secret in the environment; mount it as a file and name the file in the configuration", e.Name)
		}
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("the root file system is writable: dexbridge writes nothing to it")
	}
	proc := process{fs: m.containerFS(t, w, c, img), env: m.env(t, w, c, w.name+"-pod"), args: c.Args, services: services}
	chk, h, ok := proc.check(t)
	if !ok {
		return
	}
	for kind, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP probe", kind)
			continue
		}
		g := probe.HTTPGet
		if p, ok := containerPort(w.template.Spec, g.Port); !ok || fmt.Sprint(p) != h.port {
			t.Errorf("%s probe on port %s, but the process serves its health on %s from %s", kind, g.Port.String(), h.port, h.key)
		}
		if https := g.Scheme == corev1.URISchemeHTTPS; https != h.https {
			t.Errorf("%s probe scheme %q, but the listener's TLS is %v", kind, g.Scheme, h.https)
		}
		if err := probePath(kind, g.Path); err != nil {
			t.Error(err)
		}
	}
	if nats != nil {
		m.checkNATSURL(t, w.namespace, chk.cfg.NATS.URL, nats)
	}
}

// checkNATSURL checks that nats.url names a service of the set that reaches the
// NATS servers' client port.
func (m manifests) checkNATSURL(t *testing.T, namespace, raw string, nats *natsCluster) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		t.Errorf("nats.url %q: want the NATS service's URL", raw)
		return
	}
	name, ns, _ := strings.Cut(u.Hostname(), ".")
	if ns == "" {
		ns = namespace
	}
	ns, _, _ = strings.Cut(ns, ".")
	for _, s := range m.services {
		if s.Name != name || s.Namespace != ns {
			continue
		}
		for _, p := range s.Spec.Ports {
			if fmt.Sprint(p.Port) != u.Port() {
				continue
			}
			if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(nats.workload.template.Labels)) {
				t.Errorf("nats.url %s: service %s does not select the NATS pods", raw, s.Name)
			} else if got, _ := containerPort(nats.workload.template.Spec, p.TargetPort); got != nats.clientPort {
				t.Errorf("nats.url %s: service %s port %d reaches %d, not NATS's client port %d", raw, s.Name, p.Port, got, nats.clientPort)
			}
			return
		}
	}
	t.Errorf("nats.url %s: no service %s in namespace %s with port %s", raw, name, ns, u.Port())
}

func imageName(ref string) string {
	name, _, _ := strings.Cut(path.Base(ref), ":")
	name, _, _ = strings.Cut(name, "@")
	return name
}

// TestKubernetesConfigCopies keeps the topics, queries and remote actions the
// Kubernetes config maps carry the same as the repository's: kustomize reads only
// files under its own directory, so they are copies. The webhook rules differ only by
// where their secrets are.
func TestKubernetesConfigCopies(t *testing.T) {
	root := repoRoot(t)
	pairs := map[string]string{}
	topics, err := filepath.Glob(filepath.Join(root, "topics", "*.yaml"))
	if err != nil || len(topics) == 0 {
		t.Fatalf("no topics: %v", err)
	}
	for _, f := range topics {
		pairs[filepath.Join("kubernetes", "topics", filepath.Base(f))] = f
	}
	for _, f := range []string{"queries.yaml", "remote_actions.yaml", "webhooks.yaml"} {
		pairs[filepath.Join("kubernetes", "config", f)] = filepath.Join(root, "config", f)
	}
	copies, err := filepath.Glob(filepath.Join("kubernetes", "topics", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range copies {
		if _, ok := pairs[f]; !ok {
			t.Errorf("%s: topics/ has no such topic", f)
		}
	}
	for _, copyPath := range sortedKeys(pairs) {
		orig := pairs[copyPath]
		got, err := os.ReadFile(copyPath)
		if err != nil {
			t.Errorf("%v (cp %s %s)", err, orig, copyPath)
			continue
		}
		want, err := os.ReadFile(orig)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(orig) == "webhooks.yaml" {
			got, want = withoutSecrets(t, got), withoutSecrets(t, want)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: copy it again", copyPath, orig)
		}
	}
}

// withoutSecrets is a webhook rules file without its sources' credentials_file.
func withoutSecrets(t *testing.T, raw []byte) []byte {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	sources, _ := doc["sources"].([]any)
	for _, s := range sources {
		if m, ok := s.(map[string]any); ok {
			delete(m, "credentials_file")
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
