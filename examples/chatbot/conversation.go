package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// What the bot reads of dexbridge's answers (docs/api.md has them whole).
type (
	device struct {
		Name         string     `json:"name"`
		Platform     string     `json:"platform"`
		Instance     string     `json:"instance"`
		LastSeen     *time.Time `json:"last_seen"`
		Presence     string     `json:"presence"`
		UserFullName string     `json:"user_full_name"`
	}
	person struct {
		Instance string   `json:"instance"`
		User     string   `json:"user"`
		FullName string   `json:"full_name"`
		Devices  []device `json:"devices"`
	}
	identification struct {
		Devices   []device `json:"devices"`
		People    []person `json:"people"`
		Ambiguous bool     `json:"ambiguous"`
	}
	diagnosis struct {
		Topic  string `json:"topic"`
		Device struct {
			Name     string     `json:"name"`
			LastSeen *time.Time `json:"last_seen"`
			Presence string     `json:"presence"`
		} `json:"device"`
		Verdict        string `json:"verdict"`
		VerdictReasons []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"verdict_reasons"`
		Findings []struct {
			Rule  string `json:"rule"`
			Title string `json:"title"`
		} `json:"findings"`
		Remediations []remedy   `json:"remediations"`
		DataAsOf     *time.Time `json:"data_as_of"`
	}
	remedy struct {
		ID         string `json:"id"`
		Title      string `json:"title"`
		Message    string `json:"message"`
		Ready      bool   `json:"ready"`
		Generic    bool   `json:"generic"`
		InProgress *struct {
			ExecutionID string `json:"execution_id"`
			Status      string `json:"status"`
		} `json:"in_progress"`
	}
	execution struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Device struct {
			Name     string     `json:"name"`
			LastSeen *time.Time `json:"last_seen"`
			Presence string     `json:"presence"`
		} `json:"device"`
		ExpiresAt time.Time `json:"expires_at"`
		Existing  bool      `json:"existing"`
	}
)

// Verdicts of a diagnosis.
const (
	verdictHealthy       = "healthy"
	verdictProblemsFound = "problems_found"
	verdictInconclusive  = "inconclusive"
)

func (b *bot) converse(ctx context.Context, text string) error {
	fmt.Fprintf(b.out, "%s: %s\n", b.user, text)

	// 1. Identify: which devices does this employee use, most recently active first?
	dev, ok, err := b.identify(ctx)
	if err != nil || !ok {
		return err
	}
	b.say("I see you are on %s (%s). Let me have a look.", dev.Name, dev.Platform)

	// 2. Pick the topic whose phrases are closest to what the employee said.
	var catalogue struct {
		Topics []catalogueTopic `json:"topics"`
	}
	if err := b.call(ctx, http.MethodGet, "/api/v1/topics?platform="+url.QueryEscape(dev.Platform), nil, nil, &catalogue); err != nil {
		return err
	}
	topic := pickTopic(text, catalogue.Topics)
	if topic == "" {
		b.say("I am not sure what this is about; I will open a ticket for you.")
		return nil
	}

	// 3. Diagnose, and believe only the verdict: no finding is not the same as healthy.
	diag, err := b.diagnose(ctx, topic, dev.Name, false)
	if err != nil {
		return err
	}
	if diag.Verdict == verdictInconclusive && diag.Device.Presence == "online" {
		// The data is old or incomplete, and the device is there: collect fresh data.
		b.say("My information about %s is not complete; let me collect fresh data from it.", dev.Name)
		if diag, err = b.diagnose(ctx, topic, dev.Name, true); err != nil {
			return err
		}
	}
	// The diagnosis's last_seen is the newest dexbridge has (identification answers
	// from the cache, as of the last discovery).
	if diag.Device.Presence != "online" {
		b.say("%s What I know of it may be out of date.", away(dev.Name, diag.Device.LastSeen))
	}
	switch diag.Verdict {
	case verdictHealthy:
		b.say("I went through \"%s\" on %s and found nothing wrong. Does it happen again?", about(topic, catalogue.Topics), dev.Name)
		return nil
	case verdictProblemsFound:
		for _, f := range diag.Findings {
			b.say("I found this: %s.", f.Title)
		}
	case verdictInconclusive:
		b.say("I could not check everything on %s: %s", dev.Name, reasons(diag))
	default:
		b.say("I could not make sense of what I found about %s; I am opening a ticket with it.", dev.Name)
		return nil
	}

	// 4. Remediate: messages are said, fixes are offered and run with consent.
	fixed, done, err := b.remediate(ctx, topic, dev.Name, diag)
	if err != nil || done {
		return err
	}
	if !fixed {
		b.say("I am opening a ticket with what I found, so that a colleague can help you.")
		return nil
	}

	// 5. Confirm, with fresh data from the device.
	after, err := b.diagnose(ctx, topic, dev.Name, true)
	if err != nil {
		return err
	}
	switch after.Verdict {
	case verdictHealthy:
		b.say("All good now: I checked again and %s looks healthy.", dev.Name)
	case verdictProblemsFound:
		b.say("Something is still wrong (%s); I am opening a ticket with what I found.", after.Findings[0].Title)
	default:
		b.say("I could not confirm that it worked (%s); I am opening a ticket so that a colleague checks.", reasons(after))
	}
	return nil
}

// about is what a topic is about, in the catalogue's words.
func about(id string, topics []catalogueTopic) string {
	for _, t := range topics {
		if t.ID == id && t.Title != "" {
			return t.Title
		}
	}
	return id
}

// identify finds the employee's device: the most recently active one of the person
// they are. When their user name belongs to several people, the bot asks who they
// are and asks dexbridge again for that person's instance only. ok is false when
// the bot said why it cannot go on.
func (b *bot) identify(ctx context.Context) (device, bool, error) {
	var found identification
	path := "/api/v1/devices?username=" + url.QueryEscape(b.user)
	if err := b.call(ctx, http.MethodGet, path, nil, nil, &found); err != nil {
		return device{}, false, err
	}
	if found.Ambiguous && len(found.People) > 1 {
		p, ok := b.whoAreYou(found.People)
		if !ok {
			b.say("I could not tell who you are. Let me hand you over to a colleague.")
			return device{}, false, nil
		}
		found = identification{}
		if err := b.call(ctx, http.MethodGet, path+"&instance="+url.QueryEscape(p.Instance), nil, nil, &found); err != nil {
			return device{}, false, err
		}
	}
	if len(found.Devices) == 0 {
		b.say("I could not find a device of yours. Let me hand you over to a colleague.")
		return device{}, false, nil
	}
	return found.Devices[0], true, nil
}

// whoAreYou asks "are you Tina Meier or Tomas Meier?" and picks the person the
// answer names.
func (b *bot) whoAreYou(people []person) (person, bool) {
	names := make([]string, len(people))
	for k, p := range people {
		names[k] = p.FullName
		if names[k] == "" {
			names[k] = p.User + " of " + p.Instance
		}
	}
	answer := b.ask("I know more than one " + b.user + ". Are you " + orList(names) + "?")
	if p, ok := pickPerson(answer, names); ok {
		return people[p], true
	}
	return person{}, false
}

// remediate says the remediations' messages and offers their fixes: the specific
// ones, else the generic ones, each run only with the employee's consent. fixed is
// true when a fix ran to success; done when the conversation has ended (a device
// that is not there, a fix that failed).
func (b *bot) remediate(ctx context.Context, topic, dev string, diag *diagnosis) (fixed, done bool, err error) {
	specific := false
	for _, r := range diag.Remediations {
		specific = specific || (!r.Generic && r.Ready)
	}
	for _, r := range diag.Remediations {
		if r.Generic && specific {
			continue // the generic fixes are for when nothing specific helps
		}
		if r.Message != "" {
			b.say("%s", r.Message)
			continue
		}
		if !r.Ready {
			continue
		}
		if r.InProgress != nil {
			b.say("A fix is already under way on %s (%s); I will look at it.", dev, r.Title)
		} else if !b.consent("I can fix it for you: " + r.Title + ". Shall I?") {
			b.say("All right, I will not change anything.")
			continue
		}
		// The Idempotency-Key makes a retried request run the fix once: the bot sends
		// the same key again when it did not hear the answer.
		key := newKey()
		body := map[string]any{"device": dev, "wait_seconds": 60, "reason": "employee " + b.user + " accepted the fix in chat"}
		var ex execution
		err := b.call(ctx, http.MethodPost, "/api/v1/topics/"+topic+"/remediations/"+r.ID, body, map[string]string{"Idempotency-Key": key}, &ex)
		if isUnreachable(err) {
			err = b.call(ctx, http.MethodPost, "/api/v1/topics/"+topic+"/remediations/"+r.ID, body, map[string]string{"Idempotency-Key": key}, &ex)
		}
		if err != nil {
			return false, false, err
		}
		if ex.Existing {
			b.say("This fix was already under way on %s; I will follow it rather than start it twice.", dev)
		}
		end, err := b.follow(ctx, &ex)
		if err != nil {
			return false, false, err
		}
		switch end {
		case "away":
			return false, true, nil
		case "slow":
			b.say("This is taking longer than expected. It will go on without me; I am opening a ticket so that a colleague checks on it.")
			return false, true, nil
		case "success":
			b.say("Done: %s.", r.Title)
			fixed = true
		default:
			b.say("That did not work (%s). I am opening a ticket for you.", strings.ReplaceAll(end, "_", " "))
			return false, true, nil
		}
	}
	return fixed, false, nil
}

// follow waits for an execution to end, as long as the device is there and within
// the bot's patience. It returns the final status, "away" when the device is not
// online (the fix waits for it), or "slow".
func (b *bot) follow(ctx context.Context, ex *execution) (string, error) {
	deadline := time.Now().Add(b.patience)
	for {
		switch ex.Status {
		case "success", "failure", "expired", "cancelled":
			return ex.Status, nil
		}
		if awaitsAbsentDevice(*ex) {
			b.say("%s The fix is queued and will run as soon as it is back online (until %s); you do not need to stay here.",
				away(ex.Device.Name, ex.Device.LastSeen), ex.ExpiresAt.Local().Format("Mon 2 Jan 15:04"))
			return "away", nil
		}
		if time.Now().After(deadline) {
			return "slow", nil
		}
		b.say("Working on it...")
		if err := b.call(ctx, http.MethodGet, "/api/v1/remote-actions/executions/"+url.PathEscape(ex.ID)+"?wait=30", nil, nil, ex); err != nil {
			return "", err
		}
	}
}

// awaitsAbsentDevice says whether the execution waits for a device that is not
// online (the API's wait ends early for it too).
func awaitsAbsentDevice(ex execution) bool {
	switch ex.Status {
	case "waiting_for_device":
		return true
	case "pending":
		return ex.Device.Presence == "offline" || ex.Device.Presence == "unknown"
	}
	return false
}

func (b *bot) diagnose(ctx context.Context, topic, dev string, refresh bool) (*diagnosis, error) {
	var d diagnosis
	err := b.call(ctx, http.MethodPost, "/api/v1/topics/"+topic+"/diagnosis", map[string]any{"device": dev, "refresh": refresh}, nil, &d)
	return &d, err
}

// reasons says in plain words why a diagnosis is not conclusive (the reasons'
// messages are for support staff).
func reasons(d *diagnosis) string {
	var out []string
	seen := map[string]bool{}
	for _, r := range d.VerdictReasons {
		if seen[r.Code] {
			continue
		}
		seen[r.Code] = true
		switch r.Code {
		case "stale_data":
			if d.DataAsOf != nil {
				out = append(out, "the latest data I have about it is from "+ago(*d.DataAsOf))
			} else {
				out = append(out, "the data I have about it is too old")
			}
		case "no_data":
			out = append(out, "Nexthink has no recent data about it")
		case "rules_not_evaluated":
			out = append(out, "some of the checks could not be run")
		case "no_rules":
			out = append(out, "there is nothing I can check automatically for this")
		}
	}
	if len(out) == 0 {
		return "some of the data is missing."
	}
	return strings.Join(out, ", and ") + "."
}
