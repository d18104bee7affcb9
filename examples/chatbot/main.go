// Command chatbot is a minimal chatbot integration: it holds the conversation a
// service-desk bot would have with an employee, using only dexbridge's REST API and
// the standard library, so it can be read as a recipe for any bot platform.
//
//	go run ./examples/chatbot -key "$KEY" -user jdoe -say "Outlook keeps crashing"
//
// The bot identifies the employee's device (asking who they are when the user name
// belongs to several people), picks the topic whose catalogue phrases are closest to
// what they said (topics.go), diagnoses it and reads the verdict, offers the fix and
// runs it only when the employee says yes, stops waiting when the device is not
// online, and diagnoses again with fresh data to confirm. The employee answers on
// standard input; -yes accepts every fix without asking (a scripted demo).
//
// What the employee reads is plain words: an error of the API or of the network is
// said as such ("I cannot reach the help service"), and its details go to standard
// error for the operator.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8090", "dexbridge's address")
	key := flag.String("key", os.Getenv("DEXBRIDGE_API_KEY"), "API key with the read, diagnose and remediate scopes")
	user := flag.String("user", "jdoe", "the employee's user name, as the bot platform knows it")
	say := flag.String("say", "Outlook keeps crashing", "what the employee tells the bot")
	yes := flag.Bool("yes", false, "accept every fix the bot offers without asking (the employee's consent given beforehand)")
	flag.Parse()
	b := &bot{
		api: *base, key: *key, http: &http.Client{Timeout: 2 * time.Minute},
		in: bufio.NewScanner(os.Stdin), out: os.Stdout, ops: os.Stderr,
		user: *user, autoYes: *yes, patience: 5 * time.Minute,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := b.converse(ctx, *say); err != nil {
		b.giveUp(err)
		os.Exit(1)
	}
}

// bot is one conversation with one employee.
type bot struct {
	api, key string
	http     *http.Client
	in       *bufio.Scanner // the employee's answers, a line each
	out      io.Writer      // what the employee reads
	ops      io.Writer      // what the operator reads
	user     string
	autoYes  bool
	// patience is how long the bot waits for a fix on a device that is online.
	patience time.Duration
}

func (b *bot) say(format string, args ...any) { fmt.Fprintf(b.out, "bot: "+format+"\n", args...) }

// ask asks the employee and returns their answer ("" when they left).
func (b *bot) ask(question string) string {
	b.say("%s", question)
	if !b.in.Scan() {
		return ""
	}
	answer := b.in.Text()
	fmt.Fprintf(b.out, "%s: %s\n", b.user, answer)
	return answer
}

// consent asks the employee whether the bot may do something.
func (b *bot) consent(question string) bool {
	if b.autoYes {
		b.say("%s", question)
		fmt.Fprintf(b.out, "%s: yes, please\n", b.user)
		return true
	}
	return isYes(b.ask(question + " (yes/no)"))
}
