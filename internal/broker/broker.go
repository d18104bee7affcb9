// Package broker gives a process its NATS connection: to the server at a URL, or to
// an embedded nats-server (JetStream on, state on disk, every write synced) that other
// processes on the machine can join at its listen address.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options say where NATS is.
type Options struct {
	URL      string // join this server; empty starts an embedded one
	Listen   string // embedded server's client address ("127.0.0.1:0" picks a port)
	StoreDir string // embedded server's JetStream directory
	Name     string // connection name, shown by the server
	Log      *slog.Logger
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
	url := o.URL
	if url == "" {
		srv, err := startEmbedded(o)
		if err != nil {
			return nil, err
		}
		b.server = srv
		url = srv.ClientURL()
		opts = append(opts, nats.InProcessServer(srv))
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
	b.Conn, b.JS = nc, js
	return b, nil
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
	srv, err := server.NewServer(&server.Options{
		ServerName: "dexbridge-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Clean(o.StoreDir),
		// An acknowledged write (a webhook answered 202) must survive a machine crash.
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
	})
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
