//go:build unix

package ingress

import (
	"bytes"
	"net"
	"sync"
	"syscall"
)

var headBuffers = sync.Pool{New: func() any { return new([4096]byte) }}

// shedNow answers c 503 and closes it, true, when its request's head is already in
// the socket's buffer (and its path is not one exempt says must be served): a read
// that does not wait, one write, the close, all in the accepting goroutine. The head
// is read before the close so that the close does not reset the answer away (closing
// a socket with unread data sends a reset); it is peeked at first, so that a request
// that is not shed is left whole for the HTTP server.
func shedNow(c net.Conn, exempt func(path string) bool) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	buf := headBuffers.Get().(*[4096]byte)
	defer headBuffers.Put(buf)
	n := 0
	if err := raw.Read(func(fd uintptr) bool {
		n, _, _ = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK)
		return true // one try: never wait for the poller
	}); err != nil || n <= 0 {
		return false
	}
	head := buf[:n]
	if !bytes.Contains(head, []byte("\r\n\r\n")) || (exempt != nil && exempt(requestPath(head))) {
		return false
	}
	_ = raw.Read(func(fd uintptr) bool {
		_, _ = syscall.Read(int(fd), buf[:n]) // what was peeked at: it is there
		return true
	})
	_, _ = c.Write(shedResponse)
	_ = c.Close()
	return true
}
