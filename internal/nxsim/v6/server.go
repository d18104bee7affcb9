package v6

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxql"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// Server is the V6 emulator: a Portal and its Engines over one fleet, each on
// its own address.
type Server struct {
	cfg     Config
	fleet   *fleet.Fleet
	place   *placement
	engines []*engine
	actions *nxsim.Actions

	portalURL string
	servers   []*http.Server
	errs      chan error
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	once      sync.Once
	closeErr  error
}

// Start generates the fleet, places its devices on the Engines and serves the
// Portal and every Engine until Close or until ctx ends.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("nxsim v6 config: %w", err)
	}
	f, err := fleet.New(fleet.Config{Size: cfg.FleetSize, Seed: cfg.Seed, Prefix: cfg.Prefix,
		Scenarios: *cfg.Scenarios, Clock: cfg.Clock})
	if err != nil {
		return nil, fmt.Errorf("nxsim v6: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, fleet: f, place: newPlacement(f, cfg.Engines, cfg.MovedShare, cfg.Seed),
		actions: nxsim.NewActions(f, cfg.Executions, cfg.Clock, cfg.Logger), cancel: cancel,
		errs: make(chan error, cfg.Engines+1)}
	schema := nxql.NewSchema()
	var lns []net.Listener
	fail := func(err error) (*Server, error) {
		for _, ln := range lns {
			_ = ln.Close()
		}
		cancel()
		return nil, err
	}
	for k := range cfg.Engines {
		e := &engine{name: "engine-" + strconv.Itoa(k+1), uid: engineUID(cfg.Seed, k), index: k,
			schema: schema, srv: s, src: &engineSource{f: f, p: s.place, e: k}}
		port := 0
		if len(cfg.EnginePorts) > 0 {
			port = cfg.EnginePorts[k]
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(port)))
		if err != nil {
			return fail(fmt.Errorf("nxsim v6 %s listen: %w", e.name, err))
		}
		lns = append(lns, ln)
		e.port = ln.Addr().(*net.TCPAddr).Port
		s.engines = append(s.engines, e)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.PortalPort)))
	if err != nil {
		return fail(fmt.Errorf("nxsim v6 portal listen: %w", err))
	}
	lns = append(lns, ln)
	s.portalURL = "http://" + ln.Addr().String()
	handlers := make([]http.Handler, 0, len(lns))
	for _, e := range s.engines {
		handlers = append(handlers, e.routes())
	}
	handlers = append(handlers, s.portalRoutes())
	for k, l := range lns {
		srv := &http.Server{Handler: handlers[k], ReadHeaderTimeout: 10 * time.Second}
		s.servers = append(s.servers, srv)
		go func() { s.errs <- srv.Serve(l) }()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.actions.Run(runCtx)
	}()
	context.AfterFunc(ctx, func() { _ = s.Close() })
	cfg.Logger.Info("nxsim v6 listening", "portal", s.portalURL, "engines", len(s.engines),
		"devices", f.Size(), "moved_devices", len(s.place.left))
	return s, nil
}

// engineUID is an Engine's database UID: stable for a seed and an index.
func engineUID(seed int64, k int) string {
	h := mix(uint64(seed)*0x9e3779b97f4a7c15 + uint64(k) + 1)
	g := mix(h)
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(h>>32), uint16(h>>16), h&0xfff, g&0xfff, (g>>16)&0xffffffffffff)
}

// PortalURL is the Portal's base URL ("http://127.0.0.1:PORT").
func (s *Server) PortalURL() string { return s.portalURL }

// EngineURL is the base URL of Engine k (from 0).
func (s *Server) EngineURL(k int) string {
	return "http://" + net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.engines[k].port))
}

// Fleet is the fleet every Engine answers from (for tests that pick devices).
func (s *Server) Fleet() *fleet.Fleet { return s.fleet }

// authorized checks the Basic credentials of a request.
func (s *Server) authorized(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	return ok && constantTimeEqual(u, s.cfg.Username) && constantTimeEqual(p, s.cfg.Password)
}

// Close stops serving (waiting up to 5 s for calls in flight) and the executions.
func (s *Server) Close() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var errs []error
		for _, srv := range s.servers {
			if err := srv.Shutdown(ctx); err != nil {
				errs = append(errs, srv.Close())
			}
		}
		for range s.servers {
			if err := <-s.errs; err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs = append(errs, err)
			}
		}
		s.cancel()
		s.wg.Wait()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
