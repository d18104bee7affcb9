package nxql_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxql"
)

var fuzzSeeds = []string{
	`(select (device_uid name) (from device))`,
	`(select (name #"action:get_onedrive_status/OneDriveStatus" #Location) (from device (where device (eq name (string "PC-ONEDRIVE")) (eq name (pattern "eu-*")))))`,
	`(select (name number_of_packages) (from device (where device (ge last_seen (datetime now-7d))) (with installation (where package (ne version (pattern "16.*"))) (compute number_of_packages) (between now-30d now))) (order_by number_of_packages desc) (limit 3))`,
	`(select ((device (device_uid)) (user (name)) last_end_time) (from (device user) (with session (compute last_end_time) (between midnight-1d midnight))))`,
	`(select ((remote_action_execution (request_uid status)) (device (name))) (from (remote_action_execution device) (where remote_action_execution (eq status (enum success))) (between 2025-01-01@00:00:00 now)))`,
	`(select (name) (from device (where device (and (not (eq platform (enum mac_os))) (or (gt total_ram (integer 1)) (lt number_of_days_since_last_boot (real 2.5)))))))`,
	`(select (*) (from user (where user (eq name (string "j\"doe")))))`,
	"(select (name)\n (from device)",
	`((((`,
	`(select #* (from device) (limit 1))`,
}

// FuzzParse: Compile never panics and every failure is a positioned *Error
// inside the text.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	s := nxql.NewSchema()
	f.Fuzz(func(t *testing.T, query string) {
		_, err := nxql.Compile(query, s)
		if err == nil {
			return
		}
		var e *nxql.Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v (%T) is not an *nxql.Error", err, err)
		}
		if e.Pos.Line < 1 || e.Pos.Column < 1 || e.Pos.Offset < 0 || e.Pos.Offset > len(query) {
			t.Fatalf("error position %+v outside the %d-byte query", e.Pos, len(query))
		}
	})
}

// FuzzRun: any query that compiles runs over a small fleet without panicking,
// returns rows as wide as its columns, and respects its limit.
func FuzzRun(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, true)
	}
	fl := newFleet(f, 20, 1)
	s := nxql.NewSchema()
	f.Fuzz(func(t *testing.T, query string, macToo bool) {
		q, err := nxql.Compile(query, s)
		if err != nil {
			return
		}
		platforms := []string{"windows"}
		if macToo {
			platforms = append(platforms, "mac_os")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := q.Run(ctx, fleetSource{fl}, nxql.RunOptions{Now: fixedNow, Platforms: platforms, MaxRows: 500})
		if err != nil {
			t.Fatalf("run %q: %v", query, err)
		}
		for _, r := range res.Rows {
			if len(r) != len(res.Columns) {
				t.Fatalf("row of %d values for %d columns", len(r), len(res.Columns))
			}
		}
		if len(res.Rows) > 500 {
			t.Fatalf("%d rows beyond MaxRows", len(res.Rows))
		}
	})
}
