package app_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// recorder passes requests to dexbridge and remembers each one's method, path and
// Idempotency-Key, to see what the example chatbot sent.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) posts(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.seen {
		if strings.HasPrefix(s, "POST "+prefix) {
			out = append(out, s)
		}
	}
	return out
}

// TestExampleChatbotTellsTheTruth runs the example chatbot, built as a bot builder
// would, against a whole deployment and nxsim's tenants eu and us, on fleet devices
// drawn with a fixed seed: it asks who the employee is when the user name belongs
// to two people, asks before a fix and runs none without a yes, sends an
// Idempotency-Key, stops waiting for a device that is not online and says so in
// plain words, never calls an inconclusive diagnosis healthy, and says nothing of
// Go's errors to the employee when dexbridge cannot be reached.
func TestExampleChatbotTellsTheTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example chatbot")
	}
	sim, _, api := truthStack(t)
	target, _ := url.Parse(api.base)
	rec := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.seen = append(rec.seen, r.Method+" "+r.URL.Path+" key="+r.Header.Get("Idempotency-Key"))
		rec.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	bin := filepath.Join(t.TempDir(), "chatbot")
	build := exec.Command("go", "build", "-o", bin, "./examples/chatbot")
	build.Dir = testenv.RepoRoot(t)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build the example: %v", err)
	}
	chat := func(url, user, say, answers string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(bin, "-url", url, "-key", api.key, "-user", user, "-say", say)
		cmd.Stdin = strings.NewReader(answers)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		t.Logf("chatbot -user %s -say %q:\n%s%s", user, say, out.String(), errOut.String())
		return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
	}
	noGoErrors := func(what, out string) {
		t.Helper()
		for _, raw := range []string{"context deadline exceeded", "dial tcp", "connection refused", "EOF", "json:", "/api/v1/"} {
			if strings.Contains(out, raw) {
				t.Errorf("%s: the employee reads %q:\n%s", what, raw, out)
			}
		}
	}
	ctx := context.Background()
	eu := nxsim.NewControlClient(sim.TenantURL("eu"), nil)
	us := nxsim.NewControlClient(sim.TenantURL("us"), nil)

	// 1. One user name, two people (eu's and us's): the bot asks who, with their names.
	var tina, tomas nxsim.SampledDevice
	euUsers := map[string]nxsim.SampledDevice{}
	euOnline, err := eu.SampleDevices(ctx, nxsim.Sample{N: 1000, Seed: 15, Presence: "online"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range euOnline {
		euUsers[d.User] = d
	}
	usOnline, err := us.SampleDevices(ctx, nxsim.Sample{N: 1000, Seed: 15, Presence: "online"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range usOnline {
		if e, ok := euUsers[d.User]; ok && e.UserFullName != d.UserFullName && e.UserFullName != "" && d.UserFullName != "" {
			tina, tomas = e, d
			break
		}
	}
	if tina.Name == "" {
		t.Fatal("no user name of two people with different full names: nxsim's fleets changed")
	}
	var theirs events.DevicesIdentifyReply
	if code := api.call(http.MethodGet, "/api/v1/devices?username="+url.QueryEscape(tina.User)+"&instance=eu", nil, &theirs); code != 200 || len(theirs.Devices) == 0 {
		t.Fatalf("%s on eu: got %d %+v", tina.User, code, theirs)
	}
	firstName := strings.Fields(tina.UserFullName)[0]
	out, _, code := chat(front.URL, tina.User, "can you check my computer please", firstName+"\n")
	if code != 0 || !strings.Contains(out, "Are you ") || !strings.Contains(out, tina.UserFullName) || !strings.Contains(out, tomas.UserFullName) ||
		!strings.Contains(out, "I see you are on "+theirs.Devices[0].Name+" ") {
		t.Errorf("%s (%s or %s): want the bot to ask who and go on with %s's %s (exit %d):\n%s",
			tina.User, tina.UserFullName, tomas.UserFullName, tina.UserFullName, theirs.Devices[0].Name, code, out)
	}
	noGoErrors("two people", out)

	// 2. A device that is not online, with a fix on offer: no fix without a yes; with
	// one, a single trigger with an Idempotency-Key, and the bot does not wait for
	// the device but says it is away and the fix waits for it.
	offline, err := eu.SampleDevices(ctx, nxsim.Sample{N: 40, Seed: 15, Platform: "Windows", Presence: "offline"})
	if err != nil {
		t.Fatal(err)
	}
	var away nxsim.SampledDevice
	for _, d := range offline {
		var a events.DevicesIdentifyReply
		if api.call(http.MethodGet, "/api/v1/devices?username="+url.QueryEscape(d.User), nil, &a) != 200 || a.Ambiguous ||
			len(a.Devices) == 0 || a.Devices[0].Name != d.Name {
			continue // the bot would talk about another device of theirs
		}
		if _, diag := api.diagnose("outlook", d.Name, false); diag.Verdict != events.VerdictHealthy &&
			slices.ContainsFunc(diag.Remediations, func(r events.SuggestedRemedy) bool { return r.Ready && r.InProgress == nil }) {
			away = d
			break
		}
	}
	if away.Name == "" {
		t.Fatal("no offline Windows device whose user uses it last, with an Outlook fix on offer")
	}
	const remediations = "/api/v1/topics/outlook/remediations/"
	out, _, code = chat(front.URL, away.User, "Outlook keeps crashing", "no\n")
	if code != 0 || !strings.Contains(out, "Shall I? (yes/no)") || len(rec.posts(remediations)) != 0 {
		t.Errorf("%s declined: exit %d, triggers %v; want the bot to ask and run nothing:\n%s", away.Name, code, rec.posts(remediations), out)
	}
	if strings.Contains(out, "found nothing wrong") || strings.Contains(out, "healthy") {
		t.Errorf("%s: an Outlook diagnosis that is not healthy told as healthy:\n%s", away.Name, out)
	}
	out, _, code = chat(front.URL, away.User, "Outlook keeps crashing", "yes\n")
	posts := rec.posts(remediations)
	if code != 0 || len(posts) != 1 || strings.HasSuffix(posts[0], "key=") {
		t.Errorf("%s accepted: exit %d, triggers %v; want one, with an Idempotency-Key", away.Name, code, posts)
	}
	if !strings.Contains(out, away.Name+" is not online: it was last in touch") || !strings.Contains(out, "will run as soon as it is back online") ||
		strings.Contains(out, "Working on it") || strings.Contains(out, "All good now") {
		t.Errorf("%s accepted: want the bot to say the device is away and the fix waits for it, without waiting:\n%s", away.Name, out)
	}
	noGoErrors("offline fix", out)
	var list struct {
		Executions []events.Execution `json:"executions"`
	}
	if code := api.call(http.MethodGet, "/api/v1/remote-actions/executions?device="+url.QueryEscape(away.Name), nil, &list); code != 200 ||
		len(list.Executions) != 1 || !events.AwaitsAbsentDevice(list.Executions[0]) && list.Executions[0].Status != events.StatusPending {
		t.Errorf("executions on %s: got %d %+v, want the one fix, waiting for the device", away.Name, code, list.Executions)
	}

	// 3. dexbridge out of reach: plain words for the employee, the cause for the operator.
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	out, errOut, code := chat(closed.URL, "jdoe", "Outlook keeps crashing", "")
	if code == 0 || !strings.Contains(out, "cannot reach the help service") || errOut == "" {
		t.Errorf("dexbridge down: exit %d; want a plain sentence and a note for the operator:\n%s\n%s", code, out, errOut)
	}
	noGoErrors("dexbridge down", out)
}
