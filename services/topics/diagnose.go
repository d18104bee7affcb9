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
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/wrapper"
)

// Diagnoses records diagnoses (store.DB): the remediation of a topic runs with the
// parameters of the latest diagnosis of that topic on the device.
type Diagnoses interface {
	SaveDiagnosis(ctx context.Context, d store.Diagnosis) error
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
	now       func() time.Time
	log       *slog.Logger

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
		if diag.Refreshed, err = d.refresher.collect(ctx, p, dev, diag.ID); err != nil {
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
	fields, source, asOf := merge(answers)
	now := d.now()
	outcome := p.EvaluateAt(fields, now)
	diag.Fields, diag.Rules, diag.Findings, diag.Remediations = fields, outcome.Rules, outcome.Findings, outcome.Remediations
	d.markInProgress(ctx, &diag)
	diag.Source, diag.DataAsOf, diag.DiagnosedAt = source, asOf, now.UTC().Truncate(time.Millisecond)
	timing["total"] = d.now().Sub(start).Milliseconds()
	diag.Timing = timing
	body, err := json.Marshal(diag)
	if err != nil {
		return events.DiagnoseReply{}, fmt.Errorf("encode diagnosis: %w", err)
	}
	if err := d.store.SaveDiagnosis(ctx, store.Diagnosis{ID: diag.ID, Topic: diag.Topic, CollectorUID: dev.CollectorUID,
		Instance: dev.Instance, DeviceName: dev.Name, DiagnosedAt: diag.DiagnosedAt, Source: source, Body: body}); err != nil {
		return events.DiagnoseReply{}, problem.Wrap(problem.ServiceUnavailable, err, "the diagnosis could not be recorded right now").Retry(time.Second)
	}
	d.log.DebugContext(ctx, "diagnosis", "topic", diag.Topic, "device", dev.Name, "instance", dev.Instance, "source", source,
		"findings", len(diag.Findings), "refresh", req.Refresh, "duration_ms", timing["total"])
	return events.DiagnoseReply{Header: events.NewHeader(events.TypeDiagnoseReply), Diagnosis: diag}, nil
}

// runQueries runs the topic's queries on dev at once, each with its parameters filled
// from the device, and returns their answers in the topic's order. The first failure
// is the answer.
func (d *diagnoser) runQueries(ctx context.Context, p *topic.Program, dev *wrapper.Device, live bool) ([]wrapper.Answer, error) {
	runs := p.Queries()
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

// merge gathers the first row of each answer into one set of fields (a later query's
// value of a field wins), says where the data came from (cache, live or mixed) and
// returns the oldest data time.
func merge(answers []wrapper.Answer) (map[string]any, string, *time.Time) {
	fields := map[string]any{}
	var sources []string
	var oldest *time.Time
	for _, a := range answers {
		if len(a.Rows) > 0 {
			for k, v := range a.Rows[0] {
				fields[k] = v
			}
		}
		if !slices.Contains(sources, a.Source) {
			sources = append(sources, a.Source)
		}
		if oldest == nil || a.DataAsOf.Before(*oldest) {
			t := a.DataAsOf
			oldest = &t
		}
	}
	source := sourceMixed
	if len(sources) == 1 {
		source = sources[0]
	}
	return fields, source, oldest
}

// newDiagnosisID is "dg_" and 32 hex digits.
func newDiagnosisID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "dg_" + hex.EncodeToString(b)
}
