package config

import (
	"fmt"
	"time"
)

// Executions configures remote-action triggers and the poller that follows them.
type Executions struct {
	// PollInterval is how often the poller asks each instance about its open
	// executions (REMOTE_ACTION_POLL_INTERVAL).
	PollInterval Duration `yaml:"poll_interval"`
	// ExpiresIn is the expiresInMinutes of every trigger: how long Nexthink waits for
	// an offline device (60 minutes to 7 days, whole minutes).
	ExpiresIn Duration `yaml:"expires_in"`
	// DetailsTTL is how long a remote action's details (inputs, platforms) are kept per
	// instance before they are asked again.
	DetailsTTL Duration `yaml:"details_ttl"`
	// DiagnosisMaxAge is how recent the diagnosis behind a topic remediation must be.
	DiagnosisMaxAge Duration `yaml:"diagnosis_max_age"`
}

func defaultExecutions() Executions {
	return Executions{PollInterval: Duration(5 * time.Second), ExpiresIn: Duration(time.Hour),
		DetailsTTL: Duration(10 * time.Minute), DiagnosisMaxAge: Duration(time.Hour)}
}

func (c Config) validateExecutions() error {
	e := c.Executions
	if e.PollInterval.D() < 100*time.Millisecond {
		return &Error{Key: "executions.poll_interval", Env: "REMOTE_ACTION_POLL_INTERVAL", Reason: "want at least 100ms"}
	}
	if d := e.ExpiresIn.D(); d < time.Hour || d > 7*24*time.Hour || d%time.Minute != 0 {
		return &Error{Key: "executions.expires_in", Reason: fmt.Sprintf("want whole minutes from 60m to 7d (the Remote Actions API's expiresInMinutes), got %s", d)}
	}
	if e.DetailsTTL <= 0 {
		return &Error{Key: "executions.details_ttl", Reason: "must be greater than zero"}
	}
	if e.DiagnosisMaxAge <= 0 {
		return &Error{Key: "executions.diagnosis_max_age", Reason: "must be greater than zero"}
	}
	return nil
}
