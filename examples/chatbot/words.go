package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// apiError is an answer of dexbridge that is not a success: an RFC 9457 problem
// document, whose code tells the bot what to say.
type apiError struct {
	method, path string
	status       int
	code, detail string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.method, e.path, e.status, e.code, e.detail)
}

// unreachable is a request that got no answer: the network, or dexbridge too slow.
type unreachable struct {
	method, path string
	timeout      bool
	err          error
}

func (e *unreachable) Error() string {
	if e.timeout {
		return fmt.Sprintf("%s %s: no answer in time", e.method, e.path)
	}
	return fmt.Sprintf("%s %s: no answer (%v)", e.method, e.path, e.err)
}

func isUnreachable(err error) bool {
	var u *unreachable
	return errors.As(err, &u)
}

// call sends a request with the API key (and headers) and decodes the JSON answer.
func (b *bot) call(ctx context.Context, method, path string, body any, headers map[string]string, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.api+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", b.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		var timeout interface{ Timeout() bool }
		return &unreachable{method: method, path: path, err: err,
			timeout: errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &timeout) && timeout.Timeout())}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return &unreachable{method: method, path: path, err: err}
	}
	if resp.StatusCode >= 300 {
		var p struct{ Code, Detail string }
		_ = json.Unmarshal(raw, &p)
		return &apiError{method: method, path: path, status: resp.StatusCode, code: p.Code, detail: p.Detail}
	}
	return json.Unmarshal(raw, out)
}

// giveUp tells the employee in plain words that the bot cannot go on, and the
// operator why.
func (b *bot) giveUp(err error) {
	var a *apiError
	switch {
	case errors.As(err, &a) && a.status == http.StatusNotFound:
		b.say("I could not find what I was looking for (%s). Let me hand you over to a colleague.", a.detail)
	case errors.As(err, &a) && (a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable):
		b.say("The help service is busy right now. Please try again in a few minutes, or I can open a ticket for you.")
	case errors.As(err, &a) && a.status < 500 && a.status != http.StatusUnauthorized && a.status != http.StatusForbidden:
		b.say("I could not do that: %s. Let me hand you over to a colleague.", a.detail)
	default:
		b.say("Sorry, I cannot reach the help service right now. Please try again later, or call the service desk.")
	}
	fmt.Fprintf(b.ops, "chatbot: %v\n", err)
}

// newKey is a fresh Idempotency-Key.
func newKey() string { return "chatbot-" + rand.Text() }

// isYes reads an employee's answer to a yes/no question.
func isYes(answer string) bool {
	w := strings.Fields(strings.ToLower(strings.TrimSpace(answer)))
	if len(w) == 0 {
		return false
	}
	switch strings.Trim(w[0], ".,!") {
	case "yes", "y", "yeah", "yep", "sure", "ok", "okay", "please", "go":
		return true
	}
	return false
}

// orList is "A", "A or B", "A, B or C".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// pickPerson is the one of names the answer names: the whole name, else one word of
// it that no other name has ("Tina" for Tina Meier when the other is Tomas Meier).
func pickPerson(answer string, names []string) (int, bool) {
	said := strings.ToLower(answer)
	found := -1
	for k, n := range names {
		if n != "" && strings.Contains(said, strings.ToLower(n)) {
			if found >= 0 {
				return 0, false
			}
			found = k
		}
	}
	if found >= 0 {
		return found, true
	}
	words := map[string]bool{}
	for _, w := range strings.FieldsFunc(said, func(r rune) bool { return r == ' ' || r == ',' || r == '.' || r == '!' || r == '?' }) {
		words[w] = true
	}
	for k, n := range names {
		for _, w := range strings.Fields(strings.ToLower(n)) {
			if !words[w] || usedElsewhere(w, k, names) {
				continue
			}
			if found >= 0 && found != k {
				return 0, false
			}
			found = k
		}
	}
	return found, found >= 0
}

func usedElsewhere(word string, k int, names []string) bool {
	for j, n := range names {
		if j != k && strings.Contains(" "+strings.ToLower(n)+" ", " "+word+" ") {
			return true
		}
	}
	return false
}

// away says in plain words that a device is not online, since when.
func away(device string, lastSeen *time.Time) string {
	if lastSeen == nil {
		return fmt.Sprintf("%s has never been in touch with Nexthink, so I cannot reach it.", device)
	}
	return fmt.Sprintf("%s is not online: it was last in touch %s.", device, ago(*lastSeen))
}

// ago is how long ago t was, in words.
func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < 2*time.Minute:
		return "a moment ago"
	case d < 2*time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
}
