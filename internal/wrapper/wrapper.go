// Package wrapper is the NQL wrapper: it answers a saved query either from the cache
// that discovery keeps or from the Nexthink instance that last saw the device, and
// says which (source) and how fresh (data as of).
//
// # When the cache answers
//
// A query is answered from a device's cached fields when all of these hold:
//
//   - the query is device-only: its primary table is devices, it joins nothing and
//     reads only plain device fields (no remote-action outputs, packages or events),
//     and its first filter selects one device by device.name or device.collector.uid
//     against a parameter (nql.Analysis DeviceOnly and DeviceKey);
//   - the device is in the cache, and every field the query reads is one of its
//     cached fields;
//   - the cache is fresh: discovery read the device at most MaxAge ago (by default
//     twice CHATBOT_CACHE_REFRESH, so one late or failed discovery run does not send
//     every question to the tenant, and two do). An instance that discovery marks down
//     has its cached rows removed, so its devices are never answered from stale data.
//
// The compiled plan then runs over a one-device nql.Source built from the cached row:
// the interpreter nxsim uses, so the answer is the one the tenant would give for the
// data discovery read. data_as_of is when discovery read it.
//
// Otherwise the query goes live to the instance that last saw the device (or, for a
// query that selects no device, to the instance named, or the only one configured),
// within that instance's NQL rate limit; data_as_of is when the instance ran it.
// Parameters travel as parameters: they are never spliced into query text.
//
// # Every row, and one time format
//
// NQL execute returns at most nexthink.MaxExecuteRows rows and cuts a longer result
// without saying so: a live answer with that many rows, more than the query's own
// limit allows it, is marked Truncated. Export runs the query through the export API
// instead and hands over every row as the results file downloads (export.go).
// Date-times in answers are RFC 3339 UTC text, by the type of each column in the
// compiled query (computed columns included), from the cache and live alike.
package wrapper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nql"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// Live runs a saved query on one instance (nexthink.Client): execute, capped at
// nexthink.MaxExecuteRows rows, or export, every row as the results file downloads.
type Live interface {
	Execute(ctx context.Context, queryID string, params map[string]string) (*nexthink.Result, error)
	ExportStream(ctx context.Context, queryID string, params map[string]string, ready func(partial bool) error,
		fn func(header, record []string) error) error
}

// Instance is a configured Nexthink instance and how to query it.
type Instance struct {
	Name string
	Live Live
}

// Device is the device a query runs on, as resolution found it.
type Device struct {
	Name         string
	CollectorUID string
	UID          string
	Instance     string // the instance that last saw it
	Platform     string
	// LastSeen is when Nexthink last heard from it, as resolution found it (nil:
	// unknown).
	LastSeen *time.Time
	// Fields are its cached fields by fully qualified name; nil when the cache does
	// not have the device (it was found live).
	Fields map[string]any
	// CachedAt is when discovery read the fields (zero without them).
	CachedAt time.Time
}

// Cached reports whether the device came from the cache with its fields.
func (d *Device) Cached() bool { return d.Fields != nil && !d.CachedAt.IsZero() }

// Attribute is the value of a device attribute a topic's query parameter names
// ("device.name", "device.collector.uid", "device.uid").
func (d *Device) Attribute(name string) (string, bool) {
	switch name {
	case "device.name":
		return d.Name, d.Name != ""
	case "device.collector.uid":
		return d.CollectorUID, d.CollectorUID != ""
	case "device.uid":
		return d.UID, d.UID != ""
	}
	return "", false
}

// Resolver finds a device by name or collector UID: in the cache first, with its
// cached fields, else live. An unknown device is a not_found problem.
type Resolver interface {
	Resolve(ctx context.Context, device string) (Device, error)
}

// Options are the wrapper's dependencies.
type Options struct {
	Instances []Instance // in configuration order
	Resolver  Resolver
	// MaxAge is how old cached fields may be and still answer (see the package doc).
	MaxAge time.Duration
	Now    func() time.Time // default time.Now
	Log    *slog.Logger
	// Metrics, when set, counts device queries answered from the cache (hit) or not.
	Metrics *metrics.Metrics
}

// Wrapper answers saved queries from the cache or live. It is safe for concurrent use.
type Wrapper struct {
	live     map[string]Live
	order    []string
	resolver Resolver
	maxAge   time.Duration
	now      func() time.Time
	types    map[string]nql.FieldType
	log      *slog.Logger
	metrics  *metrics.Metrics
}

// New returns a wrapper.
func New(o Options) (*Wrapper, error) {
	if o.Resolver == nil || o.MaxAge <= 0 {
		return nil, errors.New("wrapper: a device resolver and a positive cache age are required")
	}
	w := &Wrapper{live: map[string]Live{}, resolver: o.Resolver, maxAge: o.MaxAge, now: o.Now, metrics: o.Metrics,
		types: deviceFieldTypes(), log: o.Log}
	if w.now == nil {
		w.now = time.Now
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	for _, in := range o.Instances {
		w.live[in.Name] = in.Live
		w.order = append(w.order, in.Name)
	}
	return w, nil
}

// MaxAge is how old cached fields may be and still answer.
func (w *Wrapper) MaxAge() time.Duration { return w.maxAge }

// Request is one run of a saved query.
type Request struct {
	Parameters map[string]string
	// Instance, when set, is where the query runs: needed for a query that selects no
	// device when several instances are configured. For a device query it overrides
	// the instance the device was last seen on.
	Instance string
	// Device is the device, when the caller has resolved it already (a diagnosis);
	// otherwise the query's device parameter is resolved.
	Device *Device
	// Live skips the cache (after a refresh, the cached fields are older than what the
	// data collection just gathered).
	Live bool
}

// Answer is a query's result and where it came from.
type Answer struct {
	Headers  []string
	Rows     []map[string]any // keyed by header
	Source   string           // events.SourceCache or events.SourceLive
	Instance string
	DataAsOf time.Time
	// Why says why the cache did not answer; empty when it did.
	Why string
	// Truncated says the instance cut the result at RowLimit rows (NQL execute's
	// cap): more rows exist, and Export returns them all.
	Truncated bool
	RowLimit  int
}

// maxParameter bounds a parameter value.
const maxParameter = 1024

// CheckParameters refuses a request whose parameters do not fit q: each of its
// parameters given once, no others, no control characters.
func CheckParameters(q *topic.SavedQuery, params map[string]string) error {
	want := q.Analysis.Parameters
	for _, name := range want {
		if _, ok := params[name]; !ok {
			return problem.InvalidField("parameters."+name, "query %s needs the parameter %s", q.ID, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if !slices.Contains(want, name) {
			takes := "no parameters"
			if len(want) > 0 {
				takes = "only " + strings.Join(want, ", ")
			}
			return problem.InvalidField("parameters."+name, "query %s has no parameter %s (it takes %s)", q.ID, name, takes)
		}
		v := params[name]
		if len(v) > maxParameter || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return problem.InvalidField("parameters."+name, "a parameter is at most %d characters without control characters", maxParameter)
		}
	}
	return nil
}

// Run answers q.
func (w *Wrapper) Run(ctx context.Context, q *topic.SavedQuery, r Request) (Answer, error) {
	a, err := w.run(ctx, q, r)
	if err == nil && q.Analysis.DeviceKey != nil {
		w.metrics.Cache("nql", a.Source == events.SourceCache)
	}
	return a, err
}

func (w *Wrapper) run(ctx context.Context, q *topic.SavedQuery, r Request) (Answer, error) {
	if err := CheckParameters(q, r.Parameters); err != nil {
		return Answer{}, err
	}
	t, err := w.target(ctx, q, r)
	if err != nil {
		return Answer{}, err
	}
	if t.why != "" {
		return w.runLive(ctx, q, r.Parameters, t.instance, t.why)
	}
	now := w.now()
	why := "a refresh asked for live data"
	if !r.Live {
		why = w.cacheVerdict(q, t.dev, now)
	}
	if why == "" {
		return w.runCached(ctx, q, r.Parameters, t.dev, now)
	}
	if _, ok := w.live[t.instance]; !ok {
		return Answer{}, problem.New(problem.ServiceUnavailable, "device %s was last seen by instance %s, which this worker is not configured for", t.dev.Name, t.instance).Retry(5 * time.Second)
	}
	return w.runLive(ctx, q, r.Parameters, t.instance, why)
}

// target is where a query runs: the device it selects (nil for none) and its
// instance, or the instance to ask live and why (the cache cannot answer a query
// that selects no device, nor one asked of another instance than the device's).
type target struct {
	dev      *Device
	instance string
	why      string // set when the query must go live to instance
}

func (w *Wrapper) target(ctx context.Context, q *topic.SavedQuery, r Request) (target, error) {
	key := q.Analysis.DeviceKey
	if key == nil {
		instance, err := w.instanceFor(q, r.Instance)
		return target{instance: instance, why: "the query selects no single device"}, err
	}
	dev := r.Device
	if dev == nil {
		d, err := w.resolver.Resolve(ctx, r.Parameters[key.Parameter])
		if err != nil {
			return target{}, err
		}
		dev = &d
	}
	if r.Instance != "" && r.Instance != dev.Instance {
		if _, ok := w.live[r.Instance]; !ok {
			return target{}, w.unknownInstance(r.Instance)
		}
		return target{dev: dev, instance: r.Instance, why: "asked of instance " + r.Instance}, nil
	}
	return target{dev: dev, instance: dev.Instance}, nil
}

// cacheVerdict says why dev's cached fields cannot answer q at now, or "" when they
// can.
func (w *Wrapper) cacheVerdict(q *topic.SavedQuery, dev *Device, now time.Time) string {
	switch {
	case !q.Analysis.DeviceOnly:
		return "the query reads more than the device's own fields (remote-action outputs, packages or events)"
	case !dev.Cached():
		return "the device is not in the cache"
	case now.Sub(dev.CachedAt) > w.maxAge:
		return fmt.Sprintf("the cached fields are %s old, more than %s", now.Sub(dev.CachedAt).Round(time.Second), w.maxAge)
	}
	for _, f := range q.Analysis.Fields {
		if _, ok := dev.Fields[f]; !ok {
			return "the cache does not hold " + f
		}
	}
	return ""
}

func (w *Wrapper) runCached(ctx context.Context, q *topic.SavedQuery, params map[string]string, dev *Device, now time.Time) (Answer, error) {
	src := deviceSource{row: cachedRow{fields: dev.Fields, types: w.types}}
	res, err := q.Plan.Run(ctx, src, params, nql.RunOptions{Now: now})
	var pe *nql.ParamError
	switch {
	case errors.As(err, &pe):
		return Answer{}, problem.InvalidField("parameters."+pe.Name, "%s", pe.Error())
	case err != nil:
		return Answer{}, fmt.Errorf("query %s over the cache: %w", q.ID, err)
	}
	a := Answer{Headers: res.Headers, Rows: make([]map[string]any, 0, len(res.Rows)), Source: events.SourceCache,
		Instance: dev.Instance, DataAsOf: dev.CachedAt.UTC()}
	for _, row := range res.Rows {
		m := make(map[string]any, len(row))
		for k, v := range row {
			m[res.Headers[k]] = cell(v)
		}
		a.Rows = append(a.Rows, m)
	}
	return a, nil
}

func (w *Wrapper) runLive(ctx context.Context, q *topic.SavedQuery, params map[string]string, instance, why string) (Answer, error) {
	res, err := w.live[instance].Execute(ctx, q.ID, params)
	if err != nil {
		return Answer{}, nexthink.Problem(err)
	}
	at := res.Executed
	if at.IsZero() {
		at = w.now()
	}
	normalizeTimes(q.Analysis, res.Rows)
	w.log.DebugContext(ctx, "query answered live", "query", q.ID, "instance", instance, "why", why)
	a := Answer{Headers: slices.Clone(q.Analysis.Headers), Rows: res.Rows, Source: events.SourceLive,
		Instance: instance, DataAsOf: at.UTC().Truncate(time.Second), Why: why}
	// A query's own limit at or under the cap explains a full answer; otherwise a
	// full answer is a cut one (the API does not say whether a row was left out).
	if n := len(res.Rows); n >= nexthink.MaxExecuteRows && (q.Analysis.Limit < 0 || q.Analysis.Limit > n) {
		a.Truncated, a.RowLimit = true, nexthink.MaxExecuteRows
	}
	return a, nil
}

// normalizeTimes writes the date-time columns of rows (computed ones included,
// which the client cannot tell) as RFC 3339 UTC.
func normalizeTimes(a nql.Analysis, rows []map[string]any) {
	for k, h := range a.Headers {
		if k >= len(a.Types) || a.Types[k] != nql.TypeDateTime {
			continue
		}
		for _, row := range rows {
			if v, ok := row[h]; ok {
				row[h] = nexthink.NormalizeTime(v)
			}
		}
	}
}

// instanceFor picks the instance of a query that selects no device.
func (w *Wrapper) instanceFor(q *topic.SavedQuery, asked string) (string, error) {
	switch {
	case asked != "":
		if _, ok := w.live[asked]; !ok {
			return "", w.unknownInstance(asked)
		}
		return asked, nil
	case len(w.order) == 1:
		return w.order[0], nil
	case len(w.order) == 0:
		return "", problem.New(problem.ServiceUnavailable, "no Nexthink instance is configured").Retry(5 * time.Second)
	}
	return "", problem.InvalidField("instance", "query %s selects no device: name the instance to ask (one of %s)", q.ID, strings.Join(w.order, ", "))
}

func (w *Wrapper) unknownInstance(name string) error {
	return problem.InvalidField("instance", "no instance %q (instances: %s)", name, strings.Join(w.order, ", "))
}
