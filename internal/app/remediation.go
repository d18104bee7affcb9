package app

import (
	"errors"

	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/services/poller"
	"github.com/dexbridge/dexbridge/services/remoteactions"
)

// remediationFiles loads the allow-list and the topics a remote action manager
// checks triggers and topic remediations against.
func remediationFiles(d *deps) func() (*allowlist.List, *topic.Catalog, error) {
	return func() (*allowlist.List, *topic.Catalog, error) {
		allow, errAllow := allowlist.LoadFile(d.cfg.RemoteActionsFile)
		cat, errCat := topic.LoadDir(d.cfg.TopicsDir)
		if err := errors.Join(errAllow, errCat); err != nil {
			return nil, nil, err
		}
		return allow, cat, nil
	}
}

func buildRemoteActions(d *deps) (Runner, error) {
	allow, cat, err := remediationFiles(d)()
	if err != nil {
		return nil, err
	}
	db := store.New(d.db)
	set, err := d.instances()
	if err != nil {
		return nil, err
	}
	e := d.cfg.Executions
	return remoteactions.New(remoteactions.Options{
		Conn: d.bus.Conn, JS: d.bus.JS, Subjects: d.subjects, Store: db, Instances: set, Allowlist: allow, Topics: cat,
		RPC: d.rpc, ExpiresIn: e.ExpiresIn.D(), DetailsTTL: e.DetailsTTL.D(), DiagnosisMaxAge: e.DiagnosisMaxAge.D(),
		Concurrency: d.cfg.Workers.Concurrency, ShutdownTimeout: d.cfg.ShutdownTimeout.D(), Metrics: d.metrics,
		Log: d.log, Version: d.version,
	})
}

func buildPoller(d *deps) (Runner, error) {
	db := store.New(d.db)
	set, err := d.instances()
	if err != nil {
		return nil, err
	}
	return poller.New(poller.Options{
		DB: db, Instances: set, JS: d.bus.JS, Subjects: d.subjects, Interval: d.cfg.Executions.PollInterval.D(),
		Metrics: d.metrics, Log: d.log,
	}), nil
}
