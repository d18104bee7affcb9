package app

import (
	"context"

	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/services/ingress"
	"github.com/dexbridge/dexbridge/services/topics"
)

// component is a service `dexbridge run` can start. Front components take outside
// traffic and stop first.
type component struct {
	name  string
	front bool
	build func(*deps) (Runner, error)
}

func components() []component {
	return []component{
		{name: "ingress", front: true, build: buildIngress},
		{name: "topics", build: buildTopics},
	}
}

func buildIngress(d *deps) (Runner, error) {
	return ingress.New(ingress.Options{
		Listen:            d.cfg.Listen,
		TLSCertFile:       d.cfg.TLS.CertFile,
		TLSKeyFile:        d.cfg.TLS.KeyFile,
		AllowInsecureHTTP: d.cfg.AllowInsecureHTTP,
		RPC:               d.rpc,
		Subjects:          d.subjects,
		Checks: []ingress.Check{
			{Name: "nats", Fn: func(context.Context) error { return d.bus.Ready() }},
			{Name: "postgres", Fn: d.db.Ping},
		},
		ShutdownTimeout: d.cfg.ShutdownTimeout.D(),
		Log:             d.log.With("service", "ingress"),
		OnListen:        d.onListen,
	}), nil
}

func buildTopics(d *deps) (Runner, error) {
	cat, err := topic.LoadDir(d.cfg.TopicsDir)
	if err != nil {
		return nil, err
	}
	return topics.New(topics.Options{
		Conn: d.bus.Conn, Subjects: d.subjects, Catalog: cat,
		Concurrency: d.cfg.Workers.Concurrency, ShutdownTimeout: d.cfg.ShutdownTimeout.D(),
		Log: d.log, Version: d.version,
	}), nil
}
