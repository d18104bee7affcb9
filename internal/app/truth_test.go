package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apitest"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// restAPI calls a running dexbridge with one key and checks every answer against the
// OpenAPI document. Its HTTP client gives up after a minute: a wait that does not end
// when a device is away (the refresh bound and wait_seconds are longer) fails the call.
type restAPI struct {
	t     *testing.T
	base  string
	key   string
	check *apitest.Checker
	hc    *http.Client
}

func (a restAPI) call(method, path string, body, out any) int {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("X-API-Key", a.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a.check.Check(a.t, req, resp.StatusCode, resp.Header, raw)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			a.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

func (a restAPI) diagnose(topic, device string, refresh bool) (int, events.Diagnosis) {
	a.t.Helper()
	var d events.Diagnosis
	code := a.call(http.MethodPost, "/api/v1/topics/"+topic+"/diagnosis", map[string]any{"device": device, "refresh": refresh}, &d)
	return code, d
}

// TestAnswersStayTrueOnFleetDevices diagnoses every topic on ordinary fleet devices
// of two tenants, drawn at random with a fixed seed (Windows and macOS, online,
// offline and long unseen), and checks, through the REST API, what must hold on any
// device: the verdict agrees with the findings and the rules, healthy is never claimed
// on stale, undated or incomplete data, every value is dated no later than the device
// was last seen, stale says whether the data is older than the topic's max age, the
// presence agrees with last_seen, a generic remediation is not ready on a healthy
// device. On devices that are not online, a refresh and a remediation do not wait for
// the device: they answer with the executions waiting, the last known values and
// their times, and a later diagnosis still has those values.
func TestAnswersStayTrueOnFleetDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("diagnoses a hundred fleet devices")
	}
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) {
		c.Executions = nxsim.ExecutionTiming{Pending: 100 * time.Millisecond, Running: 200 * time.Millisecond, Tick: 10 * time.Millisecond}
	})
	cfg := testConfig(t)
	cfg.Instances = discoverytest.Config(sim, "eu", "us").Instances
	cfg.Limits.EngineRequestsPerSecond, cfg.Limits.PortalRequestsPerSecond = 1000, 1000
	cfg.Executions.PollInterval = config.Duration(200 * time.Millisecond)
	// Far beyond the client's minute: only an early end answers in time.
	cfg.Diagnosis.RefreshTimeout = config.Duration(5 * time.Minute)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	base, _ := start(t, cfg, "ingress", "devices", "discovery", "topics", "remoteactions", "poller")
	api := restAPI{t: t, base: base, key: apiKey(t, cfg), check: apitest.New(t), hc: &http.Client{Timeout: time.Minute}}
	waitUntil(t, func() bool {
		var st struct {
			Instances []events.InstanceStatus `json:"instances"`
		}
		up := 0
		if api.call(http.MethodGet, "/api/v1/status", nil, &st) == 200 {
			for _, in := range st.Instances {
				if in.State == "up" && in.Cache.Devices > 0 {
					up++
				}
			}
		}
		return up == 2
	})
	var topics struct {
		Topics []events.Topic `json:"topics"`
	}
	if api.call(http.MethodGet, "/api/v1/topics", nil, &topics) != 200 || len(topics.Topics) == 0 {
		t.Fatal("no topics")
	}
	onlineWithin := cfg.Presence.OnlineWithin.D()
	ctx := context.Background()
	verdicts := map[string]int{}
	var healthyOutlook, absent []nxsim.SampledDevice
	for _, tenant := range []string{"eu", "us"} {
		ctl := nxsim.NewControlClient(sim.TenantURL(tenant), nil)
		for _, platform := range []string{"Windows", "macOS"} {
			for _, presence := range []string{"online", "offline", "long_unseen"} {
				devs, err := ctl.SampleDevices(ctx, nxsim.Sample{N: 2, Seed: 15, Platform: platform, Presence: presence})
				if err != nil {
					t.Fatal(err)
				}
				if presence == "long_unseen" && tenant == "eu" && platform == "Windows" {
					devs = append(devs, beyondTheCache(t, ctl))
				}
				for _, dev := range devs {
					for _, tp := range topics.Topics {
						code, d := api.diagnose(tp.ID, dev.Name, false)
						switch {
						case !slices.Contains(tp.Platforms, dev.Platform):
							if code != http.StatusUnprocessableEntity {
								t.Errorf("%s on %s %s: got %d, want 422", tp.ID, dev.Platform, dev.Name, code)
							}
							continue
						case code != http.StatusOK:
							t.Errorf("%s on %s (%s, last seen %s): got %d, want 200", tp.ID, dev.Name, presence, dev.LastSeen, code)
							continue
						}
						checkDiagnosis(t, tenant+"/"+dev.Name+"/"+tp.ID, d, onlineWithin)
						verdicts[d.Verdict]++
						// What nxsim knows of the device agrees with what dexbridge says.
						if presence == "long_unseen" {
							if d.Device.Presence != events.PresenceOffline {
								t.Errorf("%s/%s: long-unseen device is %s", dev.Name, tp.ID, d.Device.Presence)
							}
							if d.DataAsOf != nil && !d.Stale {
								t.Errorf("%s/%s: data of a device unseen since %s is not stale (as of %s)", dev.Name, tp.ID, dev.LastSeen, d.DataAsOf)
							}
						}
						if presence == "online" && time.Since(dev.LastSeen) < onlineWithin-5*time.Minute && d.Device.Presence != events.PresenceOnline {
							t.Errorf("%s/%s: device seen %s is %s", dev.Name, tp.ID, dev.LastSeen, d.Device.Presence)
						}
						if tp.ID == "outlook" && d.Verdict == events.VerdictHealthy {
							healthyOutlook = append(healthyOutlook, dev)
						}
					}
					if platform == "Windows" && presence != "online" {
						absent = append(absent, dev)
					}
				}
			}
		}
	}
	for _, v := range []string{events.VerdictHealthy, events.VerdictProblemsFound, events.VerdictInconclusive} {
		if verdicts[v] == 0 {
			t.Errorf("no %s diagnosis among %v: the sample does not cover the verdicts", v, verdicts)
		}
	}

	// A healthy device is not offered the generic fix: the remediation is refused.
	if len(healthyOutlook) == 0 {
		t.Fatal("no healthy Outlook diagnosis")
	}
	var p map[string]any
	if code := api.call(http.MethodPost, "/api/v1/topics/outlook/remediations/repair_outlook_ost_problem",
		map[string]any{"device": healthyOutlook[0].Name}, &p); code != http.StatusConflict {
		t.Errorf("generic remediation on healthy %s: got %d, want 409", healthyOutlook[0].Name, code)
	}

	// Devices that are not online: refresh, then remediate; nothing waits for them.
	var refreshed, remediated int
	for _, dev := range absent {
		_, before := api.diagnose("printing", dev.Name, false)
		refreshed++
		const spooler = "remote_action.get_printer_status_windows.execution.outputs.SpoolerStatus"
		code, d := api.diagnose("printing", dev.Name, true)
		if code != http.StatusOK {
			t.Fatalf("refresh of %s: got %d", dev.Name, code)
		}
		checkDiagnosis(t, dev.Name+"/printing refreshed", d, onlineWithin)
		t.Logf("%s (%s, last seen %v): refresh %d ms of %d, %s, stale %v", dev.Name, d.Device.Presence,
			d.Device.LastSeen, d.Timing["refresh"], d.Timing["total"], d.Verdict, d.Stale)
		if len(d.Refreshed) != 1 || !slices.Contains([]string{events.StatusPending, events.StatusWaitingForDevice}, d.Refreshed[0].Status) {
			t.Errorf("refresh of %s: got executions %+v, want the collection pending or waiting for the device", dev.Name, d.Refreshed)
		}
		for _, after := range []events.Diagnosis{d, diagnoseOK(t, api, "printing", dev.Name)} {
			ft := after.FieldTimes[spooler]
			if after.Fields[spooler] != before.Fields[spooler] || before.Fields[spooler] == nil || !ft.LastKnown ||
				ft.AsOf == nil || before.FieldTimes[spooler].AsOf == nil || !ft.AsOf.Equal(*before.FieldTimes[spooler].AsOf) ||
				!slices.Contains([]string{events.StatusPending, events.StatusWaitingForDevice}, ft.LatestStatus) {
				t.Errorf("%s after a refresh: got %s = %v %+v, want the last known %v as of %v, marked so",
					dev.Name, spooler, after.Fields[spooler], ft, before.Fields[spooler], before.FieldTimes[spooler].AsOf)
			}
		}

		// A remediation with a long wait answers 202 as soon as it waits for the device.
		var ex events.Execution
		code = api.call(http.MethodPost, "/api/v1/remote-actions/executions",
			map[string]any{"remote_action": "#restart_print_spooler", "device": dev.Name, "wait_seconds": 120}, &ex)
		checkAbsentExecution(t, dev.Name+" trigger", code, ex)
		// So does a long poll of it.
		var polled events.Execution
		code = api.call(http.MethodGet, "/api/v1/remote-actions/executions/"+ex.ID+"?wait=120", nil, &polled)
		if code != http.StatusOK || polled.ID != ex.ID {
			t.Errorf("long poll of %s: got %d %+v", ex.ID, code, polled)
		}
		if cached := time.Since(dev.LastSeen) < 30*24*time.Hour; cached {
			checkAbsentExecution(t, dev.Name+" long poll", http.StatusAccepted, polled)
		} else if !slices.Contains([]string{events.StatusPending, events.StatusWaitingForDevice}, polled.Status) || polled.Device.Presence != "" {
			// Outside the cache, dexbridge does not know when the device was last seen
			// without asking the tenant: the long poll ends at the next change (the
			// trigger's answer had the presence).
			t.Errorf("long poll of %s, beyond the cache: got %s, presence %q; want it waiting, presence not known", dev.Name, polled.Status, polled.Device.Presence)
		}
		// And a topic's remediation: the generic one is ready when the diagnosis is not healthy.
		if _, o := api.diagnose("outlook", dev.Name, false); o.Verdict != events.VerdictHealthy {
			code = api.call(http.MethodPost, "/api/v1/topics/outlook/remediations/repair_outlook_ost_problem",
				map[string]any{"device": dev.Name, "wait_seconds": 120}, &ex)
			checkAbsentExecution(t, dev.Name+" topic remediation", code, ex)
			remediated++
		}
	}
	t.Logf("verdicts %v; %d devices not online refreshed, %d remediated", verdicts, refreshed, remediated)
	if refreshed == 0 || remediated == 0 {
		t.Errorf("refreshed %d and remediated %d devices that are not online, want some of each", refreshed, remediated)
	}
}

// beyondTheCache is a Windows device of the tenant last seen more than 31 days ago:
// discovery does not cache it, dexbridge finds it live.
func beyondTheCache(t *testing.T, ctl *nxsim.ControlClient) nxsim.SampledDevice {
	t.Helper()
	old, err := ctl.SampleDevices(context.Background(), nxsim.Sample{N: 100, Seed: 15, Platform: "Windows", Presence: "long_unseen"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range old {
		if time.Since(d.LastSeen) > 31*24*time.Hour {
			return d
		}
	}
	t.Fatal("no Windows device last seen more than 31 days ago")
	return nxsim.SampledDevice{}
}

func diagnoseOK(t *testing.T, api restAPI, topic, device string) events.Diagnosis {
	t.Helper()
	code, d := api.diagnose(topic, device, false)
	if code != http.StatusOK {
		t.Fatalf("%s on %s: got %d", topic, device, code)
	}
	return d
}

// checkAbsentExecution checks the answer of a remote action on a device that is not
// online: 202, waiting for it, with its presence, last_seen and expiry.
func checkAbsentExecution(t *testing.T, what string, code int, ex events.Execution) {
	t.Helper()
	if code != http.StatusAccepted || !events.AwaitsAbsentDevice(ex) || ex.Device.Presence != events.PresenceOffline ||
		ex.Device.LastSeen == nil || !ex.ExpiresAt.After(time.Now()) {
		t.Errorf("%s: got %d, status %s, device %+v, expires %s; want 202 waiting for the offline device, with its last_seen and expiry",
			what, code, ex.Status, ex.Device, ex.ExpiresAt)
	}
}

// checkDiagnosis checks what must hold of any diagnosis.
func checkDiagnosis(t *testing.T, what string, d events.Diagnosis, onlineWithin time.Duration) {
	t.Helper()
	notEvaluated := 0
	for _, r := range d.Rules {
		if r.Status == "not_evaluated" {
			notEvaluated++
		}
	}
	switch d.Verdict {
	case events.VerdictProblemsFound:
		if len(d.Findings) == 0 {
			t.Errorf("%s: problems_found without findings", what)
		}
	case events.VerdictHealthy:
		if len(d.Findings) > 0 || notEvaluated > 0 || d.Stale || d.DataAsOf == nil || len(d.VerdictReasons) > 0 {
			t.Errorf("%s: healthy with %d findings, %d rules not evaluated, stale %v, data as of %v, reasons %+v",
				what, len(d.Findings), notEvaluated, d.Stale, d.DataAsOf, d.VerdictReasons)
		}
	case events.VerdictInconclusive:
		if len(d.Findings) > 0 || len(d.VerdictReasons) == 0 || (notEvaluated == 0 && !d.Stale && d.DataAsOf != nil && !undated(d)) {
			t.Errorf("%s: inconclusive with %d findings, %d rules not evaluated, stale %v, reasons %+v", what, len(d.Findings), notEvaluated, d.Stale, d.VerdictReasons)
		}
	default:
		t.Errorf("%s: verdict %q", what, d.Verdict)
	}
	// data_as_of is the oldest dated value, no later than last_seen; stale says
	// whether it is older than the topic's max age.
	var oldest *time.Time
	for f, ft := range d.FieldTimes {
		if ft.AsOf == nil {
			continue
		}
		if d.Device.LastSeen == nil || ft.AsOf.After(*d.Device.LastSeen) {
			t.Errorf("%s: %s is dated %s, after the device was last seen (%v)", what, f, ft.AsOf, d.Device.LastSeen)
		}
		if ft.AsOf.Location() != time.UTC {
			t.Errorf("%s: %s is dated in %s, want UTC", what, f, ft.AsOf.Location())
		}
		if ft.LastKnown && ft.LatestStatus == "" {
			t.Errorf("%s: %s is a last known value without the latest collection's status", what, f)
		}
		if d.Fields[f] != nil && (oldest == nil || ft.AsOf.Before(*oldest)) {
			oldest = ft.AsOf
		}
	}
	if (oldest == nil) != (d.DataAsOf == nil) || (oldest != nil && !oldest.Equal(*d.DataAsOf)) {
		t.Errorf("%s: data as of %v, want the oldest value's time %v", what, d.DataAsOf, oldest)
	}
	maxAge := time.Duration(d.MaxAgeSeconds) * time.Second
	if maxAge <= 0 || (d.DataAsOf != nil && d.Stale != (d.DiagnosedAt.Sub(*d.DataAsOf) > maxAge)) || (d.DataAsOf == nil && d.Stale) {
		t.Errorf("%s: stale %v with data as of %v diagnosed at %s, max age %s", what, d.Stale, d.DataAsOf, d.DiagnosedAt, maxAge)
	}
	if want := events.PresenceAt(d.Device.LastSeen, d.DiagnosedAt, onlineWithin); d.Device.Presence != want {
		t.Errorf("%s: presence %s, want %s for last seen %v", what, d.Device.Presence, want, d.Device.LastSeen)
	}
	for _, s := range d.Remediations {
		if s.Generic && d.Verdict == events.VerdictHealthy && (s.Ready || s.NotReady == "") {
			t.Errorf("%s: generic %s is ready on a healthy device", what, s.ID)
		}
	}
	for _, ts := range []time.Time{d.DiagnosedAt} {
		if ts.Location() != time.UTC {
			t.Errorf("%s: %s is not UTC", what, ts)
		}
	}
	if d.DataAsOf != nil && d.DataAsOf.Location() != time.UTC || d.Device.LastSeen != nil && d.Device.LastSeen.Location() != time.UTC {
		t.Errorf("%s: data as of %v, last seen %v: want UTC", what, d.DataAsOf, d.Device.LastSeen)
	}
	if strings.TrimSpace(d.Source) == "" {
		t.Errorf("%s: no source", what)
	}
}

// undated reports whether a value of d has no time.
func undated(d events.Diagnosis) bool {
	for f, ft := range d.FieldTimes {
		if ft.AsOf == nil && d.Fields[f] != nil {
			return true
		}
	}
	return false
}
