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
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	raw, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1)
	}); err != nil {
		return err
	}
	return serr
}
