package store

import (
	"context"
	"errors"
	"io"
	"net"
	"os"

	"github.com/jackc/pgx/v5/pgconn"
)

// connError is a failure of the connection to PostgreSQL itself: refused, reset,
// closed by the server, not answering within the connect timeout. It reports
// Unavailable, so problem.From answers it 503 with Retry-After wherever it surfaces
// (whichever query it broke, however the caller wrapped it) instead of 500; its text
// is kept for logs only.
type connError struct{ err error }

func (e *connError) Error() string     { return e.err.Error() }
func (e *connError) Unwrap() error     { return e.err }
func (e *connError) Unavailable() bool { return true }

// Timeout keeps net.Error's meaning for pgconn, which tells deadlines apart.
func (e *connError) Timeout() bool {
	var ne net.Error
	return errors.As(e.err, &ne) && ne.Timeout()
}

// Temporary is net.Error's, deprecated there; false, as net's own errors now say.
func (e *connError) Temporary() bool { return false }

// markConnErrors makes every connection of cfg (the pool's, and the leases' that
// copy it) classify its transport failures as connError: one place, below pgx,
// instead of a classification at every query.
func markConnErrors(cfg *pgconn.Config) {
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil, err
			}
			return nil, &connError{err}
		}
		return markedConn{c}, nil
	}
}

// markedConn marks the read and write errors of a connection, except the deadlines
// pgx itself sets to interrupt a query whose context ended (those are the caller's
// timeout or cancellation, not PostgreSQL's failure).
type markedConn struct{ net.Conn }

func (c markedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	return n, mark(err)
}

func (c markedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	return n, mark(err)
}

func mark(err error) error {
	switch {
	case err == nil, errors.Is(err, os.ErrDeadlineExceeded):
		return err
	case err == io.EOF:
		// The server closed the connection: mid-protocol, that is never expected.
		return &connError{io.ErrUnexpectedEOF}
	}
	return &connError{err}
}
