//go:build !unix

package ingress

import "net"

// setBacklog keeps the system's backlog where listen(2) cannot be called again.
func setBacklog(net.Listener, int) error { return nil }
