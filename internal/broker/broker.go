// Package broker gives a process its NATS connection: to the server at a URL, or to
// an embedded nats-server (JetStream on, state on disk, every write synced) that other
// processes on the machine can join at its listen address.
package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// Options say where NATS is and how to prove who we are to it.
type Options struct {
	URL      string // join this server; empty starts an embedded one
	Listen   string // embedded server's client address ("127.0.0.1:0" picks a port)
	StoreDir string // embedded server's JetStream directory
	Name     string // connection name, shown by the server
	// Replicas is the JetStream replica count of the streams ensured through the
	// broker's JS (EnsureStream); 0 means 1.
	Replicas int
	TLS      TLS
	Auth     Auth // joining: what to present; embedded: what the server requires
	Log      *slog.Logger
}

// TLS is TLS to NATS. Joining: CAFile verifies the server, CertFile and KeyFile are
// the client certificate. Embedded: CertFile and KeyFile are the server's, and with
// VerifyClients every client needs a certificate signed by CAFile.
type TLS struct {
	CAFile, CertFile, KeyFile string
	VerifyClients             bool
}

// Auth is one NATS credential kind (at most one field set; User goes with Password).
type Auth struct {
	CredsFile    string // JWT and seed; joining only
	NKeySeedFile string
	User         string
	Password     string
	Token        string
}

// Broker is a connection and, when embedded, the server it runs.
type Broker struct {
	Conn   *nats.Conn
	JS     jetstream.JetStream
	server *server.Server
	closed chan struct{}
	log    *slog.Logger
}

// Connect joins or starts NATS. The connection reconnects forever: a NATS restart
// must not need a dexbridge restart.
func Connect(ctx context.Context, o Options) (*Broker, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{closed: make(chan struct{}), log: o.Log}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(false),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				o.Log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { o.Log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			o.Log.Error("nats async error", "subject", subj, "err", err)
		}),
	}
	auth, err := o.Auth.options()
	if err != nil {
		return nil, err
	}
	opts = append(opts, auth...)
	url := o.URL
	if url == "" {
		srv, err := startEmbedded(o)
		if err != nil {
			return nil, err
		}
		b.server = srv
		// In memory, so in clear: the server's TLS is for the processes that join
		// over the network (a tls:// URL would make the client insist on TLS).
		url = strings.Replace(srv.ClientURL(), "tls://", "nats://", 1)
		opts = append(opts, nats.InProcessServer(srv))
	} else {
		opts = append(opts, o.TLS.clientOptions()...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		b.shutdownServer()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.Conn, b.JS = nc, WithReplicas(js, o.Replicas)
	return b, nil
}

func (t TLS) clientOptions() []nats.Option {
	var opts []nats.Option
	if t.CAFile != "" {
		opts = append(opts, nats.RootCAs(t.CAFile))
	}
	if t.CertFile != "" {
		opts = append(opts, nats.ClientCert(t.CertFile, t.KeyFile))
	}
	return opts
}

func (a Auth) options() ([]nats.Option, error) {
	switch {
	case a.CredsFile != "":
		return []nats.Option{nats.UserCredentials(a.CredsFile)}, nil
	case a.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(a.NKeySeedFile)
		if err != nil {
			// The error names the file and what is wrong with it, never the seed.
			return nil, fmt.Errorf("nats nkey seed: %w", err)
		}
		return []nats.Option{opt}, nil
	case a.User != "":
		return []nats.Option{nats.UserInfo(a.User, a.Password)}, nil
	case a.Token != "":
		return []nats.Option{nats.Token(a.Token)}, nil
	}
	return nil, nil
}

// serverOptions makes the embedded server require the credential a holds.
func (a Auth) serverOptions(so *server.Options) error {
	switch {
	case a.CredsFile != "":
		return errors.New("embedded nats: a creds file needs an operator-run NATS server")
	case a.NKeySeedFile != "":
		raw, err := os.ReadFile(a.NKeySeedFile)
		if err != nil {
			return fmt.Errorf("embedded nats: nkey seed: %w", err)
		}
		kp, err := nkeys.FromSeed(bytes.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("embedded nats: nkey seed in %s: %w", a.NKeySeedFile, err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return fmt.Errorf("embedded nats: nkey seed in %s: %w", a.NKeySeedFile, err)
		}
		so.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	case a.User != "":
		so.Username, so.Password = a.User, a.Password
	case a.Token != "":
		so.Authorization = a.Token
	}
	return nil
}

func startEmbedded(o Options) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats listen address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	so := &server.Options{
		ServerName: "dexbridge-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Clean(o.StoreDir),
		// An acknowledged write (a webhook answered 202) must survive a machine crash.
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
	}
	if err := o.Auth.serverOptions(so); err != nil {
		return nil, err
	}
	if o.TLS.CertFile != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
			CertFile: o.TLS.CertFile, KeyFile: o.TLS.KeyFile, CaFile: o.TLS.CAFile, Verify: o.TLS.VerifyClients,
		})
		if err != nil {
			return nil, fmt.Errorf("embedded nats tls: %w", err)
		}
		so.TLSConfig, so.TLS, so.TLSVerify, so.TLSTimeout = tc, true, o.TLS.VerifyClients, 2
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: not ready after 10s (is the listen address taken?)")
	}
	o.Log.Info("embedded nats started", "url", srv.ClientURL(), "store_dir", o.StoreDir)
	return srv, nil
}

// ClientURL is the address other processes use to join this NATS.
func (b *Broker) ClientURL() string {
	if b.server != nil {
		return b.server.ClientURL()
	}
	return b.Conn.ConnectedUrlRedacted()
}

// Embedded reports whether this process runs the server.
func (b *Broker) Embedded() bool { return b.server != nil }

// Ready reports whether the connection is usable.
func (b *Broker) Ready() error {
	if s := b.Conn.Status(); s != nats.CONNECTED {
		return fmt.Errorf("nats %s", s)
	}
	return nil
}

// Close drains the connection (pending replies and published messages go out, then
// subscriptions close) within ctx, then stops the embedded server.
func (b *Broker) Close(ctx context.Context) {
	if err := b.Conn.Drain(); err != nil {
		b.Conn.Close()
	}
	select {
	case <-b.closed:
	case <-ctx.Done():
		b.log.Warn("nats drain did not finish in time")
		b.Conn.Close()
	}
	b.shutdownServer()
}

func (b *Broker) shutdownServer() {
	if b.server != nil {
		b.server.Shutdown()
		b.server.WaitForShutdown()
	}
}
