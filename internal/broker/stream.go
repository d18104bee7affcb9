package broker

import (
	"context"
	"errors"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureStream creates the stream cfg describes, or updates it when a setting
// differs. A stream already as wanted is left alone, and a missing one is created,
// not updated: the ingress and every worker replica ensure their streams, often at
// the same moment, and an update racing a consumer's creation trips a data race
// inside nats-server (2.15), seen with in-process servers under -race.
//
// The replica count is the deployment's when js came from WithReplicas (a broker's
// JS does), whatever cfg says: the contract in events/ describes the stream, the
// deployment says how many copies the cluster keeps.
//
// A stream's retention cannot change to or from work-queue once it exists: such a
// stream keeps the retention it has (recreating it would lose what it holds), and
// the rest of cfg applies.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if r, ok := js.(replicated); ok {
		cfg.Replicas = r.replicas
	}
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// Creating a stream that exists with the same settings succeeds.
		s, err = js.CreateStream(ctx, cfg)
	}
	if err == nil {
		have := s.CachedInfo().Config
		if have.Retention != cfg.Retention && (have.Retention == jetstream.WorkQueuePolicy || cfg.Retention == jetstream.WorkQueuePolicy) {
			cfg.Retention = have.Retention
		}
		if sameStream(have, cfg) {
			return s, nil
		}
	}
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil, err
	}
	return js.UpdateStream(ctx, cfg)
}

// sameStream reports whether have has the settings dexbridge sets in want.
func sameStream(have, want jetstream.StreamConfig) bool {
	return have.Description == want.Description && slices.Equal(have.Subjects, want.Subjects) &&
		have.Storage == want.Storage && have.Retention == want.Retention && have.Discard == want.Discard &&
		have.MaxAge == want.MaxAge && have.MaxBytes == want.MaxBytes && have.Duplicates == want.Duplicates &&
		have.Replicas == want.Replicas
}

// replicated is a JetStream context that carries the deployment's replica count.
type replicated struct {
	jetstream.JetStream
	replicas int
}

// WithReplicas returns js carrying the replica count n (0 means 1) for the streams
// EnsureStream creates through it.
func WithReplicas(js jetstream.JetStream, n int) jetstream.JetStream {
	if n <= 0 {
		n = 1
	}
	if r, ok := js.(replicated); ok {
		js = r.JetStream
	}
	return replicated{js, n}
}
