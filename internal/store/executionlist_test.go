package store_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// sameFix is an execution of #repair_onedrive with the same params on one device.
func sameFix(id string) store.Execution {
	e := newExecution(id)
	e.CollectorUID, e.DeviceName = "0c3f4f1e-0000-4000-8000-000000000001", "PC-ONE"
	return e
}

// TestReserveDedupesActiveExecutions: concurrent reservations of one fix record one
// execution, the others get it as Active (their keys bound to it); a forced one, one
// with other params, and one after the first is final are recorded.
func TestReserveDedupesActiveExecutions(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	ctx := context.Background()
	const n = 8
	res := make([]store.Reservation, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := &store.IdempotencyKey{APIKeyID: "key_1", Key: fmt.Sprintf("k-%d", i), RequestHash: "h"}
			res[i], errs[i] = db.ReserveExecution(ctx, sameFix(fmt.Sprintf("ex_%d", i)), store.AuditRecord{RemoteAction: "#repair_onedrive", Device: "PC-ONE"}, key, true)
		})
	}
	wg.Wait()
	winner := ""
	for i, r := range res {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if r.Reserved {
			if winner != "" {
				t.Fatalf("two reservations: %s and ex_%d", winner, i)
			}
			winner = fmt.Sprintf("ex_%d", i)
		}
	}
	if winner == "" {
		t.Fatal("no reservation")
	}
	for i, r := range res {
		if r.Reserved {
			continue
		}
		if r.Active == nil || r.Active.ID != winner {
			t.Errorf("ex_%d: got %+v, want the active %s", i, r, winner)
		}
		if k, err := db.IdempotentExecution(ctx, "key_1", fmt.Sprintf("k-%d", i)); err != nil || k.ExecutionID != winner {
			t.Errorf("key k-%d: got %+v %v, want bound to %s", i, k, err, winner)
		}
	}

	// A key bound elsewhere wins over the duplicate.
	r, err := db.ReserveExecution(ctx, sameFix("ex_keyed"), store.AuditRecord{RemoteAction: "#x", Device: "d"},
		&store.IdempotencyKey{APIKeyID: "key_1", Key: "k-0", RequestHash: "h"}, true)
	if err != nil || r.Reserved || r.Active != nil || r.Bound.ExecutionID != winner {
		t.Errorf("bound key: got %+v %v, want the binding", r, err)
	}
	// force: a second active one.
	if r, err := db.ReserveExecution(ctx, sameFix("ex_forced"), store.AuditRecord{RemoteAction: "#x", Device: "d"}, nil, false); err != nil || !r.Reserved {
		t.Errorf("forced: got %+v %v, want reserved", r, err)
	}
	// Other params: another fix.
	other := sameFix("ex_other_params")
	other.Params = map[string]string{"A": "2"}
	if r, err := db.ReserveExecution(ctx, other, store.AuditRecord{RemoteAction: "#x", Device: "d"}, nil, true); err != nil || !r.Reserved {
		t.Errorf("other params: got %+v %v, want reserved", r, err)
	}
	// The first one ends; the forced one still runs, and is found.
	if _, err := db.FailTrigger(ctx, winner, "gone", 0, "", ""); err != nil {
		t.Fatal(err)
	}
	if r, err := db.ReserveExecution(ctx, sameFix("ex_after"), store.AuditRecord{RemoteAction: "#x", Device: "d"}, nil, true); err != nil || r.Active == nil || r.Active.ID != "ex_forced" {
		t.Errorf("with a forced one active: got %+v %v, want ex_forced", r, err)
	}
	if _, err := db.FailTrigger(ctx, "ex_forced", "gone", 0, "", ""); err != nil {
		t.Fatal(err)
	}
	if r, err := db.ReserveExecution(ctx, sameFix("ex_after"), store.AuditRecord{RemoteAction: "#x", Device: "d"}, nil, true); err != nil || !r.Reserved {
		t.Errorf("after the others ended: got %+v %v, want reserved", r, err)
	}
	// One past its expiry that the poller has not ended gives its place up.
	late := sameFix("ex_late")
	late.CollectorUID = "0c3f4f1e-0000-4000-8000-000000000002"
	late.ExpiresAt = time.Now().Add(-time.Minute)
	if r, err := db.ReserveExecution(ctx, late, store.AuditRecord{RemoteAction: "#x", Device: "d"}, nil, true); err != nil || !r.Reserved {
		t.Fatalf("late: got %+v %v", r, err)
	}
	next := sameFix("ex_next")
	next.CollectorUID = late.CollectorUID
	if r, err := db.ReserveExecution(ctx, next, store.AuditRecord{RemoteAction: "#x", Device: "d"}, nil, true); err != nil || !r.Reserved {
		t.Errorf("after an expired one: got %+v %v, want reserved", r, err)
	}
	active, err := db.ActiveExecutions(ctx, "eu", next.CollectorUID)
	if err != nil || len(active) != 1 || active[0].ID != "ex_next" {
		t.Errorf("active executions: got %+v %v, want ex_next only", active, err)
	}
}

// TestListExecutionsPages: newest first, filtered, and pages that neither repeat
// nor skip an execution while new ones are recorded.
func TestListExecutionsPages(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Microsecond).Add(-time.Hour)
	add := func(id, device, action string, at time.Time) {
		t.Helper()
		e := newExecution(id)
		e.CollectorUID, e.DeviceName, e.RemoteAction, e.CreatedAt = "0c3f4f1e-0000-4000-8000-00000000000"+device, "PC-"+device, action, at
		if _, err := db.ReserveExecution(ctx, e, store.AuditRecord{RemoteAction: action, Device: e.DeviceName}, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		// Two share each creation time: the id orders them.
		add(fmt.Sprintf("ex_%02d", i), fmt.Sprint(i%2), "#repair_onedrive", base.Add(time.Duration(i/2)*time.Second))
	}
	add("ex_gpo", "1", "#update_group_policy_settings", base.Add(time.Minute))
	if _, err := db.MarkTriggered(ctx, "ex_gpo", "r", base.Add(2*time.Hour), 0); err != nil {
		t.Fatal(err)
	}

	ids := func(es []store.Execution) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	list := func(f store.ExecutionFilter) []string {
		t.Helper()
		got, err := db.ListExecutions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return ids(got)
	}
	for _, tt := range []struct {
		name string
		f    store.ExecutionFilter
		want string
	}{
		{"all", store.ExecutionFilter{Limit: 4}, "[ex_gpo ex_09 ex_08 ex_07]"},
		{"by uid", store.ExecutionFilter{Device: "0C3F4F1E-0000-4000-8000-000000000001", IsUID: true, Limit: 3}, "[ex_gpo ex_09 ex_07]"},
		{"by name", store.ExecutionFilter{Device: "pc-0", Limit: 2}, "[ex_08 ex_06]"},
		{"status", store.ExecutionFilter{Statuses: []string{store.ExecPending}, Limit: 5}, "[ex_gpo]"},
		{"statuses", store.ExecutionFilter{Statuses: []string{store.ExecPending, store.ExecTriggering}, Limit: 2}, "[ex_gpo ex_09]"},
		{"since", store.ExecutionFilter{Since: base.Add(4 * time.Second), Limit: 5}, "[ex_gpo ex_09 ex_08]"},
		{"action", store.ExecutionFilter{RemoteAction: "#update_group_policy_settings", Limit: 5}, "[ex_gpo]"},
		{"after", store.ExecutionFilter{After: &store.ExecutionPosition{CreatedAt: base.Add(3 * time.Second), ID: "ex_07"}, Limit: 3}, "[ex_06 ex_05 ex_04]"},
	} {
		if got := fmt.Sprint(list(tt.f)); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}

	// Page through 3 at a time while an execution is recorded before each page.
	var seen []string
	f := store.ExecutionFilter{Limit: 3}
	for page := 0; ; page++ {
		add(fmt.Sprintf("ex_new_%d", page), "2", "#repair_onedrive", time.Now().UTC().Truncate(time.Microsecond))
		got, err := db.ListExecutions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		seen = append(seen, ids(got)...)
		last := got[len(got)-1]
		f.After = &store.ExecutionPosition{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	want := []string{"ex_new_0", "ex_gpo", "ex_09", "ex_08", "ex_07", "ex_06", "ex_05", "ex_04", "ex_03", "ex_02", "ex_01", "ex_00"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("pages: got %v, want %v", seen, want)
	}
}

// TestSigningKeyIsShared: every caller, concurrently, gets the same 32-byte key.
func TestSigningKeyIsShared(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	const n = 6
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = db.SigningKey(context.Background(), "test") })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || len(keys[i]) != 32 || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("key %d: got %x %v, want the same 32 bytes as %x", i, keys[i], errs[i], keys[0])
		}
	}
	other, err := db.SigningKey(context.Background(), "other")
	if err != nil || bytes.Equal(other, keys[0]) {
		t.Errorf("another purpose: got %x %v, want another key", other, err)
	}
}
