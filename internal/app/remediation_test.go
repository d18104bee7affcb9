package app_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apiclient"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestClosedLoopForEachSeedUseCase walks, through the REST API of one process that
// runs every service against nxsim, what a chatbot does for each seed use case:
// identify the employee's device, diagnose the topic, run the suggested remediation
// and wait for it, then diagnose again with refresh: true and see the problem gone.
func TestClosedLoopForEachSeedUseCase(t *testing.T) {
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) {
		c.Executions = nxsim.ExecutionTiming{Pending: 100 * time.Millisecond, Running: 200 * time.Millisecond, Tick: 10 * time.Millisecond}
	})
	cfg := testConfig(t)
	cfg.Instances = discoverytest.Config(sim, "eu").Instances
	cfg.Limits.EngineRequestsPerSecond, cfg.Limits.PortalRequestsPerSecond = 1000, 1000
	cfg.Executions.PollInterval = config.Duration(200 * time.Millisecond)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	base, _ := start(t, cfg, "ingress", "devices", "discovery", "topics", "remoteactions", "poller")
	c := apiclient.New(base, apiKey(t, cfg))
	ctx := context.Background()
	waitUntil(t, func() bool {
		d, err := c.Identify(ctx, events.KeyDeviceName, "PC-HEALTHY")
		return err == nil && d.Source == events.SourceCache && len(d.Devices) == 1
	})

	tests := []struct {
		topic, user, device, rule, remediation string
	}{
		{"outlook", "jdoe", "PC-OUTLOOK-OFFLINE", "outlook_offline", "set_outlook_online"},
		{"outlook", "hjordan", "PC-OUTLOOK-PLUGIN", "outlook_plugin_crashed", "set_outlook_plugins"},
		{"outlook", "dprince", "PC-OFFICE-OUTDATED", "office_outdated", "repair_office_365"},
		{"onedrive", "pparker", "PC-ONEDRIVE", "onedrive_not_working", "repair_onedrive"},
		{"slow_pc", "asmith", "PC-LOW-DISK", "low_disk_space", "disk_cleanup"},
		{"slow_pc", "tstark", "PC-STARTUP", "high_impact_startup_apps", "disable_startup_apps"},
		{"slow_pc", "srogers", "PC-GPO", "slow_group_policy", "update_group_policy_settings"},
	}
	for _, tt := range tests {
		t.Run(tt.topic+"/"+tt.device, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			found, err := c.Identify(ctx, events.KeyUsername, tt.user)
			if err != nil || !slices.ContainsFunc(found.Devices, func(d events.Device) bool { return d.Name == tt.device }) {
				t.Fatalf("identify %s: got %+v %v, want %s among the devices", tt.user, found, err, tt.device)
			}
			before, err := c.Diagnose(ctx, tt.topic, tt.device, false)
			if err != nil {
				t.Fatalf("diagnose: %v", err)
			}
			if !hasFinding(before, tt.rule) {
				t.Fatalf("diagnosis before: findings %v, want %s", findings(before), tt.rule)
			}
			if !slices.ContainsFunc(before.Remediations, func(s events.SuggestedRemedy) bool { return s.ID == tt.remediation && s.Ready }) {
				t.Fatalf("diagnosis before: remediations %+v, want %s ready", before.Remediations, tt.remediation)
			}
			ex, err := c.Remediate(ctx, tt.topic, tt.remediation, tt.device, 60, "closed-loop test")
			if err != nil {
				t.Fatalf("remediate: %v", err)
			}
			if ex.Status != events.StatusSuccess || ex.Topic != tt.topic || ex.Remediation != tt.remediation || ex.Device.Name != tt.device {
				t.Fatalf("remediate: got %+v, want success", ex)
			}
			after, err := c.Diagnose(ctx, tt.topic, tt.device, true)
			if err != nil {
				t.Fatalf("diagnose with refresh: %v", err)
			}
			if got := ruleStatus(after, tt.rule); got != "clear" {
				t.Errorf("diagnosis after the remediation: rule %s is %q, want clear (findings %v)", tt.rule, got, findings(after))
			}
			if len(after.Refreshed) == 0 {
				t.Error("diagnosis with refresh: no data collection ran")
			}
			for _, r := range after.Refreshed {
				if r.Status != events.StatusSuccess {
					t.Errorf("refresh: %s is %s, want success", r.RemoteAction, r.Status)
				}
			}
		})
	}
}

func hasFinding(d *events.Diagnosis, rule string) bool {
	return slices.ContainsFunc(d.Findings, func(f events.Finding) bool { return f.Rule == rule })
}

func ruleStatus(d *events.Diagnosis, rule string) string {
	for _, r := range d.Rules {
		if r.Rule == rule {
			return r.Status
		}
	}
	return ""
}

func findings(d *events.Diagnosis) []string {
	var out []string
	for _, f := range d.Findings {
		out = append(out, f.Rule)
	}
	return out
}
