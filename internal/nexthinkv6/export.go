package nexthinkv6

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nxql"
)

// routeBatch is how many exported rows' routes are saved to Memory at once.
const routeBatch = 2000

// ExportStream runs a saved query's NXQL form on every Engine up and hands over
// its rows as they arrive (ready first: the Engines' answers are never cut
// short, so partial is false). A discovery of 500 000 devices holds no more than
// a row per Engine: each Engine is asked for its rows ordered by device (or user)
// and the answers are merged as they stream in, so the copies of one device on
// two Engines (it moved) meet and the one with the latest last_seen wins, as in
// Execute. A form of several queries merged on a key cannot stream: its rows are
// read first. An Engine that does not answer is left out (logged), as in Execute;
// one that breaks off mid-answer fails the export.
func (d *Driver) ExportStream(ctx context.Context, queryID string, params map[string]string, ready func(partial bool) error,
	fn func(header, record []string) error) error {
	f, ok := d.forms[queryID]
	if !ok || len(f.NXQL) != 1 || streamKey(f) == "" {
		if !ok {
			_, _, err := d.run(ctx, queryID, params) // its error names the missing form
			return err
		}
		return d.exportBuffered(ctx, f, params, ready, fn)
	}
	platforms, err := f.Platforms(params)
	if err != nil {
		return &nexthink.Error{Instance: d.cfg.Instance, Call: "nql.export", Target: queryID, Code: nexthink.CodeInvalid, Message: err.Error()}
	}
	engines, err := d.engineList(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	text := ordered(f.Text(0, d.cfg.ActivityPeriod), f.Columns[streamKey(f)].Column)
	var streams []*rowStream
	defer func() {
		for _, s := range streams {
			s.close()
		}
	}()
	// Every Engine computes its answer at once; each is then read as the merge
	// needs it.
	opened := make([]*rowStream, len(engines))
	errs := make([]error, len(engines))
	var wg sync.WaitGroup
	var failed []string
	for k, e := range engines {
		if !d.usable(e) {
			failed = append(failed, e.Name)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			opened[k], errs[k] = d.openStream(ctx, e, f, text, f.Args(params), platforms)
		}()
	}
	wg.Wait()
	var firstErr, refused error
	for k, e := range engines {
		switch {
		case opened[k] != nil:
			streams = append(streams, opened[k])
		case errs[k] != nil:
			var ne *nexthink.Error
			if errors.As(errs[k], &ne) && ne.Status >= 400 && ne.Status < 500 && ne.Status != http.StatusTooManyRequests {
				refused = errs[k] // the query itself is wrong: every Engine would say so
			}
			failed = append(failed, e.Name)
			if firstErr == nil {
				firstErr = errs[k]
			}
		}
	}
	if refused != nil {
		return refused
	}
	if len(streams) == 0 {
		if firstErr == nil {
			firstErr = &nexthink.Error{Instance: d.cfg.Instance, Call: "nxql.query on " + strings.Join(failed, ", "), Target: queryID,
				Code: nexthink.CodeUnavailable, Message: "every Engine is marked down", RetryAfter: d.cfg.ProbeEvery}
		}
		return firstErr
	}
	if len(failed) > 0 {
		d.log.Warn("nexthink v6 export answered without some Engines", "query", queryID, "engines_missing", failed)
	}
	if ready != nil {
		if err := ready(false); err != nil {
			return fmt.Errorf("export %s: %w", queryID, err)
		}
	}
	key := streamKey(f)
	var first []map[string]any
	for _, s := range streams {
		if err := s.next(); err != nil {
			return err
		}
		if s.row != nil {
			first = append(first, s.row)
		}
	}
	header := exportHeader(f, first)
	// Routes come from the exports that list devices by name (discovery's device
	// export); the activity export names the same devices again.
	_, routes := f.Columns[colDeviceName]
	// The routes are written while the rows go on (at most two batches wait).
	batches := make(chan []tagged, 2)
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for b := range batches {
			d.learnOnly(ctx, b)
		}
	}()
	defer func() { close(batches); writer.Wait() }()
	var learned []tagged
	for {
		// The group of the smallest key among the Engines' next rows: every copy of
		// one device (or user) meets there when the Engines sort as assumed; if one
		// sorts otherwise, rows are still all handed over, a copy may just repeat.
		low, found := "", false
		for _, s := range streams {
			if s.row != nil && (!found || sortKey(s.row, key) < low) {
				low, found = sortKey(s.row, key), true
			}
		}
		if !found {
			break
		}
		var group []tagged
		for _, s := range streams {
			for s.row != nil && sortKey(s.row, key) == low {
				group = append(group, tagged{s.e, s.row})
				if err := s.next(); err != nil {
					return err
				}
			}
		}
		for _, t := range dedupe(group) {
			if err := fn(header, record(header, t.row)); err != nil {
				return fmt.Errorf("export %s: %w", queryID, err)
			}
			if routes {
				learned = append(learned, t)
			}
		}
		if len(learned) >= routeBatch {
			batches <- learned
			learned = make([]tagged, 0, routeBatch)
		}
	}
	batches <- learned
	return nil
}

// streamKey is the NQL column an export streams in the order of: the device's
// collector UID, else the user's name; "" when the form has neither.
func streamKey(f *nxql.Form) string {
	for _, c := range []string{colCollectorUID, "user.name"} {
		if m, ok := f.Columns[c]; ok && m.Column != "" && m.Map == nil && m.Divide == 0 {
			return c
		}
	}
	return ""
}

func sortKey(row map[string]any, col string) string {
	s, _ := row[col].(string)
	return strings.ToLower(s)
}

// ordered adds (order_by column) to a select that has no order_by.
func ordered(text, column string) string {
	t := strings.TrimSpace(text)
	if strings.Contains(t, "(order_by") || !strings.HasSuffix(t, ")") {
		return t
	}
	return t[:len(t)-1] + " (order_by " + column + " asc))"
}

// rowStream reads one Engine's answer row by row.
type rowStream struct {
	ctx  context.Context
	d    *Driver
	e    *engineState
	f    *nxql.Form
	body io.ReadCloser
	dec  *json.Decoder
	uid  bool
	row  map[string]any // the next row, under the NQL columns; nil at the end
	done bool
}

// openStream starts a query on e and reads the answer's opening bracket.
func (d *Driver) openStream(ctx context.Context, e *engineState, f *nxql.Form, text string, args, platforms []string) (*rowStream, error) {
	form := url.Values{"query": {text}, "format": {"json"}, "platform": platforms}
	for i, a := range args {
		form.Set("p"+strconv.Itoa(i+1), a)
	}
	call := httpCall{name: "nxql.query", method: http.MethodPost, url: strings.TrimRight(e.URL, "/") + "/2/query",
		form: form, target: f.ID, limiter: d.limiter(e.Name), engine: e, policy: retryReads}
	body, ne := d.doStream(ctx, call)
	if d.refusedWildcard(e, f, text, ne) {
		call.form.Set("query", strings.ReplaceAll(text, dynamicWildcard, ""))
		body, ne = d.doStream(ctx, call)
	}
	if ne != nil {
		return nil, ne
	}
	s := &rowStream{ctx: ctx, d: d, e: e, f: f, body: body, dec: json.NewDecoder(body)}
	_, s.uid = f.Unmapped[colDeviceUID]
	s.dec.UseNumber()
	if t, err := s.dec.Token(); err != nil || t != json.Delim('[') {
		s.close()
		return nil, s.broken(err)
	}
	return s, nil
}

// next reads the next row into s.row (nil at the end of the answer).
func (s *rowStream) next() error {
	s.row = nil
	if s.done {
		return nil
	}
	if !s.dec.More() {
		if _, err := s.dec.Token(); err != nil { // the closing bracket
			return s.broken(err)
		}
		s.done = true
		return nil
	}
	var raw map[string]any
	if err := s.dec.Decode(&raw); err != nil {
		return s.broken(err)
	}
	for k, v := range raw {
		raw[k] = plain(v)
	}
	s.row = s.f.ToNQL(raw)
	if s.uid {
		s.row[colDeviceUID] = s.row[colCollectorUID]
	}
	return nil
}

// broken is the error of an answer that is not the expected JSON or broke off;
// it counts toward the Engine's health.
func (s *rowStream) broken(err error) error {
	if s.ctx.Err() != nil {
		return s.d.ctxError(s.ctx, httpCall{name: "nxql.query", engine: s.e, target: s.f.ID})
	}
	if err == nil {
		err = errors.New("the answer is not a JSON array")
	}
	code, msg := nexthink.CodeBadResponse, "the answer is not the expected JSON"
	var se *json.SyntaxError
	if !errors.As(err, &se) && !errors.Is(err, io.ErrUnexpectedEOF) {
		code, msg = nexthink.CodeTransport, "the answer broke off"
	}
	s.d.failed(s.e, err)
	return s.d.err(httpCall{name: "nxql.query", engine: s.e, target: s.f.ID}, http.StatusOK, code, msg, err)
}

func (s *rowStream) close() {
	if s.body != nil {
		_ = s.body.Close()
		s.body = nil
	}
}
