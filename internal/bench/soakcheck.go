package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// soakSample is one reading of the dexbridge process during the soak.
type soakSample struct {
	at         time.Duration // since the load started
	goroutines float64       // go_goroutines
	rss        float64       // process_resident_memory_bytes
	heap       float64       // go_memstats_heap_inuse_bytes (shown, not judged: it saws with each GC)
	answered   int           // requests answered so far
}

// growthLimit is how much a measure may grow from the first third of the soak (after
// the warm-up) to the last: by ratio of the first third's median, plus abs.
type growthLimit struct {
	name   string
	value  func(soakSample) float64
	ratio  float64
	abs    float64
	format func(float64) string
}

// soakLimits are the slack the soak allows: enough for the in-flight requests and
// connections of an open-loop load and for the Go heap settling, far less than a
// leak of a goroutine or a few kilobytes per request would grow in minutes.
func soakLimits() []growthLimit {
	return []growthLimit{
		{name: "goroutines", value: func(s soakSample) float64 { return s.goroutines }, ratio: 0.20, abs: 30,
			format: func(v float64) string { return fmt.Sprintf("%.0f", v) }},
		{name: "RSS", value: func(s soakSample) float64 { return s.rss }, ratio: 0.20, abs: 24 << 20,
			format: func(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }},
	}
}

// growthVerdict compares the medians of the first and last thirds of the samples
// taken after warmup.
type growthVerdict struct {
	first, last, limit float64
	grew               bool
}

// growth judges one measure; it needs at least six samples after the warm-up.
func growth(samples []soakSample, warmup time.Duration, lim growthLimit) (growthVerdict, error) {
	var vals []float64
	for _, s := range samples {
		if s.at >= warmup {
			vals = append(vals, lim.value(s))
		}
	}
	if len(vals) < 6 {
		return growthVerdict{}, fmt.Errorf("%d samples after the %s warm-up: want at least 6 (a longer soak or a shorter interval)", len(vals), warmup)
	}
	third := len(vals) / 3
	v := growthVerdict{first: median(vals[:third]), last: median(vals[len(vals)-third:])}
	v.limit = v.first*(1+lim.ratio) + lim.abs
	v.grew = v.last > v.limit
	return v, nil
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// scrapeProcess reads go_goroutines, process_resident_memory_bytes and
// go_memstats_heap_inuse_bytes from a Prometheus text exposition.
func scrapeProcess(ctx context.Context, client *http.Client, url string) (soakSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return soakSample{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return soakSample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return soakSample{}, fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return parseProcessMetrics(resp.Body)
}

func parseProcessMetrics(r io.Reader) (soakSample, error) {
	want := map[string]bool{"go_goroutines": true, "process_resident_memory_bytes": true, "go_memstats_heap_inuse_bytes": true}
	found := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return soakSample{}, fmt.Errorf("metric %s: %w", name, err)
		}
		found[name] = f
	}
	if err := sc.Err(); err != nil {
		return soakSample{}, err
	}
	g, okG := found["go_goroutines"]
	m, okM := found["process_resident_memory_bytes"]
	if !okG || !okM {
		return soakSample{}, fmt.Errorf("metrics: go_goroutines or process_resident_memory_bytes missing")
	}
	return soakSample{goroutines: g, rss: m, heap: found["go_memstats_heap_inuse_bytes"]}, nil
}
