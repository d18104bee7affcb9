// Command dexbench measures dexbridge against nxsim and prints one table (see
// internal/bench), or soak-tests one `dexbridge run`. Build the binaries first:
// `make bench` and `make soak` do both.
//
//	dexbench [-scenarios discovery-100k,discovery-500k,identify,webhooks,diagnosis,remediation,mix] [-bin bin] [-fleet 100000] [-latency 300ms] [-rate 5000] ...
//	dexbench soak [-duration 3m] [-rate 50] [-interval 5s]
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dexbridge/dexbridge/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dexbench:", err)
		os.Exit(1)
	}
}
