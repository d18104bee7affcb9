package v6

import (
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// movedBefore is how long before its current last_seen a moved device was last
// seen by the Engine it left.
const movedBefore = 2 * 24 * time.Hour

// placement says which Engine holds each device. Devices are spread over the
// Engines by a hash of their index; a few moved: the Engine they left still
// lists them, as last seen movedBefore earlier, and the Engine they joined is
// authoritative. It is computed once and never changes.
type placement struct {
	owner []uint8       // Engine of each device
	left  map[int]uint8 // moved device -> Engine it left
}

func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func newPlacement(f *fleet.Fleet, engines int, movedShare float64, seed int64) *placement {
	p := &placement{owner: make([]uint8, f.Size()), left: map[int]uint8{}}
	scenarios := len(f.ScenarioNames())
	for i := range p.owner {
		h := mix(uint64(i) ^ uint64(seed)<<32)
		p.owner[i] = uint8(h % uint64(engines))
		if engines > 1 && i >= scenarios && float64(h>>40)/float64(1<<24) < movedShare {
			p.left[i] = uint8((int(p.owner[i]) + 1) % engines)
		}
	}
	if engines > 1 && len(p.left) == 0 && scenarios < f.Size() {
		i := scenarios
		p.left[i] = uint8((int(p.owner[i]) + 1) % engines)
	}
	return p
}

// on reports whether Engine e lists device i, and whether it is the Engine the
// device left (a stale copy).
func (p *placement) on(e, i int) (listed, stale bool) {
	if int(p.owner[i]) == e {
		return true, false
	}
	if old, ok := p.left[i]; ok && int(old) == e {
		return true, true
	}
	return false, false
}
