package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestRevocationReachesEveryReplicaWithinASecond: two Keys values (two replicas)
// share a database; after one revokes, the other refuses the key once its cache
// entry is older than a second.
func TestRevocationReachesEveryReplicaWithinASecond(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	ctx := context.Background()
	clock := time.Now()
	a, b := NewKeys(db), NewKeys(db)
	b.now = func() time.Time { return clock }
	secret, key, err := a.Create(ctx, NewKey{Name: "k", Scopes: []string{"read"}, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, secret); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	if _, err := a.Revoke(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(cacheTTL + time.Millisecond)
	_, err = b.Authenticate(ctx, secret)
	var p *problem.Error
	if !errors.As(err, &p) || p.Code != problem.Unauthorized {
		t.Fatalf("a second after revocation on the other replica: got %v, want unauthorized", err)
	}
}

func TestCredentials(t *testing.T) {
	c := NewCredentials([]Credential{
		{Who: "admin", User: "ops", Password: "long-enough-password"},
		{Who: "instance:eu", User: "eu-client", Password: "s"},
		{Who: "ignored", User: "", Password: ""},
	})
	tests := []struct {
		user, pass, who string
		ok              bool
	}{
		{"ops", "long-enough-password", "admin", true},
		{"eu-client", "s", "instance:eu", true},
		{"ops", "s", "", false},
		{"eu-client", "long-enough-password", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		who, ok := c.Check(tt.user, tt.pass)
		if who != tt.who || ok != tt.ok {
			t.Errorf("Check(%q, %q): got %q %v, want %q %v", tt.user, tt.pass, who, ok, tt.who, tt.ok)
		}
	}
}

func TestParseScopes(t *testing.T) {
	got, err := ParseScopes(nil)
	if err != nil || len(got) != 2 {
		t.Errorf("default scopes: got %v %v, want read and diagnose", got, err)
	}
	if _, err := ParseScopes([]string{"read", "superuser"}); err == nil {
		t.Error("unknown scope accepted")
	}
	got, _ = ParseScopes([]string{"admin", "admin"})
	if len(got) != 1 {
		t.Errorf("duplicates: got %v", got)
	}
}

func TestCheckDelegate(t *testing.T) {
	tests := []struct {
		scopes   []string
		employee string
		field    string
	}{
		{[]string{"read"}, "", ""},
		{[]string{"delegate", "read", "diagnose", "remediate"}, "jdoe@example.com", ""},
		{[]string{"delegate", "read"}, "", ""}, // names its employee per request
		{[]string{"read"}, "jdoe@example.com", "employee_upn"},
		{[]string{"delegate", "admin"}, "jdoe@example.com", "scopes"},
		{[]string{"delegate"}, "jdoe@example.com", "scopes"},
		{[]string{"delegate", "read"}, "CORP\\jdoe", "employee_upn"},
		{[]string{"delegate", "read"}, "jdoe@example.com\nX-Evil: 1", "employee_upn"},
	}
	for _, tt := range tests {
		field, err := CheckDelegate(tt.scopes, tt.employee)
		if field != tt.field || (err == nil) != (tt.field == "") {
			t.Errorf("%v %q: got %q %v, want field %q", tt.scopes, tt.employee, field, err, tt.field)
		}
	}
}

func TestActFor(t *testing.T) {
	tests := []struct {
		scopes        []string
		bound, named  string
		code          problem.Code
		actingFor     string
		wantDelegated bool
	}{
		{[]string{"read"}, "", "", "", "", false},
		{[]string{"read"}, "", "jdoe@example.com", problem.DelegateForbidden, "", false},
		{[]string{"delegate", "read"}, "jdoe@example.com", "", "", "jdoe@example.com", true},
		{[]string{"delegate", "read"}, "jdoe@example.com", "JDOE@example.com", "", "jdoe@example.com", true},
		{[]string{"delegate", "read"}, "jdoe@example.com", "asmith@example.com", problem.DelegateForbidden, "jdoe@example.com", true},
		{[]string{"delegate", "read"}, "", "", problem.DelegateForbidden, "", true},
		{[]string{"delegate", "read"}, "", "asmith@example.com", "", "asmith@example.com", true},
		{[]string{"delegate", "read"}, "", "asmith", problem.Invalid, "", true},
	}
	for _, tt := range tests {
		p := &Principal{Scopes: tt.scopes, Employee: tt.bound}
		err := p.ActFor(tt.named)
		if problem.CodeOf(err) != tt.code || p.Employee != tt.actingFor || p.Delegated() != tt.wantDelegated {
			t.Errorf("%v bound %q naming %q: got %v acting for %q (delegated %v), want %q for %q",
				tt.scopes, tt.bound, tt.named, err, p.Employee, p.Delegated(), tt.code, tt.actingFor)
		}
	}
}
