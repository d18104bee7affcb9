package config

import (
	"fmt"
	"time"
)

// Admission tunes the ingress's admission control (internal/admission): how many API
// requests one ingress process serves at once, and how long one beyond may wait
// before it is refused 503 with Retry-After.
type Admission struct {
	// MaxConcurrent is the most API requests served at once (ADMISSION_MAX_CONCURRENT);
	// with Adaptive, the ceiling of the limit.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MinConcurrent is the floor of an adaptive limit.
	MinConcurrent int `yaml:"min_concurrent"`
	// Queue is the most requests waiting for a slot (ADMISSION_QUEUE); 0: none.
	Queue int `yaml:"queue"`
	// Target is the queue delay tolerated while the queue stands (ADMISSION_TARGET).
	Target Duration `yaml:"target"`
	// Interval is how long the queue may go without emptying before it counts as
	// standing, and the longest wait before it does (ADMISSION_INTERVAL).
	Interval Duration `yaml:"interval"`
	// Adaptive lets the limit follow the observed latency (ADMISSION_ADAPTIVE).
	Adaptive bool `yaml:"adaptive"`
}

func defaultAdmission() Admission {
	return Admission{MaxConcurrent: 64, MinConcurrent: 8, Queue: 128,
		Target: Duration(5 * time.Millisecond), Interval: Duration(100 * time.Millisecond)}
}

func (c Config) validateAdmission() error {
	a := c.Admission
	switch {
	case a.MaxConcurrent < 1:
		return &Error{Key: "admission.max_concurrent", Env: "ADMISSION_MAX_CONCURRENT", Reason: "must be greater than zero"}
	case a.MinConcurrent < 1 || a.MinConcurrent > a.MaxConcurrent:
		return &Error{Key: "admission.min_concurrent", Reason: fmt.Sprintf("want 1 to max_concurrent (%d), got %d", a.MaxConcurrent, a.MinConcurrent)}
	case a.Queue < 0:
		return &Error{Key: "admission.queue", Env: "ADMISSION_QUEUE", Reason: "must not be negative"}
	case a.Target.D() <= 0:
		return &Error{Key: "admission.target", Env: "ADMISSION_TARGET", Reason: "must be greater than zero"}
	case a.Interval.D() < a.Target.D():
		return &Error{Key: "admission.interval", Env: "ADMISSION_INTERVAL", Reason: "must be at least admission.target"}
	}
	return nil
}
