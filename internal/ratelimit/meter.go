package ratelimit

import (
	"math"
	"time"
)

// meterTau is the memory of a meter: events older than a few seconds hardly count.
const meterTau = time.Second

// meter estimates a rate in events per second: an exponentially weighted moving
// average with time constant meterTau, corrected for its youth so that a meter a
// tenth of meterTau old does not read ten times too low. Not safe for concurrent use.
type meter struct {
	v     float64   // decayed sum of events, divided by meterTau
	at    time.Time // when v was last decayed
	since time.Time // the first event
}

func (m *meter) add(now time.Time, n float64) {
	if m.since.IsZero() {
		m.since, m.at = now, now
	}
	m.v = m.decayed(now) + n/meterTau.Seconds()
	if now.After(m.at) {
		m.at = now
	}
}

func (m *meter) decayed(now time.Time) float64 {
	if dt := now.Sub(m.at); dt > 0 {
		return m.v * math.Exp(-dt.Seconds()/meterTau.Seconds())
	}
	return m.v
}

// rate is the estimate at now.
func (m *meter) rate(now time.Time) float64 {
	if m.since.IsZero() {
		return 0
	}
	// An average over less than its memory weighs only 1-e^(-age/tau) of a full one;
	// the first tenth of a memory counts as a tenth, so one event is not a flood.
	age := max(now.Sub(m.since), meterTau/10)
	return m.decayed(now) / (1 - math.Exp(-age.Seconds()/meterTau.Seconds()))
}
