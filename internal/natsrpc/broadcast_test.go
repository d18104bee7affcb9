package natsrpc_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestCallAllReachesEveryReplica: a broadcast endpoint is served by every replica
// (no queue group), and CallAll gathers one answer from each instance serving the
// subject, whatever its service, and none from a service of another deployment.
func TestCallAllReachesEveryReplica(t *testing.T) {
	nc := testenv.NATS(t)
	mine, other := testenv.Prefix(t)+".cmd.topics.reload", testenv.Prefix(t)+".cmd.topics.reload"
	client := natsrpc.NewClient(nc, 5*time.Second)
	req := events.TopicsReloadRequest{Header: events.NewHeader(events.TypeTopicsReloadRequest)}
	call := func() (ids []string, answered, expected int, err error) {
		answered, expected, err = client.CallAll(context.Background(), mine, req, func(raw []byte) error {
			var r events.TopicsReloadReply
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			ids = append(ids, r.Worker)
			return nil
		})
		slices.Sort(ids)
		return ids, answered, expected, err
	}
	if _, _, _, err := call(); problem.CodeOf(err) != problem.ServiceUnavailable {
		t.Fatalf("no replica: got %v, want service_unavailable", err)
	}
	var want []string
	serve := func(service, subject string) string {
		srv, err := natsrpc.NewServer(nc, service, "1.0.0", "test", 4, logging.Discard())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Stop(context.Background()) })
		id := srv.ID()
		err = natsrpc.BroadcastEndpoint(srv, "reload", subject, events.TypeTopicsReloadRequest,
			func(context.Context, events.TopicsReloadRequest) (events.TopicsReloadReply, error) {
				return events.TopicsReloadReply{Header: events.NewHeader(events.TypeTopicsReloadReply), Worker: id, Status: events.ReloadReloaded}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	want = append(want, serve("bcast", mine), serve("bcast", mine), serve("other", mine))
	serve("bcast", other)
	slices.Sort(want)
	ids, answered, expected, err := call()
	if err != nil || answered != 3 || expected != 3 || !slices.Equal(ids, want) {
		t.Errorf("got %v, %d of %d, %v; want answers from %v", ids, answered, expected, err, want)
	}
}
