package topics

import (
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/internal/rules"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/wrapper"
)

// Definitions is one consistent set of what a topics worker runs: the topics,
// compiled and checked against the remote-action allow-list, and every saved query
// it may run (the topics' and those of the saved-queries file). It is immutable: a
// reload loads a new one and swaps it in only when it has no problem.
type Definitions struct {
	Set      *rules.Set
	Queries  *wrapper.Library
	LoadedAt time.Time
}

// Catalog is the topic catalogue.
func (d *Definitions) Catalog() *topic.Catalog { return d.Set.Catalog() }

// Files say where the definitions are read from.
type Files struct {
	TopicsDir         string
	RemoteActionsFile string
	QueriesFile       string // optional: saved queries outside the topics
}

// Load reads and compiles the files. The error lists every problem found, one per
// line, each naming its file and path.
func (f Files) Load() (*Definitions, error) {
	set, err := rules.Load(f.TopicsDir, f.RemoteActionsFile)
	if err != nil {
		return nil, err
	}
	var extra []topic.Query
	if f.QueriesFile != "" {
		if err := rules.CheckQueryFile(f.QueriesFile, set.Catalog()); err != nil {
			return nil, err
		}
		if extra, err = topic.LoadQueries(f.QueriesFile); err != nil {
			return nil, err
		}
	}
	lib, err := wrapper.NewLibrary(set, extra)
	if err != nil {
		return nil, err
	}
	return &Definitions{Set: set, Queries: lib, LoadedAt: time.Now().UTC()}, nil
}

// problemLines splits a load error into its problems, one per line.
func problemLines(err error) []string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		out = []string{"the definitions could not be loaded"}
	}
	return out
}
