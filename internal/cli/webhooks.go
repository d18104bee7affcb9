package cli

import (
	"errors"
	"io/fs"
	"os"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
)

// checkWebhooks checks the webhook sources and mapping rules, that the topics and
// remediations they name exist, and that each source is bound to a configured
// instance (or there is only one). The default file being absent means no webhooks.
func checkWebhooks(cfg config.Config, cat *topic.Catalog, getenv func(string) string) (*webhookmap.Rules, error) {
	path := cfg.Webhooks.File
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && path == config.Default().Webhooks.File {
		return nil, nil
	}
	r, err := webhookmap.Load(path, getenv)
	if err != nil {
		return nil, err
	}
	names := cfg.InstanceNames()
	if err := r.CheckInstances(names); err != nil || cat == nil {
		return r, err
	}
	return r, r.CheckTopics(cat)
}
