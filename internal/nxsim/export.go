package nxsim

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/dexbridge/dexbridge/internal/nql"
)

// Export statuses.
const (
	exportSubmitted  = "SUBMITTED"
	exportInProgress = "IN_PROGRESS"
	exportError      = "ERROR"
	exportCompleted  = "COMPLETED"
)

// resultsFileTTL is how long a results file URL is valid.
const resultsFileTTL = 15 * time.Minute

// ExportSettings are the export knobs of a tenant (control API).
type ExportSettings struct {
	DelayMS  int  `json:"delay_ms"`  // minimum time in SUBMITTED and in IN_PROGRESS
	Fail     bool `json:"fail"`      // exports end in ERROR
	RowLimit int  `json:"row_limit"` // licence cap: more rows are cut and status answers 206; 0 none
	// FileBytesPerSecond serves results files at most that fast, as slow storage
	// would; 0 is no limit.
	FileBytesPerSecond int `json:"file_bytes_per_second"`
}

type exportJob struct {
	id, file, contentType string
	status, errDesc       string
	partial               bool
	completed             time.Time
}

// exportStore runs a tenant's exports and keeps their results files.
type exportStore struct {
	dir   string
	key   []byte
	clock func() time.Time
	ctx   context.Context
	wg    sync.WaitGroup

	mu       sync.Mutex
	jobs     map[string]*exportJob
	settings ExportSettings
}

func newExportStore(ctx context.Context, dir string, delay time.Duration, clock func() time.Time) *exportStore {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &exportStore{dir: dir, key: key, clock: clock, ctx: ctx, jobs: map[string]*exportJob{},
		settings: ExportSettings{DelayMS: int(delay / time.Millisecond)}}
}

func (s *exportStore) getSettings() ExportSettings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settings
}

func (s *exportStore) setSettings(v ExportSettings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settings = v
}

func (s *exportStore) job(id string) (exportJob, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return exportJob{}, false
	}
	return *j, true
}

func (s *exportStore) update(id string, fn func(*exportJob)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.jobs[id])
}

// wait blocks until the exports in flight end (after ctx is cancelled).
func (s *exportStore) wait() { s.wg.Wait() }

// sign returns the signature of a results file URL.
func (s *exportStore) sign(id string, expires int64) string {
	m := hmac.New(sha256.New, s.key)
	fmt.Fprintf(m, "%s|%d", id, expires)
	return hex.EncodeToString(m.Sum(nil))
}

// parseCompression accepts NONE, GZIP, ZSTD (any case) or empty.
func parseCompression(c string) (string, bool) {
	switch strings.ToUpper(c) {
	case "", "NONE":
		return "NONE", true
	case "GZIP":
		return "GZIP", true
	case "ZSTD":
		return "ZSTD", true
	}
	return "", false
}

// handleExportPost serves POST /api/v1/nql/export.
func (t *tenant) handleExportPost(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeExecute(w, r)
	if !ok {
		return
	}
	comp := ""
	if req.Compression != nil {
		comp = *req.Compression
	}
	t.startExport(w, r, *req.QueryID, req.Parameters, comp)
}

// handleExportGet serves GET /api/v1/nql/export?queryId=...&parameters={...}. The
// parameters are a JSON object in `parameters`, or else every other query parameter.
func (t *tenant) handleExportGet(w http.ResponseWriter, r *http.Request) {
	qv := r.URL.Query()
	id := qv.Get("queryId")
	if !queryIDRE.MatchString(id) {
		writeNQLError(w, http.StatusBadRequest, "queryId must match "+queryIDRE.String(), "queryId")
		return
	}
	params := map[string]string{}
	if p := qv.Get("parameters"); p != "" {
		if err := json.Unmarshal([]byte(p), &params); err != nil {
			writeNQLError(w, http.StatusBadRequest, "parameters must be a JSON object of strings", "parameters")
			return
		}
	} else {
		for k, v := range qv {
			if k != "queryId" && k != "compression" && len(v) > 0 {
				params[k] = v[0]
			}
		}
	}
	t.startExport(w, r, id, params, qv.Get("compression"))
}

func (t *tenant) startExport(w http.ResponseWriter, r *http.Request, id string, params map[string]string, compression string) {
	comp, ok := parseCompression(compression)
	if !ok {
		writeNQLError(w, http.StatusBadRequest, "compression must be NONE, GZIP or ZSTD", "compression")
		return
	}
	q, _, ok := t.prepare(w, id, params)
	if !ok {
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	exportID := hex.EncodeToString(b)
	s := t.exports
	s.mu.Lock()
	s.jobs[exportID] = &exportJob{id: exportID, status: exportSubmitted}
	settings := s.settings
	s.mu.Unlock()
	loc := t.location(r)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t.runExport(exportID, q, params, comp, loc, settings)
	}()
	writeJSON(w, http.StatusOK, map[string]string{"exportId": exportID})
}

// runExport moves an export through its states and writes its results file.
func (t *tenant) runExport(id string, q *savedQuery, params map[string]string, comp string, loc *time.Location, settings ExportSettings) {
	s := t.exports
	delay := time.Duration(settings.DelayMS) * time.Millisecond
	if !sleepCtx(s.ctx, delay) {
		return
	}
	s.update(id, func(j *exportJob) { j.status = exportInProgress })
	started := time.Now()
	fail := func(desc string, err error) {
		t.log.Warn("export failed", "export_id", id, "query_id", q.ID, "err", err)
		s.update(id, func(j *exportJob) { j.status, j.errDesc = exportError, desc })
	}
	if settings.Fail {
		fail("Export failed (injected by nxsim).", errors.New("injected failure"))
		return
	}
	// The rows stream from the query into the file: a 500 000-device export holds
	// no result in memory.
	rows, partial := 0, false
	name, ctype, err := writeResultsFile(s.dir, id, comp, q.Plan.Headers(), loc, func(emit func([]nql.Value) error) error {
		err := q.Plan.Stream(s.ctx, t.src, params, nql.RunOptions{Now: t.queryNow()}, func(row []nql.Value) error {
			if settings.RowLimit > 0 && rows >= settings.RowLimit {
				partial = true
				return errRowLimit
			}
			rows++
			return emit(row)
		})
		if errors.Is(err, errRowLimit) {
			return nil
		}
		return err
	})
	if err != nil {
		fail("Query execution failed.", err)
		return
	}
	if !sleepCtx(s.ctx, delay-time.Since(started)) {
		return
	}
	s.update(id, func(j *exportJob) {
		j.status, j.file, j.contentType, j.partial, j.completed = exportCompleted, name, ctype, partial, s.clock()
	})
	t.log.Info("export completed", "export_id", id, "query_id", q.ID, "rows", rows)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errRowLimit stops an export at the licence cap.
var errRowLimit = errors.New("row limit reached")

// writeResultsFile writes the rows produce emits as CSV (header row first) into dir,
// compressed as asked, and returns the file name and its content type.
func writeResultsFile(dir, id, comp string, headers []string, loc *time.Location, produce func(emit func([]nql.Value) error) error) (string, string, error) {
	name, ctype := id+".csv", "text/csv"
	switch comp {
	case "GZIP":
		name, ctype = id+".csv.gz", "application/gzip"
	case "ZSTD":
		name, ctype = id+".csv.zst", "application/zstd"
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return "", "", fmt.Errorf("create results file: %w", err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	var w io.Writer = bw
	var closer io.Closer
	switch comp {
	case "GZIP":
		gz := gzip.NewWriter(bw)
		w, closer = gz, gz
	case "ZSTD":
		zw, err := zstd.NewWriter(bw)
		if err != nil {
			_ = f.Close()
			return "", "", fmt.Errorf("zstd writer: %w", err)
		}
		w, closer = zw, zw
	}
	enc := newCSVEncoder(w, headers, loc)
	err = errors.Join(produce(enc.row), enc.flush())
	if closer != nil {
		err = errors.Join(err, closer.Close())
	}
	err = errors.Join(err, bw.Flush(), f.Close())
	if err != nil {
		return "", "", fmt.Errorf("write results file: %w", err)
	}
	return name, ctype, nil
}

// handleExportStatus serves GET /api/v1/nql/status/{exportId}.
func (t *tenant) handleExportStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("exportId")
	j, ok := t.exports.job(id)
	if !ok {
		writeNQLError(w, http.StatusNotFound, "No export associated with that ID.", id)
		return
	}
	body := map[string]any{"status": j.status}
	status := http.StatusOK
	switch j.status {
	case exportError:
		body["errorDescription"] = j.errDesc
	case exportCompleted:
		expires := j.completed.Add(resultsFileTTL).Unix()
		u := url.URL{Scheme: "http", Host: r.Host, Path: "/tenants/" + t.name + "/_files/exports/" + j.file}
		u.RawQuery = url.Values{"expires": {strconv.FormatInt(expires, 10)}, "signature": {t.exports.sign(j.id, expires)}}.Encode()
		body["resultsFileUrl"] = u.String()
		if j.partial {
			status = http.StatusPartialContent
		}
	}
	writeJSON(w, status, body)
}

// handleResultsFile serves a results file: no bearer token, a signed URL valid 15
// minutes (like a pre-signed S3 URL; an expired or bad signature gets S3's 403).
func (t *tenant) handleResultsFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	id, _, _ := strings.Cut(name, ".")
	expires, err := strconv.ParseInt(r.URL.Query().Get("expires"), 10, 64)
	j, ok := t.exports.job(id)
	denied := func(msg string) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>%s</Message></Error>\n", msg)
	}
	if err != nil || !ok || j.file != name || !hmac.Equal([]byte(t.exports.sign(id, expires)), []byte(r.URL.Query().Get("signature"))) {
		denied("Access Denied")
		return
	}
	if !t.clock().Before(time.Unix(expires, 0)) {
		denied("Request has expired")
		return
	}
	f, err := os.Open(filepath.Join(t.exports.dir, name))
	if err != nil {
		denied("Access Denied")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "stat results file", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", j.contentType)
	if rate := t.exports.getSettings().FileBytesPerSecond; rate > 0 {
		w = &throttledWriter{ResponseWriter: w, ctx: r.Context(), rate: rate}
	}
	http.ServeContent(w, r, name, st.ModTime(), f)
}

// throttledWriter sends a body at most rate bytes a second, in small flushed pieces.
type throttledWriter struct {
	http.ResponseWriter
	ctx  context.Context
	rate int
}

func (tw *throttledWriter) Write(p []byte) (int, error) {
	piece := min(4<<10, max(tw.rate/16, 256))
	n := 0
	for len(p) > 0 {
		k := min(len(p), piece)
		m, err := tw.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		_ = http.NewResponseController(tw.ResponseWriter).Flush()
		if !sleepCtx(tw.ctx, time.Duration(k)*time.Second/time.Duration(tw.rate)) {
			return n, tw.ctx.Err()
		}
		p = p[k:]
	}
	return n, nil
}
