package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// containerFS stands for a container's file system on the host: the image's files
// and the container's mounts, each under root at its path in the container. dexbridge
// then runs its own checks there, with the container's paths translated.
type containerFS struct {
	root    string
	workdir string   // the container's working directory
	mounts  []string // container paths whose contents were placed here
}

func newContainerFS(t *testing.T, img image) *containerFS {
	t.Helper()
	c := &containerFS{root: t.TempDir(), workdir: img.workdir}
	if err := os.MkdirAll(c.host(img.workdir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, cp := range img.copies {
		c.addTree(t, cp.dst, filepath.Join(repoRoot(t), cp.src))
	}
	return c
}

// host is where the container's path p is on the host; a relative p is relative to
// the working directory, as the process in the container would resolve it.
func (c *containerFS) host(p string) string {
	if !path.IsAbs(p) {
		p = path.Join(c.workdir, p)
	}
	return filepath.Join(c.root, filepath.FromSlash(path.Clean(p)))
}

// exists says whether the container's path p is there.
func (c *containerFS) exists(p string) bool {
	_, err := os.Stat(c.host(p))
	return err == nil
}

// addTree copies a host file or directory (a bind mount, an image layer) to the
// container's path dst.
func (c *containerFS) addTree(t *testing.T, dst, src string) {
	t.Helper()
	c.mounts = append(c.mounts, path.Clean(dst))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(c.host(dst), rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		return os.WriteFile(to, raw, 0o644)
	})
	if err != nil {
		t.Fatalf("%s in the container from %s: %v", dst, src, err)
	}
}

// addVolume places the keys of a ConfigMap or Secret volume at dir the way the
// kubelet does: the files in a timestamped directory behind ..data, each key a
// symbolic link to it, so a loader that skips links fails here too.
func (c *containerFS) addVolume(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	c.mounts = append(c.mounts, path.Clean(dir))
	base := c.host(dir)
	data := filepath.Join(base, "..2006_01_02_15_04_05.000000001")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(data), filepath.Join(base, "..data")); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(data, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(base, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// mounted says whether the container's absolute path p lies in something placed
// here (a mount or an image directory).
func (c *containerFS) mounted(p string) bool {
	p = path.Clean(p)
	return slices.ContainsFunc(c.mounts, func(m string) bool { return p == m || strings.HasPrefix(p, m+"/") })
}

// translate turns a value naming a container path under a mount into its host path;
// anything else is returned as it is.
func (c *containerFS) translate(v string) string {
	if path.IsAbs(v) && c.mounted(v) {
		return c.host(v)
	}
	return v
}

// inContainer rewrites the host paths in an error as the container's.
func (c *containerFS) inContainer(err error) error {
	return errors.New(strings.ReplaceAll(err.Error(), c.root, ""))
}

// rewritePaths rewrites, in every YAML file placed here, each string naming a path
// under a mount to its host path, so that dexbridge reading the file on the host
// finds what the container would find.
func (c *containerFS) rewritePaths(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			return nil // not this helper's to judge: dexbridge's check reports it
		}
		if !c.rewriteNode(&doc) {
			return nil
		}
		var out bytes.Buffer
		enc := yaml.NewEncoder(&out)
		enc.SetIndent(2)
		if err := enc.Encode(&doc); err != nil {
			return err
		}
		return os.WriteFile(p, out.Bytes(), 0o644)
	})
	if err != nil {
		t.Fatalf("rewriting container paths: %v", err)
	}
}

func (c *containerFS) rewriteNode(n *yaml.Node) bool {
	changed := false
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		if v := c.translate(n.Value); v != n.Value {
			n.Value, changed = v, true
		}
	}
	for _, child := range n.Content {
		changed = c.rewriteNode(child) || changed
	}
	return changed
}

// image is what the Dockerfile's final stage puts in the image: the working
// directory, the repository's files copied in, and the binaries.
type image struct {
	workdir    string
	entrypoint []string
	copies     []imageCopy
	binaries   map[string]bool // container paths
}

type imageCopy struct{ src, dst string } // src relative to the repository

// readImage reads the Dockerfile's final stage. It understands the instructions
// this repository's Dockerfile uses and fails on any other, so a change there is
// looked at here too.
func readImage(t *testing.T) image {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var stage []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			stage = nil
		}
		stage = append(stage, line)
	}
	img := image{workdir: "/", binaries: map[string]bool{}}
	for _, line := range stage {
		op, rest, _ := strings.Cut(line, " ")
		args := strings.Fields(rest)
		switch strings.ToUpper(op) {
		case "FROM", "USER":
		case "WORKDIR":
			img.workdir = path.Join(img.workdir, args[0])
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &img.entrypoint); err != nil {
				t.Fatalf("Dockerfile: ENTRYPOINT %s: want the exec (JSON) form: %v", rest, err)
			}
		case "COPY":
			if len(args) == 3 && args[0] == "--from=build" && args[1] == "/out/" {
				// `go build -o /out/ ./cmd/...` in the build stage: one binary per command.
				cmds, err := os.ReadDir(filepath.Join(repoRoot(t), "cmd"))
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range cmds {
					img.binaries[path.Join(args[2], c.Name())] = true
				}
				continue
			}
			if len(args) != 2 || strings.HasPrefix(args[0], "--") {
				t.Fatalf("Dockerfile: %q: this test knows COPY <repository path> <path> and the build stage's /out/", line)
			}
			dst := args[1]
			if !path.IsAbs(dst) {
				dst = path.Join(img.workdir, dst)
			}
			img.copies = append(img.copies, imageCopy{src: strings.TrimSuffix(args[0], "/"), dst: dst})
		default:
			t.Fatalf("Dockerfile: %q: an instruction this test does not know in the final stage", line)
		}
	}
	if len(img.entrypoint) == 0 || !img.binaries[img.entrypoint[0]] {
		t.Fatalf("Dockerfile: entrypoint %q is none of the image's binaries %v", img.entrypoint, img.binaries)
	}
	return img
}

// repoRoot is the repository's root directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
