// Command dexbridge runs the bridge between chatbots and Nexthink; see `dexbridge help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dexbridge/dexbridge/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cli.Run(ctx, os.Args[1:], cli.Env{Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr, Version: version})
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
