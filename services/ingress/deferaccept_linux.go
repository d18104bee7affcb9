package ingress

import (
	"net"
	"syscall"
)

// deferAccept asks the kernel to hand over a connection only once its first data
// (an HTTP request, a TLS hello) has arrived, for up to a second: the listener then
// finds the request there when it must refuse one before parsing it (shedNow), and a
// connection that sends nothing costs no goroutine until then.
func deferAccept(ln net.Listener) error {
	return onListenerFD(ln, func(fd int) error {
		return syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1)
	})
}
