package testenv

import (
	"testing"
	"time"
)

// Patience is how long Eventually waits before it gives up. It is a safety net
// against a hang, not a measure of speed: a loaded CI machine running the suite with
// -race may take many times longer than a laptop, and a condition that is true
// eventually must not fail there.
const Patience = time.Minute

// Eventually polls cond until it holds, and fails t, naming what it waited for,
// when it has not held after Patience. Tests wait on conditions with it, never on
// sleeps or timed assertions.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Within(Patience, cond) {
		t.Fatalf("timed out after %s waiting for %s", Patience, what)
	}
}

// Within polls cond until it holds (true) or d passes (false). Use it where giving up
// is an answer, not a failure; Eventually otherwise.
func Within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
	return true
}
