//go:build unix

package ingress

import (
	"net"
	"syscall"
)

// setBacklog bounds the kernel's queue of connections not yet accepted. That queue
// is first come first served and invisible to admission control: a connection waits
// there the queue's length over the accept rate, and by default (somaxconn, often
// 4096) that is seconds under a storm, after which the process serves clients long
// gone. A short queue keeps the connections it accepts fresh; beyond it the kernel
// drops a connection's handshake and the client retries it, at no cost here.
func setBacklog(ln net.Listener, n int) error {
	// listen(2) on a listening socket only changes its backlog.
	return onListenerFD(ln, func(fd int) error { return syscall.Listen(fd, n) })
}

// onListenerFD runs f on a TCP listener's socket; other listeners are left alone.
func onListenerFD(ln net.Listener, f func(fd int) error) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	raw, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
