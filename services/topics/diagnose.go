package topics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/freshness"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/wrapper"
)

// Diagnoses records diagnoses and keeps the last known values of the outputs they
// read (store.DB): the remediation of a topic runs with the parameters of the latest
// diagnosis of that topic on the device, and a value a pending collection hides is
// read from what an earlier diagnosis kept.
type Diagnoses interface {
	SaveDiagnosis(ctx context.Context, d store.Diagnosis) error
	KnownValues(ctx context.Context, instance, collectorUID string) ([]store.KnownValue, error)
	SaveKnownValues(ctx context.Context, instance, collectorUID string, values []store.KnownValue) error
}

// Source of a diagnosis whose queries were answered partly from the cache, partly live.
const sourceMixed = "mixed"

// diagnoser is the topic manager's diagnosis, without NATS: resolve the device, run
// the data collection when asked, run the topic's queries through the wrapper,
// evaluate the rules and record the diagnosis.
type diagnoser struct {
	defs      func() *topic.Set
	devices   wrapper.Resolver
	wrapper   *wrapper.Wrapper
	refresher *refresher // nil: refresh is unavailable
	store     Diagnoses
	// onlineWithin is how recently a device must have been seen to count as online.
	onlineWithin time.Duration
	now          func() time.Time
	log          *slog.Logger

	// executions, when set, marks remediations in progress (inprogress.go).
	executions ActiveExecutions
}

func (d *diagnoser) diagnose(ctx context.Context, req events.DiagnoseRequest) (events.DiagnoseReply, error) {
	start := d.now()
	if err := req.Validate(); err != nil {
		return events.DiagnoseReply{}, err
	}
	defs := d.defs()
	p, ok := defs.Topic(req.Topic)
	if !ok {
		return events.DiagnoseReply{}, problem.New(problem.NotFound, "no topic %q", req.Topic)
	}
	dev, err := d.devices.Resolve(ctx, req.Device)
	if err != nil {
		return events.DiagnoseReply{}, err
	}
	if dev.Platform != "" && !p.Topic().SupportsPlatform(dev.Platform) {
		return events.DiagnoseReply{}, problem.New(problem.Unprocessable, "topic %s applies to %s devices; %s is a %s device",
			p.ID(), strings.Join(p.Topic().Platforms, " and "), dev.Name, dev.Platform)
	}
	timing := map[string]int64{"resolve": d.now().Sub(start).Milliseconds()}
	diag := events.Diagnosis{
		ID: newDiagnosisID(), Topic: p.ID(),
		Device: events.ExecutionDevice{Name: dev.Name, CollectorUID: dev.CollectorUID, Instance: dev.Instance},
	}
	if req.Refresh && len(p.DataCollection()) > 0 {
		if d.refresher == nil {
			return events.DiagnoseReply{}, problem.New(problem.ServiceUnavailable, "a refresh needs the remote actions service, which this worker cannot reach").Retry(5 * time.Second)
		}
		t := d.now()
		if err := d.keepCurrent(ctx, p, &dev); err != nil {
			return events.DiagnoseReply{}, err
		}
		presence := events.PresenceAt(dev.LastSeen, d.now(), d.onlineWithin)
		if diag.Refreshed, err = d.refresher.collect(ctx, p, dev, diag.ID, presence); err != nil {
			return events.DiagnoseReply{}, err
		}
		timing["refresh"] = d.now().Sub(t).Milliseconds()
	}
	t := d.now()
	answers, err := d.runQueries(ctx, p, &dev, req.Refresh)
	if err != nil {
		return events.DiagnoseReply{}, err
	}
	timing["queries"] = d.now().Sub(t).Milliseconds()
	now := d.now()
	fresh := d.date(ctx, p, dev, answers, now)
	outcome := p.EvaluateAt(fresh.Fields, now)
	outcome.Conclude(topic.Data{AsOf: fresh.DataAsOf, Stale: fresh.Stale, MaxAge: p.MaxAge(), Undated: fresh.Undated, Empty: fresh.Empty})
	diag.Device.LastSeen, diag.Device.Presence = fresh.LastSeen, events.PresenceAt(fresh.LastSeen, now, d.onlineWithin)
	diag.Verdict, diag.VerdictReasons = outcome.Verdict, outcome.Reasons
	diag.Fields, diag.FieldTimes = fresh.Fields, fresh.Times
	diag.Rules, diag.Findings, diag.Remediations = outcome.Rules, outcome.Findings, outcome.Remediations
	d.markInProgress(ctx, &diag)
	diag.Source, diag.DataAsOf, diag.Stale, diag.MaxAgeSeconds = source(answers), fresh.DataAsOf, fresh.Stale, int64(p.MaxAge()/time.Second)
	diag.DiagnosedAt = now.UTC().Truncate(time.Millisecond)
	timing["total"] = d.now().Sub(start).Milliseconds()
	diag.Timing = timing
	body, err := json.Marshal(diag)
	if err != nil {
		return events.DiagnoseReply{}, fmt.Errorf("encode diagnosis: %w", err)
	}
	if err := d.store.SaveDiagnosis(ctx, store.Diagnosis{ID: diag.ID, Topic: diag.Topic, CollectorUID: dev.CollectorUID,
		Instance: dev.Instance, DeviceName: dev.Name, DiagnosedAt: diag.DiagnosedAt, Source: diag.Source, Body: body}); err != nil {
		return events.DiagnoseReply{}, problem.Wrap(problem.ServiceUnavailable, err, "the diagnosis could not be recorded right now").Retry(time.Second)
	}
	// Recorded in English (what remediations read back); answered in the asker's locale.
	p.Topic().LocalizeDiagnosis(&diag, req.Locale)
	d.log.DebugContext(ctx, "diagnosis", "topic", diag.Topic, "device", dev.Name, "instance", dev.Instance, "source", diag.Source,
		"verdict", diag.Verdict, "stale", diag.Stale, "findings", len(diag.Findings), "refresh", req.Refresh, "duration_ms", timing["total"])
	return events.DiagnoseReply{Header: events.NewHeader(events.TypeDiagnoseReply), Diagnosis: diag}, nil
}

// date merges and dates the answers. When a collection has not produced an output,
// the value dexbridge kept stands in; the outputs of successful collections are kept
// for next time. The store failing costs only the stand-ins: the diagnosis then says
// the values are missing, which is true of what it could read.
func (d *diagnoser) date(ctx context.Context, p *topic.Program, dev wrapper.Device, answers []wrapper.Answer, now time.Time) freshness.Result {
	in := freshness.Input{Answers: make([]freshness.Answer, len(answers)), LastSeen: dev.LastSeen, Now: now, MaxAge: p.MaxAge()}
	for k, a := range answers {
		in.Answers[k] = freshness.Answer{Query: p.Queries()[k], Rows: a.Rows}
	}
	r := freshness.Merge(in)
	if r.Unfinished {
		known, err := d.knownValues(ctx, dev)
		if err != nil {
			d.log.WarnContext(ctx, "last known values unavailable", "device", dev.Name, "instance", dev.Instance, "err", err)
		} else {
			in.Known = known
			r = freshness.Merge(in)
		}
	}
	d.keep(ctx, dev, r.Collected)
	return r
}

// keepCurrent makes sure, before a refresh, that dexbridge keeps the values the
// device's last collections gave: the collections a refresh starts hide them until
// they finish, which on a device that is not online may be hours or never.
func (d *diagnoser) keepCurrent(ctx context.Context, p *topic.Program, dev *wrapper.Device) error {
	var queries []*topic.SavedQuery
	for _, q := range p.Queries() {
		for _, dt := range q.Dating {
			if dt.Collection != "" {
				queries = append(queries, q)
				break
			}
		}
	}
	if len(queries) == 0 {
		return nil
	}
	answers, err := d.runQueriesOf(ctx, queries, dev, true)
	if err != nil {
		return err
	}
	in := freshness.Input{Answers: make([]freshness.Answer, len(answers)), Now: d.now(), MaxAge: p.MaxAge()}
	for k, a := range answers {
		in.Answers[k] = freshness.Answer{Query: queries[k], Rows: a.Rows}
	}
	d.keep(ctx, *dev, freshness.Merge(in).Collected)
	return nil
}

// knownValues reads the last known values of dev's outputs.
func (d *diagnoser) knownValues(ctx context.Context, dev wrapper.Device) (map[string]freshness.Known, error) {
	kept, err := d.store.KnownValues(ctx, dev.Instance, dev.CollectorUID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]freshness.Known, len(kept))
	for _, k := range kept {
		var v any
		if json.Unmarshal(k.Value, &v) == nil {
			out[k.Field] = freshness.Known{Value: v, At: k.CollectedAt.UTC()}
		}
	}
	return out, nil
}

// keep records values as dev's last known ones.
func (d *diagnoser) keep(ctx context.Context, dev wrapper.Device, values []freshness.Value) {
	if len(values) == 0 {
		return
	}
	kept := make([]store.KnownValue, 0, len(values))
	for _, v := range values {
		raw, err := json.Marshal(v.Value)
		if err != nil {
			continue
		}
		kept = append(kept, store.KnownValue{Field: v.Field, Value: raw, CollectedAt: v.At})
	}
	if err := d.store.SaveKnownValues(ctx, dev.Instance, dev.CollectorUID, kept); err != nil {
		d.log.WarnContext(ctx, "last known values not kept", "device", dev.Name, "instance", dev.Instance, "err", err)
	}
}

// runQueries runs the topic's queries on dev at once, each with its parameters filled
// from the device, and returns their answers in the topic's order. The first failure
// is the answer.
func (d *diagnoser) runQueries(ctx context.Context, p *topic.Program, dev *wrapper.Device, live bool) ([]wrapper.Answer, error) {
	return d.runQueriesOf(ctx, p.Queries(), dev, live)
}

// runQueriesOf is runQueries of some of a topic's queries.
func (d *diagnoser) runQueriesOf(ctx context.Context, runs []*topic.SavedQuery, dev *wrapper.Device, live bool) ([]wrapper.Answer, error) {
	params := make([]map[string]string, len(runs))
	for k, q := range runs {
		params[k] = make(map[string]string, len(q.Parameters))
		for name, attr := range q.Parameters {
			v, ok := dev.Attribute(attr)
			if !ok {
				return nil, problem.New(problem.Unprocessable, "query %s needs the %s of device %s, which is not known", q.ID, attr, dev.Name)
			}
			params[k][name] = v
		}
	}
	answers := make([]wrapper.Answer, len(runs))
	errs := make([]error, len(runs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for k := range runs {
		wg.Go(func() {
			answers[k], errs[k] = d.wrapper.Run(ctx, runs[k], wrapper.Request{Parameters: params[k], Device: dev, Live: live})
			if errs[k] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	// The failure to report is the one that cancelled the others.
	var first error
	for _, err := range errs {
		switch {
		case err == nil:
		case !isCanceled(err):
			return nil, err
		case first == nil:
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	return answers, nil
}

// isCanceled reports whether err only says the query was cut short because another
// one failed first.
func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || problem.CodeOf(err) == problem.Timeout
}

// source says where the answers came from: cache, live, or mixed.
func source(answers []wrapper.Answer) string {
	var sources []string
	for _, a := range answers {
		if !slices.Contains(sources, a.Source) {
			sources = append(sources, a.Source)
		}
	}
	if len(sources) == 1 {
		return sources[0]
	}
	return sourceMixed
}

// newDiagnosisID is "dg_" and 32 hex digits.
func newDiagnosisID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "dg_" + hex.EncodeToString(b)
}
