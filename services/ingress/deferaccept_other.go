//go:build !linux

package ingress

import "net"

// deferAccept leaves accept as it is where TCP_DEFER_ACCEPT does not exist.
func deferAccept(net.Listener) error { return nil }
