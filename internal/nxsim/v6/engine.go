package v6

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxql"
)

// Faults are one Engine's failure knobs (PUT /_nxsim/engines/{name}/faults).
type Faults struct {
	// Down closes every connection without an answer, and the Portal lists the
	// Engine as DISCONNECTED.
	Down bool `json:"down"`
	// LatencyMS is added to every call: a slow Engine.
	LatencyMS int `json:"latency_ms"`
	// RefuseStatus answers every call with this status (429, 500 or 503): an
	// Engine that refuses work. 429 and 503 carry Retry-After.
	RefuseStatus      int `json:"refuse_status"`
	RetryAfterSeconds int `json:"retry_after_seconds"`
}

func (f Faults) validate() error {
	switch f.RefuseStatus {
	case 0, 429, 500, 503:
	default:
		return fmt.Errorf("refuse_status %d: want 0, 429, 500 or 503", f.RefuseStatus)
	}
	if f.LatencyMS < 0 || f.RetryAfterSeconds < 0 {
		return errors.New("latency_ms and retry_after_seconds: want 0 or more")
	}
	return nil
}

// engine is one emulated Engine.
type engine struct {
	name   string
	uid    string // the Engine's database UID, for engineDatabaseUids
	index  int
	src    *engineSource
	schema *nxql.Schema
	srv    *Server

	mu      sync.Mutex
	faults  Faults
	queries int // NXQL queries answered 200
	calls   int // calls received, any outcome
	port    int
}

func (e *engine) getFaults() Faults {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.faults
}

// routes: /2/query and nothing else; the control API lives on the Portal.
func (e *engine) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/2/query", e.handleQuery)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeHTMLError(w, http.StatusNotFound, "Not found: "+r.URL.Path, nil)
	})
	return e.faulty(mux)
}

// faulty applies the Engine's faults, then Basic authentication.
func (e *engine) faulty(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.calls++
		e.mu.Unlock()
		f := e.getFaults()
		if f.Down {
			dropConnection(w)
			return
		}
		if !sleep(r.Context(), time.Duration(f.LatencyMS)*time.Millisecond) {
			return
		}
		if f.RefuseStatus != 0 {
			if f.RefuseStatus != http.StatusInternalServerError {
				w.Header().Set("Retry-After", strconv.Itoa(max(f.RetryAfterSeconds, 1)))
			}
			writeHTMLError(w, f.RefuseStatus, "The Engine refused the request: "+http.StatusText(f.RefuseStatus)+" (injected by nxsim).", nil)
			return
		}
		if !e.srv.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="Nexthink Engine"`)
			writeHTMLError(w, http.StatusUnauthorized, "Authentication required.", nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}

// sleep waits d, or until the client gives up (false).
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

var platforms = map[string]bool{"windows": true, "mac_os": true, "mobile": true}

// handleQuery serves GET|POST /2/query: query, platform (repeated), format
// (json or csv), p1, p2, ... in the URL or, for POST, a form body.
func (e *engine) handleQuery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeHTMLError(w, http.StatusMethodNotAllowed, "Use GET or POST.", nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeHTMLError(w, http.StatusBadRequest, "Unreadable request: "+err.Error(), nil)
		return
	}
	text := r.Form.Get("query")
	if strings.TrimSpace(text) == "" {
		writeHTMLError(w, http.StatusBadRequest, "Missing parameter: query.", nil)
		return
	}
	format := strings.ToLower(r.Form.Get("format"))
	switch format {
	case "":
		format = "json"
	case "json", "csv":
	case "xml", "html":
		writeHTMLError(w, http.StatusBadRequest, "Format "+format+" is not supported by nxsim: use json or csv.", []string{"json", "csv"})
		return
	default:
		writeHTMLError(w, http.StatusBadRequest, "Unknown format: "+format+".", []string{"csv", "html", "json", "xml"})
		return
	}
	plats := r.Form["platform"]
	if len(plats) == 0 {
		plats = []string{"windows"}
	}
	for _, p := range plats {
		if !platforms[p] {
			writeHTMLError(w, http.StatusBadRequest, "Unknown platform: "+p+".", []string{"windows", "mac_os", "mobile"})
			return
		}
	}
	var params []string
	for k := 1; ; k++ {
		v, ok := r.Form["p"+strconv.Itoa(k)]
		if !ok {
			break
		}
		params = append(params, v[0])
	}
	q, err := nxql.Compile(nxql.Substitute(text, params), e.schema)
	if err != nil {
		var ne *nxql.Error
		if errors.As(err, &ne) {
			writeHTMLError(w, http.StatusBadRequest, ne.Error(), ne.Options)
			return
		}
		writeHTMLError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.srv.cfg.QueryTimeout)
	defer cancel()
	res, err := q.Run(ctx, e.src, nxql.RunOptions{Now: e.srv.cfg.Clock(), Platforms: plats})
	if err != nil {
		if r.Context().Err() != nil {
			return // the client left
		}
		writeHTMLError(w, http.StatusInternalServerError, "The query did not complete: "+err.Error(), nil)
		return
	}
	e.mu.Lock()
	e.queries++
	e.mu.Unlock()
	if format == "csv" {
		writeCSV(w, res)
		return
	}
	writeJSONRows(w, res)
}

// writeJSONRows writes the rows as an array of objects whose keys keep the
// select order.
func writeJSONRows(w http.ResponseWriter, res *nxql.Result) {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, row := range res.Rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('{')
		for k, c := range res.Columns {
			if k > 0 {
				b.WriteByte(',')
			}
			key, _ := json.Marshal(c)
			val, err := json.Marshal(nxql.FormatValue(row[k]))
			if err != nil {
				val = []byte("null")
			}
			b.Write(key)
			b.WriteByte(':')
			b.Write(val)
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

func writeCSV(w http.ResponseWriter, res *nxql.Result) {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	_ = cw.Write(res.Columns)
	rec := make([]string, len(res.Columns))
	for _, row := range res.Rows {
		for k, v := range row {
			switch x := nxql.FormatValue(v).(type) {
			case nil:
				rec[k] = ""
			case float64:
				rec[k] = strconv.FormatFloat(x, 'f', -1, 64)
			default:
				rec[k] = fmt.Sprint(x)
			}
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, &b)
}

// writeHTMLError answers as an Engine does: an HTML page whose element
// error_message says what went wrong and whose list error_options names the
// accepted alternatives.
func writeHTMLError(w http.ResponseWriter, status int, msg string, options []string) {
	var b strings.Builder
	b.WriteString("<html><head><title>NXQL error</title></head><body>\n")
	b.WriteString(`<p id="error_message">` + html.EscapeString(msg) + "</p>\n")
	if len(options) > 0 {
		b.WriteString(`<ul id="error_options">`)
		for _, o := range options {
			b.WriteString("<li>" + html.EscapeString(o) + "</li>")
		}
		b.WriteString("</ul>\n")
	}
	b.WriteString("</body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, b.String())
}

// constantTimeEqual compares credentials in time that does not depend on where they differ.
func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
