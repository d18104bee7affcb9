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
