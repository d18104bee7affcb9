package app

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/netguard"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
	"github.com/dexbridge/dexbridge/services/ingress"
	"github.com/dexbridge/dexbridge/services/proactive"
	"github.com/dexbridge/dexbridge/services/webhooks"
)

// webhookRules loads the webhook sources and mapping rules, reloaded when the file
// changes. The default file missing (a process started away from the repository)
// disables webhooks with a warning; a file named explicitly must exist. Every version
// must bind its sources to configured instances; check, when set, is an extra check
// (the topics exist).
func webhookRules(d *deps, check func(*webhookmap.Rules) error) (*webhookmap.Live, error) {
	path := d.cfg.Webhooks.File
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && path == config.Default().Webhooks.File {
		d.log.Warn("webhooks disabled: no rules file", "file", path)
		return webhookmap.Static(&webhookmap.Rules{}), nil
	}
	names := d.cfg.InstanceNames()
	checks := func(r *webhookmap.Rules) error {
		if err := r.CheckInstances(names); err != nil || check == nil {
			return err
		}
		return check(r)
	}
	// Source secrets come from the process environment, as the configuration's do.
	return webhookmap.OpenLive(path, os.Getenv, checks, d.log)
}

// webhookReceiver is the ingress's half of the webhooks.
func webhookReceiver(d *deps) (*ingress.WebhookReceiver, error) {
	rules, err := webhookRules(d, nil)
	if err != nil {
		return nil, err
	}
	return ingress.NewWebhookReceiver(ingress.WebhookReceiverOptions{
		JS: d.bus.JS, Subjects: d.subjects, Rules: rules, Ledger: store.New(d.db),
		WebhookConfig: ingress.ConfigFrom(d.cfg).Webhooks, Metrics: d.metrics, Log: d.log.With("service", "ingress"),
	}), nil
}

// proactiveSubscriptions serves the chatbots' subscriptions from the ingress, under
// the same URL policy as the dispatcher's deliveries.
func proactiveSubscriptions(d *deps) (*ingress.Subscriptions, error) {
	p := d.cfg.Proactive.Subscriptions
	policy, err := netguard.NewPolicy(p.AllowHTTP, p.AllowedNetworks)
	if err != nil {
		return nil, err
	}
	var instances []string
	for _, in := range d.cfg.Instances {
		instances = append(instances, in.Name)
	}
	return ingress.NewSubscriptions(ingress.SubscriptionsOptions{DB: store.New(d.db), Policy: policy, Instances: instances, Max: p.Max}), nil
}

// proactiveFeed serves the proactive events from the ingress (pull and streams).
func proactiveFeed(d *deps) *ingress.ProactiveFeed {
	return ingress.NewProactiveFeed(ingress.ProactiveFeedOptions{
		DB: store.New(d.db), Conn: d.bus.Conn, Subjects: d.subjects, FeedConfig: ingress.ConfigFrom(d.cfg).Feed,
		Metrics: d.metrics, Log: d.log.With("service", "ingress"),
	})
}

func buildWebhooks(d *deps) (Runner, error) {
	set, err := topic.FilesOf(d.cfg).Load()
	if err != nil {
		return nil, err
	}
	cat := set.Catalog()
	rules, err := webhookRules(d, func(r *webhookmap.Rules) error { return r.CheckTopics(cat) })
	if err != nil {
		return nil, err
	}
	db := store.New(d.db)
	// The configured callback is a subscription: have it before the first event is
	// enqueued, whichever of this worker and the dispatcher starts first. Only the
	// dispatcher removes it.
	if u := d.cfg.Proactive.CallbackURL; u != "" {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.RequestTimeout.D())
		defer cancel()
		if err := db.EnsureConfigSubscription(ctx, u); err != nil {
			return nil, err
		}
	}
	return webhooks.NewWorker(webhooks.Options{
		Conn: d.bus.Conn, JS: d.bus.JS, Subjects: d.subjects, DB: db, Rules: rules,
		Resolver: webhooks.CacheResolver{DB: db}, Diagnoser: webhookDiagnoser(d), Topics: cat, Actions: set.Allowlist(),
		Callback: true, Config: webhooks.ConfigFrom(d.cfg),
		Metrics: d.metrics, Log: d.log.With("service", "webhooks"),
	}), nil
}

// webhookDiagnoser is the topic diagnosis the webhooks worker runs before recording
// a proactive event, so the chatbot opens the conversation knowing the findings and
// remediations: it asks a topics worker over NATS (req.topics.diagnose).
func webhookDiagnoser(d *deps) webhooks.Diagnoser {
	return natsDiagnoser{rpc: d.rpc, subjects: d.subjects}
}

// natsDiagnoser asks the topics service for a diagnosis.
type natsDiagnoser struct {
	rpc      *natsrpc.Client
	subjects events.Subjects
}

// Diagnose implements webhooks.Diagnoser: the device by its collector UID when the
// cache gave it, else by name.
func (n natsDiagnoser) Diagnose(ctx context.Context, topic string, device webhooks.Device) (*events.Diagnosis, error) {
	target := device.CollectorUID
	if target == "" {
		target = device.Name
	}
	req := events.DiagnoseRequest{Header: events.NewHeader(events.TypeDiagnoseRequest), Topic: topic, Device: target}
	var reply events.DiagnoseReply
	if err := n.rpc.Call(ctx, n.subjects.Of(events.TopicsDiagnose), req, &reply, natsrpc.Idempotent); err != nil {
		return nil, err
	}
	return &reply.Diagnosis, nil
}

func buildProactive(d *deps) (Runner, error) {
	p := d.cfg.Proactive
	policy, err := netguard.NewPolicy(p.Subscriptions.AllowHTTP, p.Subscriptions.AllowedNetworks)
	if err != nil {
		return nil, err
	}
	return proactive.NewDispatcher(proactive.DispatcherOptions{
		DB: store.New(d.db), Conn: d.bus.Conn, Subjects: d.subjects, Policy: policy,
		URL: p.CallbackURL, Secret: []byte(p.CallbackSecret.Reveal()), Config: proactive.ConfigFrom(d.cfg),
		Metrics: d.metrics, Log: d.log.With("service", "proactive"),
	}), nil
}
