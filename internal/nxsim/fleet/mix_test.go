package fleet

import "testing"

func TestPermute32RoundTrip(t *testing.T) {
	for _, key := range []uint32{0, 1, 0xdeadbeef} {
		for _, x := range []uint32{0, 1, 2, 12, 499_999, 1 << 31, 0xffffffff} {
			p := permute32(x, key)
			if got := unpermute32(p, key); got != x {
				t.Errorf("unpermute32(permute32(%d, %#x)): got %d, want %d", x, key, got, x)
			}
		}
	}
}
