package natsrpc

import (
	"context"
	"fmt"
	"sync"
)

// Pool runs at most n functions at once; Go blocks while the pool is full, which
// pushes back on the NATS subscription instead of queueing without bound.
type Pool struct {
	sem chan struct{}
	wg  sync.WaitGroup
}

// NewPool returns a pool of n slots (at least one).
func NewPool(n int) *Pool {
	return &Pool{sem: make(chan struct{}, max(n, 1))}
}

// Go runs f in its own goroutine once a slot is free.
func (p *Pool) Go(f func()) {
	p.sem <- struct{}{}
	p.wg.Add(1)
	go func() {
		defer func() { <-p.sem; p.wg.Done() }()
		f()
	}()
}

// Wait returns when every function has returned, or with an error when ctx ends first.
func (p *Pool) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d requests still running: %w", len(p.sem), ctx.Err())
	}
}
