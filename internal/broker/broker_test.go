package broker_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/internal/broker"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestEmbeddedStateSurvivesRestart: JetStream data written through an embedded
// server is there after the process's server restarts on the same directory.
func TestEmbeddedStateSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	open := func() *broker.Broker {
		b, err := broker.Connect(ctx, broker.Options{Listen: "127.0.0.1:0", StoreDir: dir, Name: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if !b.Embedded() || b.Ready() != nil {
			t.Fatalf("want a ready embedded broker, got embedded=%v ready=%v", b.Embedded(), b.Ready())
		}
		return b
	}
	b := open()
	_, err := b.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "DURABLE", Subjects: []string{"durable.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.JS.Publish(ctx, "durable.one", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	b.Close(ctx)

	b = open()
	defer b.Close(ctx)
	s, err := b.JS.Stream(ctx, "DURABLE")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, "durable.one")
	if err != nil || string(msg.Data) != "kept" {
		t.Fatalf("message after restart: got %v, %v; want \"kept\"", msg, err)
	}
}

func TestExternalServerIsJoined(t *testing.T) {
	ctx := context.Background()
	host, err := broker.Connect(ctx, broker.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close(ctx)
	guest, err := broker.Connect(ctx, broker.Options{URL: host.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close(ctx)
	if guest.Embedded() {
		t.Error("a broker with a URL must not start its own server")
	}
	if err := guest.Ready(); err != nil {
		t.Error(err)
	}
}

// TestEnsureStream: replicas ensuring one stream at once all get it, and a changed
// setting updates it.
func TestEnsureStream(t *testing.T) {
	js, err := jetstream.New(testenv.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	prefix := testenv.Prefix(t)
	cfg := jetstream.StreamConfig{Name: strings.ToUpper(prefix), Subjects: []string{prefix + ".evt.>"},
		Storage: jetstream.MemoryStorage, MaxAge: time.Hour}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), cfg.Name) })
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := broker.EnsureStream(context.Background(), js, cfg); err != nil {
				t.Errorf("concurrent ensure: %v", err)
			}
		})
	}
	wg.Wait()
	cfg.MaxAge = 2 * time.Hour
	s, err := broker.EnsureStream(context.Background(), js, cfg)
	if err != nil || s.CachedInfo().Config.MaxAge != 2*time.Hour {
		t.Fatalf("changed setting: got %v, %v; want max age 2h", s, err)
	}
}

// TestEnsureStreamKeepsWorkQueueRetention: a work-queue stream an earlier version
// created, and the messages it holds, stay when the contract asks for limits
// retention (the server refuses that change in place); its other settings update.
func TestEnsureStreamKeepsWorkQueueRetention(t *testing.T) {
	ctx := context.Background()
	js, err := jetstream.New(testenv.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	prefix := testenv.Prefix(t)
	cfg := jetstream.StreamConfig{Name: strings.ToUpper(prefix), Subjects: []string{prefix + ".evt.>"},
		Storage: jetstream.MemoryStorage, Retention: jetstream.WorkQueuePolicy, MaxAge: time.Hour}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), cfg.Name) })
	if _, err := broker.EnsureStream(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, prefix+".evt.one", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	cfg.Retention, cfg.MaxAge = jetstream.LimitsPolicy, 2*time.Hour
	s, err := broker.EnsureStream(ctx, js, cfg)
	if err != nil {
		t.Fatalf("ensure with limits retention: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Retention != jetstream.WorkQueuePolicy || info.Config.MaxAge != 2*time.Hour || info.State.Msgs != 1 {
		t.Errorf("got retention %v, max age %v, %d messages; want work-queue, 2h, 1", info.Config.Retention, info.Config.MaxAge, info.State.Msgs)
	}
}
