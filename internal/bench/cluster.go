package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/tlsfiles"
)

// drillFleet is the tenant of the cluster scenario: enough online devices for a
// remediation each.
const drillFleet = 5000

// DrillOptions size the cluster drill.
type DrillOptions struct {
	Fleet    int           // devices of nxsim's tenant
	Rate     float64       // requests per second, webhooks and remediations together
	Duration time.Duration // load time; the faults come a third of the way in
	Settle   time.Duration // how long every accepted webhook and execution gets to be done
}

// DrillResult is what the drill saw.
type DrillResult struct {
	Replicas                   int           // of the WEBHOOKS stream
	KilledNode                 string        // the WEBHOOKS stream leader's node
	Requests, OK, Unavailable  int           // during the load: sent, 2xx, 503
	Failed                     int           // neither 2xx nor 503 (transport errors included)
	Gap                        time.Duration // longest time without a 2xx answer after the faults
	Recovery                   time.Duration // from the faults to the last answer that was not 2xx
	WebhooksAccepted           int           // 202
	WebhooksLost               int           // accepted, never processed
	ExecutionsAccepted         int           // 2xx with an execution id
	ExecutionsLost             int           // accepted, never finished
	NewLeader                  string        // the WEBHOOKS stream leader after the faults
	WorkerProcesses, Ingresses int
}

// clusterScenario is the drill as a dexbench scenario.
func clusterScenario(ctx context.Context, env Env) ([]Row, error) {
	r, err := ClusterDrill(ctx, env, DrillOptions{Fleet: drillFleet, Rate: 40, Duration: 45 * time.Second, Settle: 3 * time.Minute})
	if err != nil {
		return nil, err
	}
	return r.Rows(env), nil
}

// Rows is the drill's part of the table.
func (r DrillResult) Rows(env Env) []Row {
	return []Row{
		setupRow("cluster", env, drillFleet, fmt.Sprintf("3 NATS nodes (TLS, token, replicas %d), %d ingresses, %d processes running every worker",
			r.Replicas, r.Ingresses, r.WorkerProcesses), "; SIGKILL: the WEBHOOKS leader's node and one worker process"),
		{"cluster", "requests during the drill: 2xx / 503 / other", fmt.Sprintf("%d / %d / %d of %d", r.OK, r.Unavailable, r.Failed, r.Requests), "-", ""},
		{"cluster", "longest gap without a 2xx after the kills", ms(r.Gap), "-", ""},
		{"cluster", "kills to the last answer that was not 2xx", ms(r.Recovery), "-", ""},
		{"cluster", "accepted webhooks lost", fmt.Sprintf("%d of %d", r.WebhooksLost, r.WebhooksAccepted), "-", target("0", r.WebhooksLost == 0)},
		{"cluster", "accepted executions not finished", fmt.Sprintf("%d of %d", r.ExecutionsLost, r.ExecutionsAccepted), "-", target("0", r.ExecutionsLost == 0)},
		{"cluster", "WEBHOOKS leader before / after", r.KilledNode + " / " + r.NewLeader, "-", ""},
	}
}

// ClusterDrill runs dexbridge on a three-node NATS cluster with JetStream, TLS and
// token authentication (nodes are `dexbench nats-node` processes), replicas 3, two
// `dexbridge run ingress` processes and two processes running every worker, and puts
// webhooks and remediations through both ingresses. A third of the way in, it kills
// with SIGKILL the node leading the WEBHOOKS stream and one worker process, and keeps
// the load going; nothing is restarted. Afterwards every accepted webhook must have
// been processed and every accepted execution must have finished.
func ClusterDrill(ctx context.Context, env Env, o DrillOptions) (DrillResult, error) {
	dir, err := os.MkdirTemp("", "dexbench-cluster-")
	if err != nil {
		return DrillResult{}, err
	}
	defer os.RemoveAll(dir)
	certs, err := tlsfiles.Write(dir)
	if err != nil {
		return DrillResult{}, err
	}
	token := randomToken()
	cluster, err := startNATSCluster(ctx, env, dir, certs, token)
	if err != nil {
		return DrillResult{}, err
	}
	defer cluster.stop()
	st, err := startStack(ctx, env, o.Fleet, 500, "-exec-pending", "0s", "-exec-running", "0s")
	if err != nil {
		return DrillResult{}, err
	}
	defer st.close()
	dep := st.dep
	rules := filepath.Join(dep.dir, "webhooks.yaml")
	if err := os.WriteFile(rules, []byte(webhookRules), 0o600); err != nil {
		return DrillResult{}, err
	}
	dep.env = append(dep.env, "NATS_URL="+cluster.urls(), "NATS_TLS_CA_FILE="+certs.CA, "NATS_TOKEN="+token,
		"NATS_REPLICAS=3", "WEBHOOK_NEXTHINK_PASSWORD="+webhookPassword, "WEBHOOKS_FILE="+rules,
		"MAX_PORTAL_REQUESTS_PER_SECOND=1000", "REMOTE_ACTION_POLL_INTERVAL=1s")
	if err := dep.discover(ctx, env); err != nil {
		return DrillResult{}, err
	}
	key, err := dep.apiKey(ctx, env, "read,remediate")
	if err != nil {
		return DrillResult{}, err
	}
	// A device of its own for each remediation: a second one on a device would be
	// answered with the first.
	want := int(o.Rate*o.Duration.Seconds())/4 + 1
	devices, err := nxsim.NewControlClient(st.sim.tenant("eu"), nil).SampleDevices(ctx, nxsim.Sample{N: want, Seed: 19, Platform: "Windows", Presence: "online"})
	if err != nil || len(devices) < want {
		return DrillResult{}, fmt.Errorf("online Windows devices: %d of %d (%v); give the drill a larger fleet", len(devices), want, err)
	}

	var ingresses, workers []*exec.Cmd
	defer func() {
		for _, c := range slices.Concat(ingresses, workers) {
			_ = c.Process.Signal(syscall.SIGTERM)
			_ = c.Wait()
		}
	}()
	var bases []string
	for range 2 {
		cmd, base, err := dep.process(ctx, env, "LISTEN_ADDR", "ingress")
		if err != nil {
			return DrillResult{}, err
		}
		ingresses, bases = append(ingresses, cmd), append(bases, base)
	}
	for range 2 {
		cmd, _, err := dep.process(ctx, env, "METRICS_ADDR", "topics", "devices", "remoteactions", "poller", "webhooks", "proactive")
		if err != nil {
			return DrillResult{}, err
		}
		workers = append(workers, cmd)
	}
	watch, err := nats.Connect(cluster.urls(), nats.RootCAs(certs.CA), nats.Token(token), nats.MaxReconnects(-1))
	if err != nil {
		return DrillResult{}, err
	}
	defer watch.Close()
	js, err := jetstream.New(watch)
	if err != nil {
		return DrillResult{}, err
	}
	stream := events.NewSubjects("dexbridge").Stream(events.StreamWebhooks)
	res := DrillResult{WorkerProcesses: len(workers), Ingresses: len(ingresses)}

	targets, err := st.db.webhookTargets(ctx)
	if err != nil {
		return DrillResult{}, err
	}
	senders := []*webhookSender{}
	client := &http.Client{Timeout: 30 * time.Second}
	bots := []*chatbot{}
	for i, base := range bases {
		// Each ingress's webhooks name their own half of the devices.
		half := targets[i*len(targets)/2 : (i+1)*len(targets)/2]
		s := &webhookSender{client: client, url: base + "/api/v1/webhooks/nexthink", sent: map[string]time.Time{}, targets: half}
		senders = append(senders, s)
		bots = append(bots, &chatbot{base: base, key: key, client: client})
	}
	// One webhook first: the WEBHOOKS stream exists, with its replicas and a leader.
	if code, _, err := senders[0].post(ctx, time.Now()); err != nil || code != http.StatusAccepted {
		return DrillResult{}, fmt.Errorf("first webhook: %d %v", code, err)
	}
	info, err := js.Stream(ctx, stream)
	if err != nil {
		return DrillResult{}, err
	}
	res.Replicas = info.CachedInfo().Config.Replicas

	type outcome struct {
		at   time.Duration
		code int
	}
	var mu sync.Mutex
	var outcomes []outcome
	var executions []string
	faultAt := o.Duration / 3
	start := time.Now()
	var faults time.Duration
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / o.Rate)
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if due.Sub(start) >= o.Duration || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Until(due))
		if faults == 0 && time.Since(start) >= faultAt {
			leader, err := streamLeader(ctx, js, stream)
			if err != nil {
				return DrillResult{}, err
			}
			res.KilledNode = leader
			if err := cluster.kill(leader); err != nil {
				return DrillResult{}, err
			}
			_ = workers[0].Process.Signal(syscall.SIGKILL)
			faults = time.Since(start)
			fmt.Fprintf(env.Log, "cluster: killed node %s (WEBHOOKS leader) and a worker process at %s\n", leader, faults.Round(time.Millisecond))
		}
		wg.Go(func() {
			var code int
			if i%4 == 3 {
				var e benchExecution
				c, err := bots[i%2].do(ctx, http.MethodPost, "/api/v1/remote-actions/executions",
					map[string]any{"remote_action": "#repair_onedrive", "device": devices[i/4].Name, "reason": "cluster drill"}, &e)
				code = c
				if err == nil && e.ID != "" {
					mu.Lock()
					executions = append(executions, e.ID)
					mu.Unlock()
				} else if err != nil && c == 0 {
					code = -1
				}
			} else {
				c, _, err := senders[i%2].post(ctx, time.Now())
				code = c
				if err != nil && c == 0 {
					code = -1
				}
			}
			mu.Lock()
			outcomes = append(outcomes, outcome{time.Since(start), code})
			mu.Unlock()
		})
	}
	wg.Wait()

	slices.SortFunc(outcomes, func(a, b outcome) int { return int(a.at - b.at) })
	lastOK := faults
	for _, out := range outcomes {
		res.Requests++
		switch {
		case out.code/100 == 2:
			res.OK++
			if out.at > faults {
				res.Gap = max(res.Gap, out.at-lastOK)
				lastOK = out.at
			}
		case out.code == http.StatusServiceUnavailable:
			res.Unavailable++
		default:
			res.Failed++
		}
		if out.code/100 != 2 && out.at > faults {
			res.Recovery = out.at - faults
		}
	}
	if res.NewLeader, err = streamLeader(ctx, js, stream); err != nil {
		return DrillResult{}, err
	}

	// Nothing accepted is lost: every accepted webhook gets its record, every
	// accepted execution finishes.
	var accepted []string
	for _, s := range senders {
		for id := range s.sent {
			accepted = append(accepted, id)
		}
	}
	res.WebhooksAccepted, res.ExecutionsAccepted = len(accepted), len(executions)
	fmt.Fprintf(env.Log, "cluster: waiting for %d webhooks and %d executions\n", len(accepted), len(executions))
	deadline := time.Now().Add(o.Settle)
	for {
		var processed, finished int
		err := st.db.pool.QueryRow(ctx, `SELECT count(DISTINCT webhook_id) FROM webhook_deliveries WHERE webhook_id = ANY($1)`, accepted).Scan(&processed)
		if err == nil {
			err = st.db.pool.QueryRow(ctx, `SELECT count(*) FROM executions WHERE id = ANY($1) AND status IN ('success', 'failure')`, executions).Scan(&finished)
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return DrillResult{}, err
		}
		res.WebhooksLost, res.ExecutionsLost = len(accepted)-processed, len(executions)-finished
		if (res.WebhooksLost == 0 && res.ExecutionsLost == 0) || time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return DrillResult{}, err
		}
	}
	return res, nil
}

// process starts `dexbridge run <services>` listening on a free port given as the
// variable addrVar (LISTEN_ADDR or METRICS_ADDR), and waits until it is ready.
func (d *deployment) process(ctx context.Context, env Env, addrVar string, services ...string) (*exec.Cmd, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := d.command(ctx, env, append([]string{"run"}, services...)...)
	cmd.Env = append(slices.Clone(d.env), fmt.Sprintf("%s=127.0.0.1:%d", addrVar, port))
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	if err := waitHTTP(ctx, base+"/readyz", 2*time.Minute); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, "", fmt.Errorf("dexbridge run %s: %w", strings.Join(services, " "), err)
	}
	return cmd, base, nil
}

func streamLeader(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := js.Stream(ctx, stream)
		if err == nil {
			if c := s.CachedInfo().Cluster; c != nil && c.Leader != "" {
				return c.Leader, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no leader of %s after a minute: %v", stream, err)
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// natsCluster is three `dexbench nats-node` processes routed to each other.
type natsCluster struct {
	nodes map[string]*exec.Cmd
	ports []int
}

func startNATSCluster(ctx context.Context, env Env, dir string, certs tlsfiles.Files, token string) (*natsCluster, error) {
	c := &natsCluster{nodes: map[string]*exec.Cmd{}}
	var routes, monitors []int
	for range 3 {
		ports := make([]int, 3)
		for i := range ports {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			ports[i] = p
		}
		c.ports, routes, monitors = append(c.ports, ports[0]), append(routes, ports[1]), append(monitors, ports[2])
	}
	tlsBlock := fmt.Sprintf("{ cert_file: %q, key_file: %q, ca_file: %q, verify: %%t, timeout: 5 }", certs.ServerCert, certs.ServerKey, certs.CA)
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		var rs []string
		for j, p := range routes {
			if j != i {
				rs = append(rs, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
			}
		}
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream { store_dir: %q }
authorization { token: %q }
tls %s
cluster {
  name: dexbridge
  listen: 127.0.0.1:%d
  routes: [%s]
  tls %s
}
`, name, c.ports[i], monitors[i], filepath.Join(dir, name), token, fmt.Sprintf(tlsBlock, false), routes[i],
			strings.Join(rs, ", "), fmt.Sprintf(tlsBlock, true))
		path := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, filepath.Join(env.Bin, "dexbench"), "nats-node", "-c", path)
		cmd.Stderr = env.Log
		if err := cmd.Start(); err != nil {
			c.stop()
			return nil, fmt.Errorf("nats node %s: %w", name, err)
		}
		c.nodes[name] = cmd
	}
	for i := range 3 {
		if err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", monitors[i]), time.Minute); err != nil {
			c.stop()
			return nil, fmt.Errorf("nats node n%d: %w", i+1, err)
		}
	}
	return c, nil
}

func (c *natsCluster) urls() string {
	var us []string
	for _, p := range c.ports {
		us = append(us, fmt.Sprintf("tls://127.0.0.1:%d", p))
	}
	return strings.Join(us, ",")
}

// kill ends node name with SIGKILL: no goodbye to the cluster, no flush.
func (c *natsCluster) kill(name string) error {
	cmd, ok := c.nodes[name]
	if !ok {
		return fmt.Errorf("no nats node %q", name)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	delete(c.nodes, name)
	return nil
}

func (c *natsCluster) stop() {
	for _, cmd := range c.nodes {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
