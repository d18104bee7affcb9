// Command chatbot is a minimal chatbot integration: it holds the conversation a
// service-desk bot would have with an employee, using only dexbridge's REST API and
// the standard library, so it can be read as a recipe for any bot platform.
//
//	go run ./examples/chatbot -key "$KEY" -user jdoe -say "Outlook keeps crashing"
//
// The bot identifies the employee's device, picks the topic whose catalogue phrases
// are closest to what they said (topics.go), diagnoses it, offers the fix, runs it
// with the employee's consent (-yes), waits for it, and diagnoses again to confirm.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8090", "dexbridge's address")
	key := flag.String("key", os.Getenv("DEXBRIDGE_API_KEY"), "API key with the read, diagnose and remediate scopes")
	user := flag.String("user", "jdoe", "the employee's user name, as the bot platform knows it")
	say := flag.String("say", "Outlook keeps crashing", "what the employee tells the bot")
	yes := flag.Bool("yes", true, "the employee accepts the fix the bot offers")
	flag.Parse()
	b := &bot{api: *base, key: *key, http: &http.Client{Timeout: 3 * time.Minute}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := b.converse(ctx, *user, *say, *yes); err != nil {
		fmt.Fprintln(os.Stderr, "chatbot:", err)
		os.Exit(1)
	}
}

type bot struct {
	api, key string
	http     *http.Client
}

func (b *bot) say(format string, args ...any) { fmt.Printf("bot: "+format+"\n", args...) }

func (b *bot) converse(ctx context.Context, user, text string, consent bool) error {
	fmt.Printf("%s: %s\n", user, text)

	// 1. Identify: which devices does this employee use, most recently active first?
	var found struct {
		Devices []struct {
			Name     string `json:"name"`
			Platform string `json:"platform"`
		} `json:"devices"`
	}
	if err := b.call(ctx, http.MethodGet, "/api/v1/devices?username="+url.QueryEscape(user), nil, &found); err != nil {
		return err
	}
	if len(found.Devices) == 0 {
		b.say("I could not find a device of yours. Let me hand you over to a colleague.")
		return nil
	}
	device := found.Devices[0]
	b.say("I see you are on %s (%s). Let me have a look.", device.Name, device.Platform)

	// 2. Pick the topic whose phrases are closest to what the employee said.
	var catalogue struct {
		Topics []catalogueTopic `json:"topics"`
	}
	if err := b.call(ctx, http.MethodGet, "/api/v1/topics?platform="+url.QueryEscape(device.Platform), nil, &catalogue); err != nil {
		return err
	}
	topic := pickTopic(text, catalogue.Topics)
	if topic == "" {
		b.say("I am not sure what this is about; I will open a ticket for you.")
		return nil
	}

	// 3. Diagnose.
	diag, err := b.diagnose(ctx, topic, device.Name, false)
	if err != nil {
		return err
	}
	if len(diag.Findings) == 0 {
		b.say("I checked %s and found nothing wrong. Does it happen again?", strings.ToLower(diag.Topic))
		return nil
	}
	for _, f := range diag.Findings {
		b.say("I found this: %s.", f.Title)
	}

	// 4. Remediate: messages are said, remote actions are offered and run.
	for _, r := range diag.Remediations {
		if r.Generic {
			continue // offered only when nothing specific helps
		}
		if r.Message != "" {
			b.say("%s", r.Message)
			continue
		}
		b.say("I can fix it for you: %s. Shall I?", r.Title)
		if !consent {
			fmt.Printf("%s: no, thanks\n", user)
			continue
		}
		fmt.Printf("%s: yes, please\n", user)
		var exec struct {
			ID, Status string
		}
		body := map[string]any{"device": device.Name, "wait_seconds": 60, "reason": "employee " + user + " accepted the fix in chat"}
		if err := b.call(ctx, http.MethodPost, "/api/v1/topics/"+topic+"/remediations/"+r.ID, body, &exec); err != nil {
			return err
		}
		for exec.Status != "success" && exec.Status != "failure" && exec.Status != "expired" && exec.Status != "cancelled" {
			b.say("Working on it (%s)...", strings.ReplaceAll(exec.Status, "_", " "))
			if err := b.call(ctx, http.MethodGet, "/api/v1/remote-actions/executions/"+exec.ID+"?wait=30", nil, &exec); err != nil {
				return err
			}
		}
		if exec.Status != "success" {
			b.say("That did not work (%s). I am opening a ticket for you.", exec.Status)
			return nil
		}
		b.say("Done: %s.", r.Title)
	}

	// 5. Confirm, with fresh data from the device.
	after, err := b.diagnose(ctx, topic, device.Name, true)
	if err != nil {
		return err
	}
	if len(after.Findings) == 0 {
		b.say("All good now: I checked again and %s looks healthy.", device.Name)
	} else {
		b.say("Something is still wrong (%s); I am opening a ticket with what I found.", after.Findings[0].Title)
	}
	return nil
}

type diagnosis struct {
	Topic    string `json:"topic"`
	Findings []struct {
		Title string `json:"title"`
	} `json:"findings"`
	Remediations []struct {
		ID, Title, Message string
		Generic            bool `json:"generic"`
	} `json:"remediations"`
}

func (b *bot) diagnose(ctx context.Context, topic, device string, refresh bool) (*diagnosis, error) {
	var d diagnosis
	err := b.call(ctx, http.MethodPost, "/api/v1/topics/"+topic+"/diagnosis", map[string]any{"device": device, "refresh": refresh}, &d)
	return &d, err
}

// call sends a request with the API key and decodes the JSON answer; an error
// answer is an RFC 9457 problem document whose detail is worth showing.
func (b *bot) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
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
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var p struct{ Code, Detail string }
		_ = json.Unmarshal(raw, &p)
		return fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, p.Code, p.Detail)
	}
	return json.Unmarshal(raw, out)
}
