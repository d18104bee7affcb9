package fleet

// splitmix64 finalizer: a bijective 64-bit mix used to derive every random-looking
// value of the fleet from (seed, device index, salt), so nothing random is stored.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hash derives a 64-bit value from a seed and any number of parts.
func hash(seed uint64, parts ...uint64) uint64 {
	h := mix64(seed + 0x9e3779b97f4a7c15)
	for _, p := range parts {
		h = mix64(h ^ (p + 0x9e3779b97f4a7c15))
	}
	return h
}

// rng is a small deterministic generator (splitmix64) for one device's draws.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

// intn returns a value in [0, n).
func (r *rng) intn(n int) int {
	if n <= 1 {
		return 0
	}
	return int(r.next() % uint64(n))
}

// between returns a value in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

// chance reports true with probability p.
func (r *rng) chance(p float64) bool {
	return float64(r.next()>>11)/float64(1<<53) < p
}

// float returns a value in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / float64(1<<53) }

// permute32 is a bijection of uint32 (odd multiplier and xor-shifts are invertible);
// unpermute32 is its inverse. Collector UIDs carry the permuted device index so a UID
// resolves to its device without an index map.
func permute32(x, key uint32) uint32 {
	x ^= key
	x *= 0x9e3779b1
	x ^= x >> 16
	x *= 0x85ebca6b
	x ^= x >> 13
	return x
}

func unpermute32(x, key uint32) uint32 {
	x = unxorshift(x, 13)
	x *= inverse32(0x85ebca6b)
	x = unxorshift(x, 16)
	x *= inverse32(0x9e3779b1)
	return x ^ key
}

func unxorshift(x uint32, s uint) uint32 {
	y := x
	for k := s; k < 32; k += s {
		y = x ^ (y >> s)
	}
	return y
}

// inverse32 is the multiplicative inverse of an odd a modulo 2^32 (Newton's method).
func inverse32(a uint32) uint32 {
	x := a
	for range 5 {
		x *= 2 - a*x
	}
	return x
}
