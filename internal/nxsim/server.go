package nxsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	_ "time/tzdata" // tenant time zones without the system's zoneinfo

	"github.com/dexbridge/dexbridge/internal/nql"
)

// Server is the emulator: every tenant behind one http.Handler.
type Server struct {
	cfg     Config
	tenants []*tenant
	byName  map[string]*tenant
	handler http.Handler
	dir     string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
}

// NewServer loads and compiles the saved queries, generates every tenant's fleet and
// starts their execution loops. Close stops them.
func NewServer(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("nxsim config: %w", err)
	}
	schema := nql.DefaultSchema()
	queries, err := loadQueries(cfg.TopicsDir, cfg.QueriesFile, cfg.Queries, schema)
	if err != nil {
		return nil, fmt.Errorf("nxsim saved queries: %w", err)
	}
	cfg.Logger.Info("saved queries loaded", "queries", len(queries))
	dir, err := os.MkdirTemp("", "nxsim-exports-")
	if err != nil {
		return nil, fmt.Errorf("nxsim exports dir: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, byName: map[string]*tenant{}, dir: dir, cancel: cancel}
	for _, tc := range cfg.Tenants {
		tdir, err := os.MkdirTemp(dir, tc.Name+"-")
		if err == nil {
			var t *tenant
			if t, err = newTenant(ctx, cfg, tc, queries, schema, tdir); err == nil {
				s.tenants = append(s.tenants, t)
				s.byName[t.name] = t
				continue
			}
		}
		cancel()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	for _, t := range s.tenants {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t.executor.run(ctx)
		}()
	}
	s.handler = s.routes()
	return s, nil
}

// routes mounts every tenant at /tenants/<name>/ and the first one at the root.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_nxsim/tenants", func(w http.ResponseWriter, _ *http.Request) {
		out := make([]Info, len(s.tenants))
		for k, t := range s.tenants {
			out[k] = t.info()
		}
		writeJSON(w, http.StatusOK, out)
	})
	for _, t := range s.tenants {
		prefix := "/tenants/" + t.name
		mux.Handle(prefix+"/", http.StripPrefix(prefix, t.handler))
	}
	mux.Handle("/", s.tenants[0].handler)
	return mux
}

// Handler returns the server's handler (for httptest.NewServer).
func (s *Server) Handler() http.Handler { return s.handler }

// TenantNames returns the tenant names; the first is also served at the root.
func (s *Server) TenantNames() []string {
	out := make([]string, len(s.tenants))
	for k, t := range s.tenants {
		out[k] = t.name
	}
	return out
}

// Close stops executions and exports and removes the results files.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		for _, t := range s.tenants {
			t.exports.wait()
		}
		err = os.RemoveAll(s.dir)
	})
	return err
}

// Instance is a Server listening on an address.
type Instance struct {
	*Server
	ln  net.Listener
	srv *http.Server
	url string
	err chan error
}

// Start builds a Server and serves it on cfg.Addr ("127.0.0.1:0" for a free port)
// until Close or until ctx ends.
func Start(ctx context.Context, cfg Config) (*Instance, error) {
	s, err := NewServer(cfg)
	if err != nil {
		return nil, err
	}
	addr := s.cfg.Addr
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("nxsim listen %s: %w", addr, err)
	}
	in := &Instance{Server: s, ln: ln, url: "http://" + ln.Addr().String(), err: make(chan error, 1),
		srv: &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}}
	go func() { in.err <- in.srv.Serve(ln) }()
	context.AfterFunc(ctx, func() { _ = in.Close() })
	s.cfg.Logger.Info("nxsim listening", "addr", ln.Addr().String(), "tenants", len(s.tenants))
	return in, nil
}

// URL is the base URL of the first tenant ("http://127.0.0.1:PORT").
func (in *Instance) URL() string { return in.url }

// TenantURL is the base URL of a tenant ("http://127.0.0.1:PORT/tenants/eu").
func (in *Instance) TenantURL(name string) string { return in.url + "/tenants/" + name }

// Close stops serving (waiting up to 5 s for calls in flight) and closes the server.
func (in *Instance) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := in.srv.Shutdown(ctx)
	if err != nil {
		// Calls still in flight (or idle connections a client never used) after the
		// grace period are cut: Close must return.
		err = in.srv.Close()
	}
	if serr := <-in.err; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	in.err <- http.ErrServerClosed // later Close calls return at once
	return errors.Join(err, in.Server.Close())
}
