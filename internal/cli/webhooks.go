package cli

import (
	"errors"
	"io/fs"
	"os"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
)

// checkWebhooks checks the webhook sources and mapping rules, and that the topics and
// remediations they name exist. The default file being absent means no webhooks.
func checkWebhooks(cfg config.Config, cat *topic.Catalog, getenv func(string) string) error {
	path := cfg.Webhooks.File
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && path == config.Default().Webhooks.File {
		return nil
	}
	r, err := webhookmap.Load(path, getenv)
	if err != nil || cat == nil {
		return err
	}
	return r.CheckTopics(cat)
}
