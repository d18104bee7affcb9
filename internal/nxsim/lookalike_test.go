package nxsim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// lookAlikes generates the default tenants' fleets and lists the users of the
// second whose user name is also one of the first's: name, different people
// (SID), their full names in each.
func lookAlikes(t *testing.T, size int, seed int64) []string {
	t.Helper()
	var fleets []*fleet.Fleet
	for _, tc := range nxsim.DefaultTenants(size, seed) {
		f, err := fleet.New(fleet.Config{Size: tc.Size, Seed: tc.Seed, Prefix: strings.ToUpper(tc.Name), Domain: "example.com",
			Scenarios: tc.Scenarios != nil && *tc.Scenarios, Clock: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }})
		if err != nil {
			t.Fatal(err)
		}
		fleets = append(fleets, f)
	}
	eu, us := fleets[0], fleets[1]
	var out []string
	for u := range us.Users() {
		theirs := us.UserOf(u)
		e, ok := eu.UserByName(theirs.Name)
		if !ok {
			continue
		}
		ours := eu.UserOf(e)
		if ours.UPN != theirs.UPN || ours.SID == theirs.SID {
			t.Fatalf("%s: eu %+v, us %+v; want the same UPN (and e-mail address) and different SIDs", theirs.Name, ours, theirs)
		}
		out = append(out, theirs.Name+"|"+ours.FullName+"|"+theirs.FullName)
	}
	return out
}

// TestTenantsShareUserNames: as real tenants do, nxsim's default tenants have
// different people under one user name and UPN (tmeier is Tina Meier in eu and
// Tomas Meier in us), the same ones at every start.
func TestTenantsShareUserNames(t *testing.T) {
	first := lookAlikes(t, 2000, 1)
	differ := 0
	for _, l := range first {
		if p := strings.Split(l, "|"); p[1] != p[2] {
			differ++
		}
	}
	t.Logf("%d of us's users share a user name with someone in eu, %d of them with a different full name", len(first), differ)
	if len(first) < 100 || differ < len(first)/3 {
		t.Errorf("got %d look-alikes, %d with different full names; want most of us's 200 users, many of them telling apart by name", len(first), differ)
	}
	if again := lookAlikes(t, 2000, 1); strings.Join(again, ",") != strings.Join(first, ",") {
		t.Error("the look-alikes differ from one generation to the next")
	}
}
