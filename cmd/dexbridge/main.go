// Command dexbridge runs the bridge between chatbots and Nexthink; see `dexbridge help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/dexbridge/dexbridge/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Colours and a progress line redrawn in place only when a person watches both
	// streams; a pipe or a file gets plain lines.
	terminal := term.IsTerminal(int(os.Stdout.Fd())) && term.IsTerminal(int(os.Stderr.Fd()))
	err := cli.Run(ctx, os.Args[1:], cli.Env{Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr, Version: version, Terminal: terminal})
	switch {
	case err == nil:
	case errors.Is(err, cli.ErrUsage):
		if err != cli.ErrUsage { // the bare sentinel means usage was printed already
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "dexbridge:", err)
		os.Exit(1)
	}
}
