package nxsim

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nql"
)

// BenchmarkExecuteDeviceBasicInfos runs #get_device_basic_infos (the identification query:
// devices during past 30d with session.events, where user.name == $username) over a
// 100 000-device tenant, without HTTP.
//
//	go test -run '^$' -bench ExecuteDeviceBasicInfos -benchtime 5x ./internal/nxsim/
func BenchmarkExecuteDeviceBasicInfos(b *testing.B) {
	s, err := NewServer(Config{FleetSize: 100_000, TopicsDir: "../../topics", QueriesFile: "../../config/queries.yaml",
		Tenants: []TenantConfig{{Name: "eu"}}, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	t := s.tenants[0]
	q, _ := t.queries.get("#get_device_basic_infos")
	for b.Loop() {
		res, err := q.Plan.Run(context.Background(), t.src, map[string]string{"username": "jdoe"}, nql.RunOptions{Now: time.Now(), MaxRows: 1000})
		if err != nil || len(res.Rows) != 2 {
			b.Fatalf("run: %v rows, err %v", res, err)
		}
	}
}

// BenchmarkExportAllDevices exports every device of a 500 000-device tenant to a GZIP
// results file and reports the peak heap sampled during the export (peak-heap-MB).
//
//	go test -run '^$' -bench ExportAllDevices -benchtime 1x ./internal/nxsim/
func BenchmarkExportAllDevices(b *testing.B) {
	s, err := NewServer(Config{FleetSize: 500_000, TopicsDir: "../../topics", QueriesFile: "../../config/queries.yaml",
		Tenants: []TenantConfig{{Name: "eu"}}, Logger: discardLogger(), ExportDelay: time.Millisecond,
		Queries: map[string]string{"#export_devices": "devices | list name, collector.uid, operating_system.platform, operating_system.name, hardware.type, last_seen, login.last_login_user_name"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	t := s.tenants[0]
	q, _ := t.queries.get("#export_devices")
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
	}()
	for b.Loop() {
		t.exports.jobs["bench"] = &exportJob{id: "bench", status: exportSubmitted}
		t.runExport("bench", q, nil, "GZIP", time.UTC, ExportSettings{DelayMS: 1})
		if j, _ := t.exports.job("bench"); j.status != exportCompleted {
			b.Fatalf("export: %+v", j)
		}
	}
	close(stop)
	<-done
	b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
}
