package app

import (
	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/livedevices"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/services/poller"
	"github.com/dexbridge/dexbridge/services/remoteactions"
)

// remediationFiles loads the allow-list and the topics a remote action manager
// checks triggers and topic remediations against, loaded as the topics worker loads
// them, so both accept or refuse a reload alike.
func remediationFiles(d *deps) func() (*allowlist.List, *topic.Catalog, error) {
	return func() (*allowlist.List, *topic.Catalog, error) {
		set, err := topic.FilesOf(d.cfg).Load()
		if err != nil {
			return nil, nil, err
		}
		return set.Allowlist(), set.Catalog(), nil
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
	return remoteactions.New(remoteactions.Options{
		Conn: d.bus.Conn, JS: d.bus.JS, Subjects: d.subjects, Store: db, Instances: set, Allowlist: allow, Topics: cat,
		Load: remediationFiles(d),
		Live: liveDevices(d, db, set), Config: remoteactions.ConfigFrom(d.cfg), Metrics: d.metrics,
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
		DB: db, Instances: set, JS: d.bus.JS, Subjects: d.subjects, Config: poller.ConfigFrom(d.cfg),
		Metrics: d.metrics, Log: d.log,
	}), nil
}

// liveDevices finds devices on the instances, with a chatbot's patience, tuned as
// identification's and the diagnosis's finders are.
func liveDevices(d *deps, db *store.DB, set *instances.Set) *livedevices.Finder {
	var live []livedevices.Instance
	for _, in := range set.List() {
		live = append(live, livedevices.Instance{Name: in.Name, Live: in.ClientWith(instances.Interactive())})
	}
	return livedevices.New(db, live, livedevices.Tuned(livedevices.TuningFrom(d.cfg), db), livedevices.Log(d.log))
}
