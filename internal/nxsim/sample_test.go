package nxsim_test

import (
	"context"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim"
)

func TestSampleDevices(t *testing.T) {
	ctx := context.Background()
	in, err := nxsim.Start(ctx, nxsim.Config{Addr: "127.0.0.1:0", FleetSize: 400, Seed: 3, TopicsDir: "../../topics", QueriesFile: "../../config/queries.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	ctl := nxsim.NewControlClient(in.URL(), nil)
	info, err := ctl.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	scenario := map[string]bool{}
	for _, n := range info.ScenarioDevices {
		scenario[n] = true
	}
	for _, tc := range []nxsim.Sample{
		{N: 5, Seed: 7, Platform: "macOS"},
		{N: 5, Seed: 7, Platform: "Windows", Presence: "online"},
		{N: 5, Seed: 8, Presence: "offline"},
		{N: 5, Seed: 9, Presence: "long_unseen"},
	} {
		got, err := ctl.SampleDevices(ctx, tc)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.N {
			t.Fatalf("%+v: got %d devices, want %d", tc, len(got), tc.N)
		}
		again, _ := ctl.SampleDevices(ctx, tc)
		for k, d := range got {
			if again[k].Name != d.Name {
				t.Errorf("%+v: the same seed drew %s then %s", tc, d.Name, again[k].Name)
			}
			if scenario[d.Name] {
				t.Errorf("%+v: drew scenario device %s", tc, d.Name)
			}
			if tc.Platform != "" && d.Platform != tc.Platform {
				t.Errorf("%+v: %s is %s", tc, d.Name, d.Platform)
			}
			if tc.Presence != "" && d.Presence != tc.Presence {
				t.Errorf("%+v: %s is %s", tc, d.Name, d.Presence)
			}
			age := time.Since(d.LastSeen)
			switch d.Presence {
			case "online":
				if age > time.Hour+time.Minute {
					t.Errorf("%s online but last seen %s ago", d.Name, age)
				}
			case "long_unseen":
				if age < 7*24*time.Hour {
					t.Errorf("%s long unseen but last seen %s ago", d.Name, age)
				}
			}
			if d.User == "" || d.UserUPN == "" || d.CollectorUID == "" {
				t.Errorf("%+v: incomplete %+v", tc, d)
			}
		}
	}
	if _, err := ctl.SampleDevices(ctx, nxsim.Sample{Presence: "sleeping"}); err == nil {
		t.Error("presence sleeping: got no error")
	}
}
