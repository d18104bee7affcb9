// Command dexbench measures dexbridge against nxsim and prints one table (see
// internal/bench). Build the binaries first: `make bench` does both.
//
//	dexbench [-scenarios discovery-100k,discovery-500k,identify] [-bin bin] [-rate 5000]
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
