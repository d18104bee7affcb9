// Package ingress is dexbridge's only public surface: the REST API. It authenticates,
// validates and rate-limits requests, turns each into a NATS request to a worker and
// the reply into HTTP. It holds no business logic.
package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/admission"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
)

// Check is a named readiness check.
type Check struct {
	Name string
	Fn   func(context.Context) error
}

// Options are the ingress's dependencies.
type Options struct {
	Listen            string
	TLSCertFile       string
	TLSKeyFile        string
	AllowInsecureHTTP bool
	RPC               *natsrpc.Client
	Keys              *auth.Keys
	Credentials       *auth.Credentials
	Limiters          *ratelimit.Shared
	Metrics           *metrics.Metrics
	Subjects          events.Subjects
	Checks            []Check
	ShutdownTimeout   time.Duration
	Log               *slog.Logger
	// OnListen, when set, is told the bound address (tests listen on port 0).
	OnListen func(addr net.Addr)
	// ReadHeaderTimeout bounds how long a client may take to send its headers
	// (default 10 s); a slow client is cut off, not waited for.
	ReadHeaderTimeout time.Duration
	// Webhooks receives /api/v1/webhooks/{source}; nil answers 404.
	Webhooks *WebhookReceiver
	// Proactive serves /api/v1/proactive/...; nil answers 404. Its streams end when
	// the server shuts down.
	Proactive *ProactiveFeed
	// Subscriptions serves /api/v1/proactive/subscriptions; nil answers 404.
	Subscriptions *Subscriptions
	// Events carries execution updates (evt.actions.updated.<id>) to the requests that
	// wait for them (wait_seconds, ?wait=); nil answers at once with the current state.
	Events *nats.Conn
	// RequestTimeout is the workers' time to answer (the RPC client's timeout) and
	// RefreshTimeout the topic worker's bound on a refresh's data collection: a
	// diagnosis with refresh may take both.
	RequestTimeout, RefreshTimeout time.Duration
	// CORSOrigins are the browser origins (scheme://host[:port], or "*") allowed to
	// call the API; none by default (config cors.allowed_origins).
	CORSOrigins []string
	// MaxConnections bounds the connections served at once; beyond, a new one is
	// answered 503 with Retry-After by the listener and closed (0: unbounded).
	MaxConnections int
	// ListenBacklog bounds the kernel's queue of connections not yet accepted (0:
	// the system's default, somaxconn).
	ListenBacklog int
	// Admission admits API requests before any work on them (admission.go); nil
	// admits every one.
	Admission *admission.Controller
}

// Service runs the HTTP server.
type Service struct {
	opts    Options
	handler http.Handler
}

// New builds the ingress; Run serves it.
func New(o Options) *Service {
	return &Service{opts: o, handler: NewHandler(o)}
}

// Handler is the ingress's HTTP handler, for tests that skip the listener.
func (s *Service) Handler() http.Handler { return s.handler }

// Run listens until ctx ends, then stops taking connections and lets in-flight
// requests finish within the shutdown timeout.
func (s *Service) Run(ctx context.Context) error {
	o := s.opts
	useTLS := o.TLSCertFile != ""
	if err := checkPlainHTTP(o.Listen, useTLS, o.AllowInsecureHTTP); err != nil {
		return err
	}
	if !useTLS && !isLoopback(o.Listen) {
		o.Log.Warn("serving plain HTTP on a non-loopback address: API keys cross the network in clear text", "listen", o.Listen)
	}
	// No TCP keep-alive probes: they cost four setsockopt calls on every connection
	// accepted, which a storm of new connections pays in full, and the server's own
	// timeouts (ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout) already end
	// a connection whose client is gone.
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(ctx, "tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("ingress listen: %w", err)
	}
	if o.ListenBacklog > 0 {
		if err := setBacklog(ln, o.ListenBacklog); err != nil {
			_ = ln.Close()
			return fmt.Errorf("ingress listen backlog: %w", err)
		}
	}
	if err := deferAccept(ln); err != nil {
		_ = ln.Close()
		return fmt.Errorf("ingress listen: defer accept: %w", err)
	}
	var limited *limitListener
	if o.MaxConnections > 0 {
		var refusing func() bool
		if o.Admission != nil && !useTLS { // under TLS the listener sees no request
			refusing = o.Admission.Refusing
		}
		limited = newLimitListener(ln, o.MaxConnections, o.Metrics, refusing)
		ln = limited
	}
	readHeader := o.ReadHeaderTimeout
	if readHeader <= 0 {
		readHeader = 10 * time.Second
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeader,
		ReadTimeout:       30 * time.Second,
		// Long polls extend their own write deadline; everything else is bounded.
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if limited != nil {
		srv.ConnState = limited.ConnState
	}
	if useTLS {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if o.Proactive != nil {
		// Long-lived event streams end when shutdown starts, so it need not wait for them.
		srv.RegisterOnShutdown(o.Proactive.Shutdown)
	}
	if o.OnListen != nil {
		o.OnListen(ln.Addr())
	}
	o.Log.Info("ingress listening", "addr", ln.Addr().String(), "tls", useTLS)
	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- srv.ServeTLS(ln, o.TLSCertFile, o.TLSKeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("ingress: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("ingress shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ingress: %w", err)
	}
	return nil
}

func checkPlainHTTP(listen string, useTLS, allowed bool) error {
	if useTLS || allowed || isLoopback(listen) {
		return nil
	}
	return fmt.Errorf("ingress: refusing plain HTTP on %s: configure tls.cert_file and tls.key_file, or set allow_insecure_http", listen)
}

func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
