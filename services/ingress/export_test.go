package ingress_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apitest"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/ingress"
)

// TestExportPassesTheStreamOnAndBreaksOffWithIt: the ingress copies an export's
// stream to the client as it comes, with the start's headers and the end's row count
// as trailer; a stream that fails after its start breaks the response off (the client
// sees an unexpected end, no trailer), and one that fails before is a problem.
func TestExportPassesTheStreamOnAndBreaksOffWithIt(t *testing.T) {
	nc := testenv.NATS(t)
	db := store.New(testenv.Postgres(t))
	subjects := events.NewSubjects(testenv.Prefix(t))
	srv, err := natsrpc.NewServer(nc, "fake-topics", "1.0.0", "test", 4, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	err = natsrpc.StreamEndpoint(srv, "nql_export", subjects.Of(events.NQLExport), events.TypeNQLExportRequest, 4,
		func(_ context.Context, req events.NQLExportRequest, w *natsrpc.StreamWriter) (any, error) {
			if req.QueryID == "#refused" {
				return nil, problem.New(problem.UpstreamUnavailable, "the tenant is down").Retry(5 * time.Second)
			}
			if err := w.Start(events.NQLExportStarted{Header: events.NewHeader(events.TypeNQLExportStarted), QueryID: req.QueryID,
				Headers: []string{"device.name"}, Instance: "eu", Format: req.Format, ContentType: "application/x-ndjson",
				DataAsOf: time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC), Truncated: req.QueryID == "#cut"}); err != nil {
				return nil, err
			}
			if _, err := w.Write([]byte(`{"device.name":"PC-1"}` + "\n" + `{"device.name":"PC-2"}` + "\n")); err != nil {
				return nil, err
			}
			if req.QueryID == "#broken" {
				return nil, problem.New(problem.UpstreamUnavailable, "the results file broke off")
			}
			return events.NQLExportFinished{Header: events.NewHeader(events.TypeNQLExportFinished), Rows: 2, Truncated: req.QueryID == "#cut"}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	h := apitest.New(t).Handler(t, ingress.NewHandler(ingress.Options{
		RPC: natsrpc.NewClient(nc, 5*time.Second), Keys: auth.NewKeys(db), Credentials: auth.NewCredentials(nil),
		Limiters: ratelimit.NewShared(db), Subjects: subjects, Log: logging.Discard(),
	}))
	web := httptest.NewServer(h)
	t.Cleanup(web.Close)
	key := apitest.Key(t, db, "bot", "diagnose")
	post := func(query string) (*http.Response, string, error) {
		req, _ := http.NewRequest(http.MethodPost, web.URL+"/api/v1/nql/"+query+"/export", strings.NewReader(`{"format":"ndjson"}`))
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := web.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, string(body), err
	}

	for _, q := range []string{"whole", "cut"} {
		resp, body, err := post(q)
		if err != nil || resp.StatusCode != 200 || body != `{"device.name":"PC-1"}`+"\n"+`{"device.name":"PC-2"}`+"\n" {
			t.Fatalf("%s: got %d %q %v", q, resp.StatusCode, body, err)
		}
		want := map[string]string{"Content-Type": "application/x-ndjson", "Dexbridge-Instance": "eu",
			"Dexbridge-Data-As-Of": "2026-05-04T09:00:00Z", "Dexbridge-Truncated": map[string]string{"whole": "false", "cut": "true"}[q]}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: header %s %q, want %q", q, k, got, v)
			}
		}
		if got := resp.Trailer.Get("Dexbridge-Rows"); got != "2" {
			t.Errorf("%s: trailer Dexbridge-Rows %q, want 2", q, got)
		}
	}

	resp, body, err := post("broken")
	if resp.StatusCode != 200 || err == nil || resp.Trailer.Get("Dexbridge-Rows") != "" {
		t.Errorf("broken stream: got %d, %q, read error %v, trailer %v; want the body cut off with an error", resp.StatusCode, body, err, resp.Trailer)
	}

	resp, body, _ = post("refused")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" ||
		!strings.Contains(body, `"code":"upstream_unavailable"`) {
		t.Errorf("refused: got %d %q (Retry-After %q), want a 503 problem", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}
