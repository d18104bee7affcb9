package bench_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/bench"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestClusterSurvivesNodeAndWorkerLoss: on a three-node NATS cluster with TLS,
// authentication and three replicas, with two ingresses and two processes of every
// worker, losing the WEBHOOKS stream leader's node and a worker process to SIGKILL in
// the middle of webhook and remediation load loses nothing accepted, answers 503 (not
// errors) while the cluster elects a leader, and recovers without help.
func TestClusterSurvivesNodeAndWorkerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs nine processes")
	}
	root := testenv.RepoRoot(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/dexbridge", "./cmd/nxsim", "./cmd/dexbench")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := bench.Env{Root: root, Bin: bin, DatabaseURL: testenv.PostgresURL(t), Latency: 5 * time.Millisecond, Log: testWriter{t}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := bench.ClusterDrill(ctx, env, bench.DrillOptions{Fleet: 3000, Rate: 20, Duration: 30 * time.Second, Settle: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if r.Replicas != 3 {
		t.Errorf("WEBHOOKS stream replicas: got %d, want 3", r.Replicas)
	}
	if r.WebhooksAccepted == 0 || r.ExecutionsAccepted == 0 {
		t.Fatalf("nothing accepted: %+v", r)
	}
	if r.WebhooksLost != 0 || r.ExecutionsLost != 0 {
		t.Errorf("lost %d of %d accepted webhooks and %d of %d accepted executions", r.WebhooksLost, r.WebhooksAccepted, r.ExecutionsLost, r.ExecutionsAccepted)
	}
	if r.Failed != 0 {
		t.Errorf("%d answers neither 2xx nor 503: a lost node must read as unavailable, not as an error", r.Failed)
	}
	if r.NewLeader == "" || r.NewLeader == r.KilledNode {
		t.Errorf("WEBHOOKS leader after the kill: %q (killed %q)", r.NewLeader, r.KilledNode)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}
