package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/dexbridge/dexbridge/services/ingress"
)

// admin serves /metrics, /healthz and /readyz in a process that runs no ingress, so
// every process of a split deployment can be scraped and probed.
type admin struct {
	d *deps
}

func newAdmin(d *deps) *admin { return &admin{d: d} }

func (a *admin) Run(ctx context.Context) error {
	addr := a.d.cfg.MetricsListen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.d.metrics.Handler())
	// The ingress's health handlers, with this process's checks and no routes.
	probes := ingress.NewHandler(ingress.Options{Checks: a.d.checks(), Log: a.d.log})
	mux.Handle("GET /healthz", probes)
	mux.Handle("GET /readyz", probes)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	a.d.log.Info("admin listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
