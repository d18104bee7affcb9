package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateExecutions(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Executions)
		key  string // "" for valid
	}{
		{"defaults", func(*Executions) {}, ""},
		{"seven days", func(e *Executions) { e.ExpiresIn = Duration(7 * 24 * time.Hour) }, ""},
		{"under an hour", func(e *Executions) { e.ExpiresIn = Duration(59 * time.Minute) }, "executions.expires_in"},
		{"over seven days", func(e *Executions) { e.ExpiresIn = Duration(7*24*time.Hour + time.Minute) }, "executions.expires_in"},
		{"not whole minutes", func(e *Executions) { e.ExpiresIn = Duration(time.Hour + time.Second) }, "executions.expires_in"},
		{"poll too fast", func(e *Executions) { e.PollInterval = Duration(time.Millisecond) }, "executions.poll_interval"},
		{"no details ttl", func(e *Executions) { e.DetailsTTL = 0 }, "executions.details_ttl"},
		{"no diagnosis age", func(e *Executions) { e.DiagnosisMaxAge = 0 }, "executions.diagnosis_max_age"},
	}
	for _, tt := range tests {
		c := Default()
		tt.mod(&c.Executions)
		err := c.validateExecutions()
		switch {
		case tt.key == "" && err != nil:
			t.Errorf("%s: got %v, want valid", tt.name, err)
		case tt.key != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.key)):
			t.Errorf("%s: got %v, want an error naming %s", tt.name, err, tt.key)
		}
	}
}

func TestPollIntervalFromTheEnvironment(t *testing.T) {
	c := Default()
	for _, v := range Variables() {
		if v.Name == "REMOTE_ACTION_POLL_INTERVAL" {
			if err := v.set(&c, "2s"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := c.Executions.PollInterval.D(), 2*time.Second; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
