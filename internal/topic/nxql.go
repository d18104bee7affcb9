package topic

import (
	"errors"
	"fmt"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nxql"
)

// NXQLForms are the NXQL forms of the saved queries (package nxql's Form), what a
// V6 instance runs.
type NXQLForms struct {
	Forms []nxql.Form
	// Missing are the queries without a form, "#id (topics/x.yaml)": they cannot run
	// on a V6 instance.
	Missing []string
}

// nxqlForms collects and checks the forms of the topics' queries and of the
// saved-queries file (path, when not empty): each must parse with package nxql
// and map every NQL column it names to a column its queries select.
func nxqlForms(cat *Catalog, path string) (NXQLForms, error) {
	var out NXQLForms
	var errs []error
	schema := nxql.NewSchema()
	add := func(file, key string, q Query) {
		if q.NXQL == nil {
			out.Missing = append(out.Missing, fmt.Sprintf("%s (%s)", q.ID, file))
			return
		}
		f := q.NXQL.Form(q.ID)
		if err := f.Check(schema); err != nil {
			errs = append(errs, &config.Error{Key: file + ": " + key + ".nxql", Reason: err.Error()})
			return
		}
		out.Forms = append(out.Forms, f)
	}
	for _, t := range cat.List() {
		for k, q := range t.Queries {
			add(t.File, fmt.Sprintf("queries[%d]", k), q)
		}
	}
	if path != "" {
		qs, err := LoadQueries(path)
		if err != nil {
			return out, err
		}
		for k, q := range qs {
			add(path, fmt.Sprintf("queries[%d]", k), q)
		}
	}
	return out, errors.Join(errs...)
}

// NXQLForms reads the files' NXQL forms (for the drivers of V6 instances).
func (f Files) NXQLForms() (NXQLForms, error) {
	cat, err := LoadDir(f.Dir)
	if err != nil {
		return NXQLForms{}, err
	}
	return nxqlForms(cat, f.Queries)
}
