package nxsim

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// SampledDevice is one device of GET /_nxsim/devices: what a test needs to meet an
// ordinary fleet device as a user would (its name, platform, presence and employee).
type SampledDevice struct {
	Name         string    `json:"name"`
	CollectorUID string    `json:"collector_uid"`
	Platform     string    `json:"platform"`
	Presence     string    `json:"presence"` // online, offline or long_unseen
	LastSeen     time.Time `json:"last_seen"`
	User         string    `json:"user"` // the device's most recent user
	UserUPN      string    `json:"user_upn"`
	UserSID      string    `json:"user_sid"`
	UserFullName string    `json:"user_full_name"`
}

// handleSampleDevices answers GET /_nxsim/devices?n=&seed=&platform=&presence=&scenarios=:
// up to n (default 10, at most 1000) devices drawn with a generator seeded by seed
// (default 1), so a test's choice is random but reproducible.
func (t *tenant) handleSampleDevices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	num := func(name string, def, hi int64) (int64, bool) {
		s := q.Get(name)
		if s == "" {
			return def, true
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 || v > hi {
			writeJSON(w, http.StatusBadRequest, controlError{Error: name + " must be an integer from 0 to " + strconv.FormatInt(hi, 10)})
			return 0, false
		}
		return v, true
	}
	n, ok := num("n", 10, 1000)
	if !ok {
		return
	}
	seed, ok := num("seed", 1, 1<<62)
	if !ok {
		return
	}
	filter := fleet.SampleFilter{Platform: q.Get("platform"), Presence: q.Get("presence"), IncludeScenarios: q.Get("scenarios") == "include"}
	switch filter.Platform {
	case "", "Windows", "macOS":
	default:
		writeJSON(w, http.StatusBadRequest, controlError{Error: "platform must be Windows or macOS"})
		return
	}
	switch filter.Presence {
	case "", fleet.PresenceOnline, fleet.PresenceOffline, fleet.PresenceLongUnseen:
	default:
		writeJSON(w, http.StatusBadRequest, controlError{Error: "presence must be online, offline or long_unseen"})
		return
	}
	devs := t.fleet.Sample(rand.New(rand.NewPCG(uint64(seed), 0x6e7873696d)), int(n), filter)
	out := make([]SampledDevice, len(devs))
	for k, d := range devs {
		u := t.fleet.UserOf(t.fleet.PrimaryUser(d.Index))
		out[k] = SampledDevice{Name: d.Name, CollectorUID: d.CollectorUID, Platform: d.Platform, Presence: t.fleet.Presence(d),
			LastSeen: d.LastSeen.UTC(), User: u.Name, UserUPN: u.UPN, UserSID: u.SID, UserFullName: u.FullName}
	}
	writeJSON(w, http.StatusOK, out)
}
