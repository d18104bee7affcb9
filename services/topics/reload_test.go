package topics_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// quickCheck is a topic added while dexbridge runs: one device-only query, one rule.
const quickCheck = `id: quick_check
title: Quick check
description: Whether the device needs a restart, from the cache.
platforms: [Windows]
queries:
  - id: "#quick_check"
    parameters:
      device_name: device.name
    nql: |
      devices
      | where device.name == $device_name
      | list collector.uid, device.name, boot.days_since_last_full_boot
rules:
  - id: restart_overdue
    title: The device has not been restarted for more than 10 days
    when: device.boot.days_since_last_full_boot > 10
    remediations: [restart_device]
remediations:
  - id: restart_device
    title: Restart the device
    message: Please restart your computer.
`

type reloadAnswer struct {
	Status   any      `json:"status"` // "reloaded", or a refusal's HTTP status
	Code     string   `json:"code"`
	Problems []string `json:"problems"`
	Expected int      `json:"expected"`
	Answered int      `json:"answered"`
	Workers  []struct {
		Worker   string    `json:"worker"`
		Status   string    `json:"status"`
		Problems []string  `json:"problems"`
		Topics   int       `json:"topics"`
		LoadedAt time.Time `json:"loaded_at"`
	} `json:"workers"`
}

// TestReloadReachesEveryWorker: two topics workers; the admin call makes both load a
// new topic, which then diagnoses at once; a broken file is refused by both with its
// problems, and the set in force stays.
func TestReloadReachesEveryWorker(t *testing.T) {
	dir := copyTopics(t)
	e := newEnv(t, envOptions{workers: 2, topicsDir: dir})
	if code, _, p := e.diagnose("quick_check", "PC-UPTIME", false); code != 404 {
		t.Fatalf("before the reload: got %d %v, want 404", code, p)
	}
	if err := os.WriteFile(filepath.Join(dir, "quick_check.yaml"), []byte(quickCheck), 0o600); err != nil {
		t.Fatal(err)
	}
	var a reloadAnswer
	resp := e.do(http.MethodPost, "/api/v1/admin/reload", e.key, "", &a)
	if resp.StatusCode != 200 || a.Status != "reloaded" || a.Expected != 2 || a.Answered != 2 || len(a.Workers) != 2 ||
		a.Workers[0].Worker == a.Workers[1].Worker {
		t.Fatalf("reload: got %d %+v, want both workers reloaded", resp.StatusCode, a)
	}
	for k, w := range e.workers {
		if _, ok := w.Definitions().Topic("quick_check"); !ok {
			t.Errorf("worker %d does not have the new topic", k)
		}
		if got := a.Workers[k].Topics; got != 7 {
			t.Errorf("worker answer %d: got %d topics, want 7", k, got)
		}
	}
	loaded := map[time.Time]bool{}
	for _, w := range e.workers {
		loaded[w.Definitions().LoadedAt()] = true
	}
	// Whichever worker answers, the new topic diagnoses (from the cache).
	for range 4 {
		code, d, p := e.diagnose("quick_check", "PC-UPTIME", false)
		if code != 200 || len(d.Findings) != 1 || d.Findings[0].Rule != "restart_overdue" || d.Source != "cache" {
			t.Fatalf("new topic: got %d %v %+v", code, p, d)
		}
	}

	// A broken rule: refused by every worker, with the file and path; nothing changes.
	broken := strings.Replace(quickCheck, "days_since_last_full_boot > 10", "days_since_last_full_boot >", 1)
	if err := os.WriteFile(filepath.Join(dir, "quick_check.yaml"), []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	a = reloadAnswer{}
	resp = e.do(http.MethodPost, "/api/v1/admin/reload", e.key, "", &a)
	if resp.StatusCode != 422 || a.Code != "unprocessable" || len(a.Problems) == 0 || len(a.Workers) != 2 {
		t.Fatalf("broken reload: got %d %+v, want 422 with the problems", resp.StatusCode, a)
	}
	if !strings.Contains(a.Problems[0], "quick_check.yaml: rules[0].when") {
		t.Errorf("problems: got %v, want the file and path of the broken rule", a.Problems)
	}
	for k, w := range a.Workers {
		if w.Status != "refused" || w.Topics != 7 || !loaded[w.LoadedAt] {
			t.Errorf("worker %d: got %+v, want refused, the previous 7 topics, loaded at one of %v", k, w, loaded)
		}
	}
	for k, w := range e.workers {
		if got := w.Definitions().LoadedAt(); !loaded[got] {
			t.Errorf("worker %d: set loaded at %s, want the previous one (%v)", k, got, loaded)
		}
	}
	if code, d, p := e.diagnose("quick_check", "PC-UPTIME", false); code != 200 || len(d.Findings) != 1 {
		t.Errorf("after a refused reload: got %d %v, want the previous topic still diagnosing", code, p)
	}

	// Admin only.
	var p map[string]any
	if resp := e.do(http.MethodPost, "/api/v1/admin/reload", e.newKey("bot", "read", "diagnose"), "", &p); resp.StatusCode != 403 {
		t.Errorf("without the admin scope: got %d %v, want 403", resp.StatusCode, p)
	}
}
