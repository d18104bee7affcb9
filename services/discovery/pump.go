package discovery

import (
	"context"
	"errors"
)

// batchSize is how many rows cross from the export to the COPY at a time.
const batchSize = 512

// pump runs export, which pushes rows as the results file is decoded, and load, which
// pulls them into a COPY, at the same time: rows go to PostgreSQL as they arrive and
// at most a few batches are held in memory. When either side fails the other stops;
// the export's error wins over the COPY's, since it is the cause.
func pump[T any](ctx context.Context,
	export func(ctx context.Context, emit func(*T) error) error,
	load func(ctx context.Context, next func() (*T, error)) (int64, error),
) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []*T, 4)
	done := make(chan struct{})
	var exportErr error
	go func() {
		defer close(done)
		defer close(batches)
		batch := make([]*T, 0, batchSize)
		send := func() error {
			select {
			case batches <- batch:
				batch = make([]*T, 0, batchSize)
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		exportErr = export(ctx, func(v *T) error {
			batch = append(batch, v)
			if len(batch) == batchSize {
				return send()
			}
			return nil
		})
		if exportErr == nil && len(batch) > 0 {
			exportErr = send()
		}
	}()
	var cur []*T
	next := func() (*T, error) {
		for len(cur) == 0 {
			b, ok := <-batches
			if !ok {
				<-done
				return nil, exportErr
			}
			cur = b
		}
		v := cur[0]
		cur[0] = nil
		cur = cur[1:]
		return v, nil
	}
	n, err := load(ctx, next)
	cancel()
	<-done
	if exportErr != nil && !(err != nil && errors.Is(exportErr, context.Canceled) && ctx.Err() != nil) {
		return n, exportErr
	}
	return n, err
}
