package topic

import (
	"errors"
	"path/filepath"

	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/config"
)

// Files say where a topic set is read from.
type Files struct {
	Dir           string // the topic files, *.yaml
	RemoteActions string // the remote-action allow-list the topics are checked against
	Queries       string // optional: saved queries that belong to no topic
}

// FilesOf are the files a configuration names.
func FilesOf(cfg config.Config) Files {
	return Files{Dir: cfg.TopicsDir, RemoteActions: cfg.RemoteActionsFile, Queries: cfg.QueriesFile}
}

// FilesIn are the files of the default configuration under root, a checkout of the
// repository (benchmarks and tests).
func FilesIn(root string) Files {
	f := FilesOf(config.Default())
	return Files{Dir: filepath.Join(root, f.Dir), RemoteActions: filepath.Join(root, f.RemoteActions), Queries: filepath.Join(root, f.Queries)}
}

// Load reads and compiles the files. The error lists every problem found, one per
// line, each naming its file and path: those of the topic files and the allow-list
// when they cannot be read, else those of compiling the topics, else those of the
// saved queries.
func (f Files) Load() (*Set, error) {
	r := f.Check()
	if err := r.Err(); err != nil {
		return nil, err
	}
	return r.Set, nil
}

// Report is what Check found, by what each problem concerns.
type Report struct {
	// Set is the compiled set, nil when there is any problem.
	Set *Set
	// Catalog and Allowlist are what could be read, even when the topics do not
	// compile against it (nil when their files have problems).
	Catalog   *Catalog
	Allowlist *allowlist.List
	// SavedQueries is the number of queries in the saved-queries file.
	SavedQueries int

	Topics        error // the topic files could not be read
	RemoteActions error // the allow-list could not be read
	Compile       error // the topics do not compile against the allow-list (Problems)
	Queries       error // the saved-queries file has problems
	// NXQL are the queries' NXQL forms (V6) and NXQLErr their problems.
	NXQL    NXQLForms
	NXQLErr error
}

// Err is the error of a report: the problems of the files that could not be read,
// else those of compiling, else those of the saved queries; nil when there are none.
func (r Report) Err() error {
	switch {
	case r.Topics != nil || r.RemoteActions != nil:
		return errors.Join(r.Topics, r.RemoteActions)
	case r.Compile != nil:
		return r.Compile
	case r.Queries != nil:
		return r.Queries
	}
	return r.NXQLErr
}

// Check reads and compiles the files, going as far as it can after a problem so that
// it reports every problem of every file (what `dexbridge check` shows).
func (f Files) Check() Report {
	var r Report
	r.Catalog, r.Topics = LoadDir(f.Dir)
	if f.RemoteActions == "" {
		r.RemoteActions = &config.Error{Key: "remote_actions_file", Reason: "required: the remote-action allow-list"}
	} else {
		r.Allowlist, r.RemoteActions = allowlist.LoadFile(f.RemoteActions)
	}
	if r.Catalog == nil {
		return r
	}
	r.NXQL, r.NXQLErr = nxqlForms(r.Catalog, f.Queries)
	var set *Set
	if r.Allowlist != nil {
		set, r.Compile = Compile(r.Catalog, r.Allowlist)
	}
	var saved []*SavedQuery
	if f.Queries != "" {
		saved, r.Queries = checkQueryFile(f.Queries, r.Catalog)
		r.SavedQueries = len(saved)
	}
	if set == nil || r.Queries != nil || r.NXQLErr != nil {
		return r
	}
	for _, q := range saved {
		set.queries[q.ID] = q
	}
	r.Set = set
	return r
}
