package natsrpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// BenchmarkCall is the round trip of the request path (ingress to worker and back)
// with a trivial handler, from many callers at once: natsrpc's own cost per request.
func BenchmarkCall(b *testing.B) {
	nc := testenv.NATS(b)
	subject := testenv.Prefix(b) + ".req.topics.get"
	srv, err := natsrpc.NewServer(nc, "echo", "1.0.0", "bench", 64, logging.Discard())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Stop(context.Background()) })
	err = natsrpc.Endpoint(srv, "get", subject, events.TypeTopicsGetRequest,
		func(_ context.Context, req events.TopicsGetRequest) (echoReply, error) {
			return echoReply{Topic: req.Topic}, nil
		})
	if err != nil {
		b.Fatal(err)
	}
	client := natsrpc.NewClient(nc, 5*time.Second)
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var r echoReply
			if err := client.Call(context.Background(), subject, getReq("outlook"), &r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
