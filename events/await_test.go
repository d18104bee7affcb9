package events

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestAwaitsAbsentDevice(t *testing.T) {
	tests := []struct {
		status, presence string
		want             bool
	}{
		{StatusWaitingForDevice, PresenceOnline, true},
		{StatusWaitingForDevice, "", true},
		{StatusPending, PresenceOffline, true},
		{StatusPending, PresenceUnknown, true},
		{StatusPending, PresenceOnline, false},
		{StatusPending, "", false}, // presence not known to dexbridge: the tenant decides
		{StatusInProgress, PresenceOffline, false},
		{StatusSuccess, PresenceOffline, false},
	}
	for _, tt := range tests {
		e := Execution{Status: tt.status, Device: ExecutionDevice{Presence: tt.presence}}
		if got := AwaitsAbsentDevice(e); got != tt.want {
			t.Errorf("%s on a device %q: got %v, want %v", tt.status, tt.presence, got, tt.want)
		}
	}
}

// TestNextEndsWhenTheDeviceIsAway follows an execution by polling: the wait ends at
// waiting_for_device (not at the bound), and the answer keeps the device's presence,
// which the polled states do not carry.
func TestNextEndsWhenTheDeviceIsAway(t *testing.T) {
	seen := time.Date(2026, 3, 7, 9, 0, 0, 0, time.UTC)
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	start := Execution{ID: "ex_1", Status: StatusPending, UpdatedAt: t0,
		Device: ExecutionDevice{CollectorUID: "u", LastSeen: &seen, Presence: PresenceOnline}}
	var mu sync.Mutex
	calls := 0
	get := func(context.Context, string) (Execution, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		e := Execution{ID: "ex_1", Status: StatusPending, UpdatedAt: t0, Device: ExecutionDevice{CollectorUID: "u"}}
		if calls >= 3 {
			e.Status, e.UpdatedAt = StatusWaitingForDevice, t0.Add(time.Second)
		}
		return e, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var w *ExecutionWatch
	got := w.Next(ctx, start, get, AwaitOptions{Poll: time.Millisecond, UntilDeviceAway: true})
	if got.Status != StatusWaitingForDevice || got.Device.Presence != PresenceOnline || got.Device.LastSeen == nil {
		t.Errorf("got %+v, want waiting_for_device with the device's presence kept", got)
	}
	if ctx.Err() != nil {
		t.Error("the wait ran to its bound")
	}
	// Already waiting for an absent device: no wait at all, nothing read.
	calls = 0
	away := start
	away.Device.Presence = PresenceOffline
	if got := w.Next(ctx, away, get, AwaitOptions{Poll: time.Millisecond, UntilDeviceAway: true}); got.Status != StatusPending || calls != 0 {
		t.Errorf("pending on an offline device: got %s after %d reads, want it at once", got.Status, calls)
	}
}
