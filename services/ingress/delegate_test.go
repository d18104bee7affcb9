package ingress

import (
	"context"
	"testing"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/problem"
)

func asKey(p *auth.Principal) context.Context {
	return context.WithValue(context.Background(), principalKey{}, p)
}

// TestDelegateSeesItsEmployeeOnly: a delegate identifies its employee by UPN only,
// in any case, and reads only their proactive events; other keys are not narrowed.
func TestDelegateSeesItsEmployeeOnly(t *testing.T) {
	delegate := asKey(&auth.Principal{KeyID: "key_1", Scopes: []string{"delegate", "read"}, Employee: "jdoe@example.com"})
	plain := asKey(&auth.Principal{KeyID: "key_2", Scopes: []string{"read"}})
	tests := []struct {
		key, value string
		allowed    bool
	}{
		{events.KeyUPN, "jdoe@example.com", true},
		{events.KeyUPN, "JDoe@Example.com", true},
		{events.KeyUPN, "asmith@example.com", false},
		{events.KeyUsername, "jdoe", false},
		{events.KeyEmail, "jdoe@example.com", false},
		{events.KeyDeviceName, "PC-OUTLOOK-OFFLINE", false},
	}
	for _, tt := range tests {
		req := events.DevicesIdentifyRequest{Key: tt.key, Value: tt.value}
		err := delegateIdentify(delegate, req)
		if (err == nil) != tt.allowed || (err != nil && problem.CodeOf(err) != problem.DelegateForbidden) {
			t.Errorf("delegate identifying %s=%s: got %v, want allowed=%v or delegate_forbidden", tt.key, tt.value, err, tt.allowed)
		}
		if err := delegateIdentify(plain, req); err != nil {
			t.Errorf("plain key identifying %s=%s: got %v", tt.key, tt.value, err)
		}
	}
	evs := []events.ProactiveEvent{
		{ID: "mine", Employee: &events.ProactiveEmployee{UPN: "JDOE@example.com"}},
		{ID: "theirs", Employee: &events.ProactiveEmployee{UPN: "asmith@example.com"}},
		{ID: "nobody's"},
		{ID: "no upn", Employee: &events.ProactiveEmployee{Name: "John Doe"}},
	}
	if got := delegateEvents(delegate, evs); len(got) != 1 || got[0].ID != "mine" {
		t.Errorf("delegate's events: got %v, want only its employee's", got)
	}
	if got := delegateEvents(plain, evs); len(got) != len(evs) {
		t.Errorf("plain key's events: got %d, want all %d", len(got), len(evs))
	}
}
