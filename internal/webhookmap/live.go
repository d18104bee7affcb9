package webhookmap

import (
	"bytes"
	"crypto/sha256"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Live is the rules of a file that may change while dexbridge runs. Current checks
// the file at most once per interval, on the caller's goroutine (no watcher to own):
// when its content changed, it is loaded again; a bad file is refused, logged, and
// the previous good rules stay in force.
type Live struct {
	path     string
	getenv   func(string) string
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time
	check    func(*Rules) error // an extra check of each version (topics exist)
	cur      atomic.Pointer[Rules]
	next     atomic.Int64 // unix nanoseconds of the next check
	mu       sync.Mutex   // one reload at a time
	sum      [sha256.Size]byte
	rejected [sha256.Size]byte
}

// OpenLive loads path; a bad file is an error, as at start-up nothing else is in force.
// check, when not nil, is an extra check every loaded version must pass (topics).
func OpenLive(path string, getenv func(string) string, check func(*Rules) error, log *slog.Logger) (*Live, error) {
	l := &Live{path: path, getenv: getenv, log: log, interval: 2 * time.Second, now: time.Now, check: check}
	raw, r, err := l.load()
	if err != nil {
		return nil, err
	}
	l.cur.Store(r)
	l.sum = sha256.Sum256(raw)
	l.next.Store(l.now().Add(l.interval).UnixNano())
	for _, s := range r.Sources() {
		if s.Disabled != "" {
			log.Warn("webhook source disabled", "source", s.Name, "reason", s.Disabled)
		}
	}
	return l, nil
}

// Static wraps fixed rules (tests, `dexbridge check`).
func Static(r *Rules) *Live {
	l := &Live{}
	l.cur.Store(r)
	l.next.Store(1<<63 - 1)
	return l
}

// SetInterval changes how often the file is checked (tests use a short one).
func (l *Live) SetInterval(d time.Duration) {
	l.interval = d
	l.next.Store(l.now().Add(d).UnixNano())
}

func (l *Live) load() ([]byte, *Rules, error) {
	raw, err := os.ReadFile(l.path)
	if err != nil {
		return nil, nil, err
	}
	r, err := Load(l.path, l.getenv)
	if err == nil && l.check != nil {
		err = l.check(r)
	}
	return raw, r, err
}

// Current returns the rules in force.
func (l *Live) Current() *Rules {
	if l.path != "" && l.now().UnixNano() >= l.next.Load() && l.mu.TryLock() {
		l.refresh()
		l.mu.Unlock()
	}
	return l.cur.Load()
}

func (l *Live) refresh() {
	l.next.Store(l.now().Add(l.interval).UnixNano())
	raw, err := os.ReadFile(l.path)
	if err != nil {
		l.log.Error("webhook rules unreadable, keeping the previous ones", "file", l.path, "err", err)
		return
	}
	sum := sha256.Sum256(raw)
	if bytes.Equal(sum[:], l.sum[:]) || bytes.Equal(sum[:], l.rejected[:]) {
		return
	}
	_, r, err := l.load()
	if err != nil {
		l.rejected = sum
		l.log.Error("webhook rules refused, keeping the previous ones", "file", l.path, "err", err)
		return
	}
	l.sum = sum
	l.cur.Store(r)
	l.log.Info("webhook rules reloaded", "file", l.path, "sources", len(r.Sources()))
}
