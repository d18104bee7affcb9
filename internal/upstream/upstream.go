// Package upstream is what dexbridge's workers need from a tenant, whatever its
// product: run a saved query by id (a page of rows, or every row as they arrive),
// read a remote action's details and trigger it. Execution status is a saved
// query too (the poller's grouped one), so it goes through Execute.
//
// Two drivers implement Driver: Nexthink Infinity (package nexthink, wrapped by
// Infinity) and Nexthink V6 (package nexthinkv6: Engines over NXQL and the
// Portal's remote actions). Nothing above this interface knows which one it has;
// a third product is one more package that implements it.
//
// The vocabulary is package nexthink's: results are keyed by NQL field names
// whatever language ran, and failures are *nexthink.Error values, so
// nexthink.Problem maps every driver's errors onto the same problem codes.
package upstream

import (
	"context"
	"time"

	"github.com/dexbridge/dexbridge/internal/nexthink"
)

// Types of upstream, as the configuration names them.
const (
	TypeInfinity = "infinity"
	TypeV6       = "v6"
)

// Driver calls one configured tenant. Implementations are safe for concurrent use.
type Driver interface {
	// Instance is the configured instance's name.
	Instance() string
	// Execute runs a saved query and returns at most nexthink.MaxExecuteRows rows.
	Execute(ctx context.Context, queryID string, params map[string]string) (*nexthink.Result, error)
	// Export runs a saved query and hands over every row as it arrives.
	Export(ctx context.Context, queryID string, params map[string]string, fn func(header, record []string) error) error
	// ExportStream is Export that first says whether the result was cut short.
	ExportStream(ctx context.Context, queryID string, params map[string]string, ready func(partial bool) error,
		fn func(header, record []string) error) error
	// RemoteActions and RemoteAction read the tenant's remote-action definitions.
	RemoteActions(ctx context.Context) ([]nexthink.RemoteAction, error)
	RemoteAction(ctx context.Context, nqlID string) (*nexthink.RemoteAction, error)
	// Trigger runs a remote action on devices (collector UIDs).
	Trigger(ctx context.Context, req nexthink.TriggerRequest) (*nexthink.TriggerResponse, error)
	// WithPolicy is the same driver (shared limiters, health and caches) with
	// other patience: how long a call may wait for the rate limit, how long it
	// is retried. A value that is not positive keeps the current one.
	WithPolicy(maxWait, retryFor time.Duration) Driver
	// CloseIdleConnections releases idle keep-alive connections.
	CloseIdleConnections()
}

// Infinity is the Infinity client as a Driver.
func Infinity(c *nexthink.Client) Driver { return infinity{c} }

type infinity struct{ *nexthink.Client }

func (i infinity) WithPolicy(maxWait, retryFor time.Duration) Driver {
	return infinity{i.Client.WithPolicy(maxWait, retryFor)}
}
