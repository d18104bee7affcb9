package app

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/dexbridge/dexbridge/events"
)

// reloader is a service that reloads its definitions on SIGHUP (the topics worker).
type reloader interface {
	Reload(by string) events.TopicsReloadReply
}

// reloadOnHangup reloads every service of rs that can reload each time the process
// gets SIGHUP, until the returned stop is called. A refused set is logged by the
// service; the previous one stays in force.
func reloadOnHangup(rs []namedRunner, log *slog.Logger) (stop func()) {
	var targets []reloader
	for _, nr := range rs {
		if r, ok := nr.r.(reloader); ok {
			targets = append(targets, r)
		}
	}
	if len(targets) == 0 {
		return func() {}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-hup:
				log.Info("reloading on SIGHUP")
				for _, r := range targets {
					r.Reload("signal")
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}
