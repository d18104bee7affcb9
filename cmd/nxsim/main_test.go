package main

import (
	"bufio"
	"context"
	"encoding/json"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out := &testenv.LogBuffer{}
	env := map[string]string{"NXSIM_SIZE": "50", "NXSIM_TOPICS": "../../topics"}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-queries", "../../config/queries.yaml"},
			func(k string) string { return env[k] }, out)
	}()
	addr := waitForLog(out, "nxsim listening", "addr")
	if addr == "" {
		t.Fatalf("nxsim did not log its address; log:\n%s", out.String())
	}
	resp, err := http.Get("http://" + addr + "/_nxsim/info")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var info struct {
		Devices int `json:"devices"`
	}
	if err := json.Unmarshal(b, &info); err != nil || info.Devices != 50 {
		t.Errorf("info: got %s, want 50 devices", b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: got %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-size", "abc"}, "-size"},
		{[]string{"-size", "5", "-topics", "../../topics", "-queries", "../../config/queries.yaml"}, "size 5"},
		{[]string{"-token-ttl", "soon"}, "-token-ttl"},
		{[]string{"-topics", "/nonexistent"}, "topics dir"},
	}
	for _, tt := range tests {
		err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, tt.args...), func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%v): got %v, want an error mentioning %q", tt.args, err, tt.want)
		}
	}
}

func TestRunV6Mode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out := &testenv.LogBuffer{}
	env := map[string]string{"NXSIM_SIZE": "40", "NXSIM_V6_PASSWORD": "pw"}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-mode", "v6", "-engines", "3", "-addr", "127.0.0.1:0", "-v6-username", "bot"},
			func(k string) string { return env[k] }, out)
	}()
	portal := waitForLog(out, "nxsim v6 listening", "portal")
	if portal == "" {
		t.Fatalf("nxsim did not log the portal's address; log:\n%s", out.String())
	}
	req, _ := http.NewRequest("GET", portal+"/api/configuration/v1/engines", nil)
	req.SetBasicAuth("bot", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list []struct{ Name string }
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(list) != 3 {
		t.Fatalf("engines: %d %v %v", resp.StatusCode, list, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: got %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if err := run(context.Background(), []string{"-mode", "v5"}, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "-mode") {
		t.Errorf("-mode v5: got %v, want an error naming -mode", err)
	}
	if err := run(context.Background(), []string{"-mode", "v6", "-engines", "40", "-addr", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "engines 40") {
		t.Errorf("-engines 40: got %v, want an error naming engines", err)
	}
}

// waitForLog polls the JSON log (up to 10 s) for the line with message msg and
// returns its string attribute key, "" when it never came.
func waitForLog(out *testenv.LogBuffer, msg, key string) string {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
				v, _ := line[key].(string)
				return v
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ""
}
