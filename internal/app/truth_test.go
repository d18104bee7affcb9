package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
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
	started := time.Now()
	sim, cfg, api := truthStack(t)
	var topics struct {
		Topics []events.Topic `json:"topics"`
	}
	if api.call(http.MethodGet, "/api/v1/topics", nil, &topics) != 200 || len(topics.Topics) == 0 {
		t.Fatal("no topics")
	}
	onlineWithin := cfg.Presence.OnlineWithin.D()
	ctx := context.Background()
	verdicts, sources := map[string]int{}, map[string]int{}
	var healthyOutlook, absent []nxsim.SampledDevice
	for _, tenant := range []string{"eu", "us"} {
		ctl := nxsim.NewControlClient(sim.TenantURL(tenant), nil)
		for _, platform := range []string{"Windows", "macOS"} {
			for _, presence := range []string{"online", "offline", "long_unseen"} {
				devs, err := ctl.SampleDevices(ctx, nxsim.Sample{N: 2, Seed: 15, Platform: platform, Presence: presence})
				sampled := time.Now()
				if err != nil {
					t.Fatal(err)
				}
				if presence == "long_unseen" && tenant == "eu" && platform == "Windows" {
					devs = append(devs, beyondTheCache(t, ctl))
				}
				for _, dev := range devs {
					for _, tp := range topics.Topics {
						asked := nqlCalls(t, sim, tenant)
						code, d := api.diagnose(tp.ID, dev.Name, false)
						// source says whether the tenant was asked.
						if n := nqlCalls(t, sim, tenant) - asked; code == http.StatusOK && (d.Source == events.SourceCache) != (n == 0) {
							t.Errorf("%s/%s: diagnosis from %s, and the tenant got %d NQL queries", dev.Name, tp.ID, d.Source, n)
						}
						sources[d.Source]++
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
						// Every value is dated no later than the device's last_seen, which is
						// nxsim's (no later, no older than the test).
						checkSeen(t, tenant+"/"+dev.Name+"/"+tp.ID, d.Device.LastSeen, dev.LastSeen, sampled, started)
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
	t.Logf("sources %v", sources)
	t.Logf("verdicts %v; %d devices not online refreshed, %d remediated", verdicts, refreshed, remediated)
	if refreshed == 0 || remediated == 0 {
		t.Errorf("refreshed %d and remediated %d devices that are not online, want some of each", refreshed, remediated)
	}
}

// truthStack runs a whole deployment against nxsim's tenants eu and us, executions
// of a few hundred milliseconds, and waits for the first discovery of both.
// tune, when given, changes the configuration knowing nxsim.
func truthStack(t *testing.T, tune ...func(*nxsim.Instance, *config.Config)) (*nxsim.Instance, config.Config, restAPI) {
	t.Helper()
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) {
		c.Executions = nxsim.ExecutionTiming{Pending: 100 * time.Millisecond, Running: 200 * time.Millisecond, Tick: 10 * time.Millisecond}
	})
	cfg := testConfig(t)
	cfg.Instances = discoverytest.Config(sim, "eu", "us").Instances
	cfg.Limits.EngineRequestsPerSecond, cfg.Limits.PortalRequestsPerSecond = 1000, 1000
	cfg.Executions.PollInterval = config.Duration(200 * time.Millisecond)
	// Far beyond the client's minute: only an early end answers in time.
	cfg.Diagnosis.RefreshTimeout = config.Duration(5 * time.Minute)
	for _, f := range tune {
		f(sim, &cfg)
	}
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
	return sim, cfg, api
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

// TestIdentificationAndExecutionsStayTrue checks, through the REST API, on fleet
// devices of two tenants drawn at random with a fixed seed (Windows and macOS,
// online, offline and long unseen), that identification and a device's page say
// what nxsim knows: the device's tenant, platform and presence, a last_seen no later
// than nxsim's and no older than the discovery that read it, the cache as the source
// only for devices the cache can hold, and the same last_seen in a diagnosis. A
// refresh on a device that is online dates the values it collected no later than the
// device was seen, and says they came live. A fix triggered twice on a device that
// is away runs once; the executions list shows it waiting; force starts another.
func TestIdentificationAndExecutionsStayTrue(t *testing.T) {
	if testing.Short() {
		t.Skip("identifies and diagnoses dozens of fleet devices")
	}
	started := time.Now()
	sim, cfg, api := truthStack(t)
	onlineWithin := cfg.Presence.OnlineWithin.D()
	period := cfg.Cache.UserActivityPeriod.D()
	ctx := context.Background()
	var online, away []nxsim.SampledDevice
	checked := 0
	for _, tenant := range []string{"eu", "us"} {
		ctl := nxsim.NewControlClient(sim.TenantURL(tenant), nil)
		for _, platform := range []string{"Windows", "macOS"} {
			for _, presence := range []string{"online", "offline", "long_unseen"} {
				devs, err := ctl.SampleDevices(ctx, nxsim.Sample{N: 3, Seed: 16, Platform: platform, Presence: presence})
				sampled := time.Now()
				if err != nil {
					t.Fatal(err)
				}
				if presence == "long_unseen" && platform == "Windows" && tenant == "eu" {
					devs = append(devs, beyondTheCache(t, ctl))
				}
				for _, sd := range devs {
					what := tenant + "/" + sd.Name + " (" + presence + ", last seen " + sd.LastSeen.UTC().Format(time.RFC3339) + ")"
					age := time.Since(sd.LastSeen)
					wantSource := events.SourceCache
					if age > period {
						wantSource = events.SourceLive
					}
					nearEdge := (age - period).Abs() < 24*time.Hour
					var a events.DevicesIdentifyReply
					if code := api.call(http.MethodGet, "/api/v1/devices?device_name="+url.QueryEscape(sd.Name), nil, &a); code != 200 || len(a.Devices) != 1 {
						t.Errorf("%s: identify got %d %+v, want the one device", what, code, a.Devices)
						continue
					}
					checked++
					got := a.Devices[0]
					if got.Instance != tenant || got.Platform != sd.Platform || got.CollectorUID != sd.CollectorUID {
						t.Errorf("%s: identified as %s/%s %s %s", what, got.Instance, got.Name, got.Platform, got.CollectorUID)
					}
					if !nearEdge && a.Source != wantSource {
						t.Errorf("%s: source %s, want %s", what, a.Source, wantSource)
					}
					checkSeen(t, what, got.LastSeen, sd.LastSeen, sampled, started)
					if a.DataAsOf == nil || got.LastSeen != nil && got.LastSeen.After(a.DataAsOf.Add(time.Second)) {
						t.Errorf("%s: last seen %v, after the data it comes from (%v)", what, got.LastSeen, a.DataAsOf)
					}
					if want := nxsimPresence(sd, onlineWithin); want != "" && got.Presence != want {
						t.Errorf("%s: presence %s, want %s", what, got.Presence, want)
					}
					// The device's page tells the same last_seen from the cache; asked live a
					// moment later, one no older (nxsim's devices keep their age).
					var page events.DevicesGetReply
					code := api.call(http.MethodGet, "/api/v1/devices/"+url.PathEscape(sd.Name), nil, &page)
					same := sameTime(page.Device.LastSeen, got.LastSeen)
					if a.Source == events.SourceLive && page.Device.LastSeen != nil && got.LastSeen != nil {
						same = !page.Device.LastSeen.Before(*got.LastSeen)
					}
					if code != 200 || page.Source != a.Source || !same || page.Device.Presence != got.Presence {
						t.Errorf("%s: device page got %d, %s, last seen %v %s; identify said %s, %v %s", what, code, page.Source,
							page.Device.LastSeen, page.Device.Presence, a.Source, got.LastSeen, got.Presence)
					}
					asked := nqlCalls(t, sim, tenant)
					code, d := api.diagnose("l1_device_checklist", sd.Name, false)
					if code != 200 {
						t.Errorf("%s: l1_device_checklist got %d", what, code)
						continue
					}
					// source says whether the tenant was asked.
					if n := nqlCalls(t, sim, tenant) - asked; (d.Source == events.SourceCache) != (n == 0) {
						t.Errorf("%s: diagnosis from %s, and the tenant got %d NQL queries", what, d.Source, n)
					}
					checkDiagnosis(t, what+"/l1_device_checklist", d, onlineWithin)
					checkSeen(t, what+" diagnosis", d.Device.LastSeen, sd.LastSeen, sampled, started)
					if a.Source == events.SourceLive && d.Source == events.SourceCache {
						t.Errorf("%s: a device the cache does not hold diagnosed from the cache", what)
					}
					// The employee of a device used lately finds it.
					if presence != "long_unseen" && sd.User != "" {
						var mine events.DevicesIdentifyReply
						api.call(http.MethodGet, "/api/v1/devices?username="+url.QueryEscape(sd.User)+"&instance="+tenant, nil, &mine)
						if !slices.ContainsFunc(mine.Devices, func(x events.Device) bool { return x.Name == sd.Name }) {
							t.Errorf("%s: its user %s does not find it: %+v", what, sd.User, mine.Devices)
						}
					}
					switch {
					case platform == "Windows" && presence == "online" && age < onlineWithin-5*time.Minute:
						online = append(online, sd)
					case platform == "Windows" && presence == "offline":
						away = append(away, sd)
					}
				}
			}
		}
	}
	t.Logf("%d fleet devices identified", checked)
	if len(online) == 0 || len(away) == 0 {
		t.Fatalf("%d online and %d offline Windows devices in the sample, want some of each", len(online), len(away))
	}

	// A refresh of a device that is online: the values it collected are dated when
	// collected, no later than the device was last seen, and came live.
	const spooler = "remote_action.get_printer_status_windows.execution.outputs.SpoolerStatus"
	for _, sd := range online[:min(2, len(online))] {
		before := time.Now().UTC().Add(-time.Second)
		code, d := api.diagnose("printing", sd.Name, true)
		if code != 200 {
			t.Errorf("refresh of %s: got %d", sd.Name, code)
			continue
		}
		checkDiagnosis(t, sd.Name+"/printing refreshed", d, onlineWithin)
		ft := d.FieldTimes[spooler]
		if len(d.Refreshed) != 1 || d.Refreshed[0].Status != events.StatusSuccess || ft.AsOf == nil || ft.AsOf.Before(before) || ft.LastKnown {
			t.Errorf("refresh of online %s: executions %+v, %s dated %+v; want the collection done and its value dated now", sd.Name, d.Refreshed, spooler, ft)
		}
		if d.Source == events.SourceCache || d.Device.Presence != events.PresenceOnline || d.Stale {
			t.Errorf("refresh of online %s: source %s, presence %s, stale %v; want live data of an online device", sd.Name, d.Source, d.Device.Presence, d.Stale)
		}
		// The next diagnosis does not go back to older data.
		next := diagnoseOK(t, api, "printing", sd.Name)
		if nt := next.FieldTimes[spooler]; ft.AsOf != nil && (nt.AsOf == nil || nt.AsOf.Before(*ft.AsOf)) {
			t.Errorf("diagnosis of %s after its refresh: %s dated %v, older than the refresh's %v", sd.Name, spooler, nt.AsOf, ft.AsOf)
		}
	}

	// One fix on a device that is away, however often it is asked for.
	sd := away[0]
	trigger := func(force bool) (int, api2Execution) {
		var ex api2Execution
		body := map[string]any{"remote_action": "#restart_print_spooler", "device": sd.Name}
		if force {
			body["force"] = true
		}
		return api.call(http.MethodPost, "/api/v1/remote-actions/executions", body, &ex), ex
	}
	c1, first := trigger(false)
	c2, again := trigger(false)
	if c1 != http.StatusAccepted || c2 != http.StatusOK || !again.Existing || again.ID != first.ID || first.Existing {
		t.Errorf("a fix twice on %s: got %d %+v then %d %+v; want 202, then 200 with the same execution, existing", sd.Name, c1, first, c2, again)
	}
	checkAbsentExecution(t, sd.Name+" trigger", c1, first.Execution)
	var list struct {
		Executions []events.Execution `json:"executions"`
	}
	if code := api.call(http.MethodGet, "/api/v1/remote-actions/executions?device="+url.QueryEscape(sd.Name)+"&status=pending,waiting_for_device", nil, &list); code != 200 ||
		len(list.Executions) != 1 || list.Executions[0].ID != first.ID {
		t.Errorf("executions waiting on %s: got %d %+v, want the one fix", sd.Name, code, list.Executions)
	}
	if c3, forced := trigger(true); c3 != http.StatusAccepted || forced.ID == first.ID || forced.Existing {
		t.Errorf("forced fix on %s: got %d %+v, want a new execution", sd.Name, c3, forced)
	}
}

// api2Execution is an execution as the trigger answers it.
type api2Execution struct {
	events.Execution
	Existing bool `json:"existing"`
}

// nxsimPresence is the presence dexbridge must give a sampled device, "" when it is
// too near the threshold to tell (the cache read it a moment ago).
func nxsimPresence(sd nxsim.SampledDevice, onlineWithin time.Duration) string {
	age := time.Since(sd.LastSeen)
	switch {
	case (age - onlineWithin).Abs() < 5*time.Minute:
		return ""
	case age < onlineWithin:
		return events.PresenceOnline
	}
	return events.PresenceOffline
}

// checkSeen checks a last_seen dexbridge gave against nxsim's (truth, as sampled at
// sampled): in UTC, no later than nxsim's now, and no older than the discovery that
// read it (nxsim's devices keep their age, so their last_seen moves on with the clock).
func checkSeen(t *testing.T, what string, got *time.Time, truth, sampled, started time.Time) {
	t.Helper()
	switch {
	case got == nil:
		t.Errorf("%s: no last_seen", what)
	case got.Location() != time.UTC:
		t.Errorf("%s: last_seen %s is not UTC", what, got)
	case got.After(truth.Add(time.Since(sampled) + 2*time.Second)):
		t.Errorf("%s: last_seen %s, later than nxsim's %s", what, got, truth)
	case got.Before(truth.Add(-time.Since(started) - time.Second)):
		t.Errorf("%s: last_seen %s, older than nxsim's %s by more than the test's age", what, got, truth)
	}
}

func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

// nqlCalls counts the NQL queries a tenant of sim answered.
func nqlCalls(t *testing.T, sim *nxsim.Instance, tenant string) int64 {
	t.Helper()
	c := discoverytest.Counters(t, sim, tenant)
	return c.Endpoints["POST /api/v2/nql/execute"] + c.Endpoints["POST /api/v1/nql/execute"]
}

// TestAFixOnAnOnlineDeviceIsAwaited: between two discoveries, the cache's last_seen
// of a device that reports all along grows old, until the cache alone can no longer
// say it is online (identification calls it unknown). A fix on it, and a refresh's data collection, are still awaited: dexbridge
// asks the instance when the device was last seen, and answers with the execution
// done and the device online.
func TestAFixOnAnOnlineDeviceIsAwaited(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole deployment")
	}
	var dev nxsim.SampledDevice
	_, cfg, api := truthStack(t, func(sim *nxsim.Instance, cfg *config.Config) {
		devs, err := nxsim.NewControlClient(sim.TenantURL("eu"), nil).SampleDevices(context.Background(),
			nxsim.Sample{N: 50, Seed: 17, Platform: "Windows", Presence: "online"})
		if err != nil || len(devs) == 0 {
			t.Fatalf("no online Windows device: %v", err)
		}
		dev = devs[0]
		for _, d := range devs {
			if d.LastSeen.After(dev.LastSeen) {
				dev = d
			}
		}
		// Online for the cache's first minutes only: nxsim's devices keep their age, so
		// for the tenant it stays online.
		cfg.Presence.OnlineWithin = config.Duration((time.Since(dev.LastSeen) + 8*time.Second).Round(time.Second))
	})
	t.Logf("%s last seen %s, online within %s", dev.Name, dev.LastSeen, cfg.Presence.OnlineWithin.D())
	waitUntil(t, func() bool {
		var a events.DevicesIdentifyReply
		api.call(http.MethodGet, "/api/v1/devices?device_name="+url.QueryEscape(dev.Name), nil, &a)
		// Read online by discovery, too long ago to tell now: unknown, not offline.
		return len(a.Devices) == 1 && a.Source == events.SourceCache && a.Devices[0].Presence == events.PresenceUnknown
	})
	var ex events.Execution
	code := api.call(http.MethodPost, "/api/v1/remote-actions/executions",
		map[string]any{"remote_action": "#restart_print_spooler", "device": dev.Name, "wait_seconds": 30}, &ex)
	if code != http.StatusOK || ex.Status != events.StatusSuccess || ex.Device.Presence != events.PresenceOnline {
		t.Errorf("a fix on %s, online for its tenant: got %d, %s, device %+v; want 200, success, online", dev.Name, code, ex.Status, ex.Device)
	}
	// So is a refresh's data collection.
	code, d := api.diagnose("printing", dev.Name, true)
	if code != http.StatusOK || len(d.Refreshed) != 1 || d.Refreshed[0].Status != events.StatusSuccess || d.Device.Presence != events.PresenceOnline {
		t.Errorf("a refresh of %s, online for its tenant: got %d, executions %+v, presence %s; want the collection done, online", dev.Name, code, d.Refreshed, d.Device.Presence)
	}
}
