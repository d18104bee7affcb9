package nexthink

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/problem"
)

func TestProblemMapping(t *testing.T) {
	tests := []struct {
		err    *Error
		code   problem.Code
		retry  time.Duration
		detail string
	}{
		{&Error{Instance: "eu", Call: callExecute, Target: "#q", Status: 404}, problem.NotFound, 0, "instance eu has no saved query #q"},
		{&Error{Instance: "eu", Call: callActDetails, Target: "#a", Status: 404}, problem.NotFound, 0, "instance eu has no remote action #a"},
		{&Error{Instance: "eu", Call: callActExecute, Target: "#a", Status: 400, Code: "REMOTE_ACTION_NOT_FOUND"}, problem.NotFound, 0, "instance eu has no remote action #a"},
		{&Error{Instance: "eu", Call: callExecute, Status: 400, Message: "bad param"}, problem.Invalid, 0, "instance eu rejected the request: bad param"},
		{&Error{Instance: "eu", Call: callExecute, Code: CodeInvalid, Message: "query id x does not match"}, problem.Invalid, 0, "query id x does not match"},
		{&Error{Instance: "eu", Call: callToken, Status: 401}, problem.UpstreamUnavailable, 0, "instance eu refused dexbridge's credentials"},
		{&Error{Instance: "eu", Call: callExecute, Status: 401}, problem.UpstreamUnavailable, 0, "instance eu refused dexbridge's credentials"},
		{&Error{Instance: "eu", Call: callActList, Status: 403}, problem.UpstreamUnavailable, 0, "instance eu refused dexbridge's credentials the permission for the Remote Actions API"},
		{&Error{Instance: "eu", Call: callActExecute, Target: "#r", Status: 403, Code: "REMOTE_ACTION_NOT_API_ENABLED"}, problem.Unprocessable, 0, "remote action #r is not enabled for the API on instance eu"},
		{&Error{Instance: "eu", Call: callExecute, Status: 429, RetryAfter: 7 * time.Second}, problem.RateLimited, 7 * time.Second, "instance eu is busy, retry later"},
		{&Error{Instance: "eu", Call: callExecute, Code: CodeRateLimited, RetryAfter: 300 * time.Millisecond}, problem.RateLimited, 300 * time.Millisecond, "instance eu is busy, retry later"},
		{&Error{Instance: "eu", Call: callExecute, Status: 503, RetryAfter: time.Second}, problem.UpstreamUnavailable, time.Second, "instance eu is unavailable (nql.execute failed)"},
		{&Error{Instance: "eu", Call: callExecute, Status: 502}, problem.UpstreamUnavailable, unavailableRetry, "instance eu is unavailable (nql.execute failed)"},
		{&Error{Instance: "eu", Call: callExecute, Code: CodeTimeout}, problem.UpstreamUnavailable, unavailableRetry, "instance eu is unavailable (nql.execute failed)"},
		{&Error{Instance: "eu", Call: callExportStatus, Code: CodeExportFailed}, problem.UpstreamUnavailable, unavailableRetry, "instance eu is unavailable (nql.export.status failed)"},
		{&Error{Instance: "eu", Call: callExecute, Code: CodeCanceled, Err: context.DeadlineExceeded}, problem.Timeout, 0, "instance eu did not answer in time"},
		{&Error{Instance: "eu", Call: callExecute, Status: 406}, problem.Internal, 0, "call nql.execute to instance eu failed"},
		{&Error{Instance: "eu", Call: callExecute, Code: CodeLimiterFailed}, problem.ServiceUnavailable, time.Second, "dexbridge's rate limiter for instance eu is unavailable"},
		{&Error{Instance: "eu", Call: callExportFile, Target: "#q", Status: 403}, problem.UpstreamUnavailable, unavailableRetry, "instance eu is unavailable (nql.export.download failed)"},
		{&Error{Instance: "eu", Call: callExportStatus, Target: "#q", Status: 404}, problem.UpstreamUnavailable, unavailableRetry, "instance eu is unavailable (nql.export.status failed)"},
		{&Error{Instance: "eu", Call: callExport, Target: "#q", Status: 404}, problem.NotFound, 0, "instance eu has no saved query #q"},
	}
	for _, tt := range tests {
		p := tt.err.Problem()
		if p.Code != tt.code || p.RetryAfter != tt.retry || p.Detail != tt.detail {
			t.Errorf("%v: got %s %v %q, want %s %v %q", tt.err, p.Code, p.RetryAfter, p.Detail, tt.code, tt.retry, tt.detail)
		}
		if !errors.Is(p, tt.err) {
			t.Errorf("%v: the problem does not wrap the error", tt.err)
		}
	}
	if p := Problem(errors.New("other")); p.Code != problem.Internal {
		t.Errorf("other error: got %s, want internal", p.Code)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"0", 0},
		{"-5", 0},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.value != "" {
			h.Set("Retry-After", tt.value)
		}
		if got := retryAfter(h, now); got != tt.want {
			t.Errorf("Retry-After %q: got %v, want %v", tt.value, got, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2023, 7, 17, 17, 53, 49, 0, time.UTC)
	tests := []struct {
		in   any
		want time.Time
		ok   bool
	}{
		{"2023-07-17 17:53:49", want, true},
		{"2023-07-17T17:53:49", want, true},
		{"2023-07-17T19:53:49+02:00", want, true},
		{"2023-07-17 17:53:49.250", want.Add(250 * time.Millisecond), true},
		{want.In(time.FixedZone("x", 3600)), want, true},
		{"2023-07-17", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{int64(1689616429), time.Time{}, false},
		{nil, time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseTime(tt.in)
		if ok != tt.ok || !got.Equal(tt.want) || (ok && got.Location() != time.UTC) {
			t.Errorf("ParseTime(%#v): got %v %v, want %v %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func gzipped(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.String()
}

func TestDecodeResults(t *testing.T) {
	const csvText = "device.name,device.collector.uid\nPC-1,u1\n\"PC,2\",u2\n"
	want := [][]string{{"PC-1", "u1"}, {"PC,2", "u2"}}
	tests := []struct {
		name string
		body string
		want [][]string
		bad  bool
	}{
		{"plain", csvText, want, false},
		{"gzip", gzipped(csvText), want, false},
		{"byte order mark", "\ufeff" + csvText, want, false},
		{"empty", "", nil, false},
		{"header only", "device.name\n", nil, false},
		{"truncated gzip", gzipped(csvText)[:20], nil, true},
		{"ragged", "a,b\n1\n", nil, true},
	}
	for _, tt := range tests {
		var got [][]string
		_, err := decodeResults(strings.NewReader(tt.body), func(h, rec []string) error {
			if !slices.Equal(h, []string{"device.name", "device.collector.uid"}) {
				t.Errorf("%s: header %q", tt.name, h)
			}
			got = append(got, rec)
			return nil
		})
		if (err != nil) != tt.bad {
			t.Errorf("%s: got error %v, want error %v", tt.name, err, tt.bad)
		}
		if !tt.bad && !slices.EqualFunc(got, tt.want, slices.Equal) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	ok := Config{Instance: "eu", APIURL: "https://eu.api.eu.nexthink.cloud", TokenURL: "https://eu-login.eu.nexthink.cloud/",
		ClientID: "id", ClientSecret: "secret"}
	tests := []struct {
		name string
		mod  func(*Config)
		want string // in the error; "" for none
	}{
		{"valid", func(*Config) {}, ""},
		{"no instance", func(c *Config) { c.Instance = "" }, "instance name is empty"},
		{"relative api url", func(c *Config) { c.APIURL = "eu.api.eu.nexthink.cloud" }, "api url"},
		{"token url with user", func(c *Config) { c.TokenURL = "https://u:p@eu-login.eu.nexthink.cloud" }, "token url"},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, "client secret"},
	}
	for _, tt := range tests {
		cfg := ok
		tt.mod(&cfg)
		c, err := New(cfg)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: got %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got %v, want an error about %s", tt.name, err, tt.want)
		case tt.want == "" && c.tokens.url != "https://eu-login.eu.nexthink.cloud/oauth2/default/v1/token":
			t.Errorf("%s: token url %s", tt.name, c.tokens.url)
		}
	}
}
