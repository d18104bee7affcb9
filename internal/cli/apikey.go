package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/store"
)

// apikeyCmd manages API keys straight in the database, for operators on the machine.
func apikeyCmd(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: dexbridge apikey create|list|revoke", ErrUsage)
	}
	sub, args := args[0], args[1:]
	fs, path := flags("apikey "+sub, env)
	name := fs.String("name", "", "key name (create)")
	scopes := fs.String("scopes", "read,diagnose", "comma-separated scopes: read, diagnose, remediate, admin (create)")
	expires := fs.String("expires", "", "lifetime such as 720h or 30d; empty never expires (create)")
	quiet := fs.Bool("q", false, "print only the key (create)")
	out := outputFlags(fs, env)
	pos, err := parseFlags(fs, "apikey "+sub, env, args)
	if err != nil {
		return err
	}
	if err := out.check(); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, env)
	if err != nil {
		return err
	}
	pool, _, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	keys := auth.NewKeys(store.New(pool))
	switch sub {
	case "create":
		return createKey(ctx, env, out, keys, *name, *scopes, *expires, *quiet)
	case "list":
		return listKeys(ctx, env, out, keys)
	case "revoke":
		if len(pos) != 1 {
			return fmt.Errorf("%w: dexbridge apikey revoke <id>", ErrUsage)
		}
		k, err := keys.Revoke(ctx, pos[0])
		if err != nil {
			return err
		}
		if out.asJSON() {
			return printJSON(env.Stdout, keyJSON(k))
		}
		_, err = fmt.Fprintf(env.Stdout, "revoked %s (%s)\n", k.ID, k.Name)
		return err
	}
	return fmt.Errorf("%w: unknown apikey command %q", ErrUsage, sub)
}

func createKey(ctx context.Context, env Env, out *output, keys *auth.Keys, name, scopeList, expires string, quiet bool) error {
	if name == "" {
		return fmt.Errorf("%w: -name is required", ErrUsage)
	}
	scopes, err := auth.ParseScopes(strings.Split(scopeList, ","))
	if err != nil {
		return err
	}
	n := auth.NewKey{Name: name, Scopes: scopes, CreatedBy: "cli"}
	if expires != "" {
		d, err := config.ParseDuration(expires, false)
		if err != nil || d <= 0 {
			return errors.New("-expires: want a positive duration such as 720h or 30d")
		}
		t := time.Now().Add(d).UTC()
		n.ExpiresAt = &t
	}
	secret, k, err := keys.Create(ctx, n)
	if err != nil {
		return err
	}
	if quiet {
		_, err = fmt.Fprintln(env.Stdout, secret)
		return err
	}
	if out.asJSON() {
		j := keyJSON(k)
		j.Key = secret
		return printJSON(env.Stdout, j)
	}
	_, err = fmt.Fprintf(env.Stdout, "id:     %s\nname:   %s\nscopes: %s\nkey:    %s\n\nThe key is shown only this once; dexbridge stores only its hash.\n",
		k.ID, k.Name, strings.Join(k.Scopes, ","), secret)
	return err
}

func listKeys(ctx context.Context, env Env, out *output, keys *auth.Keys) error {
	list, err := keys.List(ctx)
	if err != nil {
		return err
	}
	if out.asJSON() {
		js := make([]apiKeyJSON, 0, len(list))
		for _, k := range list {
			js = append(js, keyJSON(k))
		}
		return printJSON(env.Stdout, js)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tSTATUS\tCREATED\tLAST USED")
	for _, k := range list {
		status := "active"
		if k.RevokedAt != nil {
			status = "revoked"
		} else if k.ExpiresAt != nil && time.Now().After(*k.ExpiresAt) {
			status = "expired"
		}
		last := "never"
		if k.LastUsedAt != nil {
			last = out.when(k.LastUsedAt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), status, out.when(&k.CreatedAt), last)
	}
	return tw.Flush()
}

// apiKeyJSON is a key as -o json prints it: the API's field names, never the hash.
type apiKeyJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	Key        string     `json:"key,omitempty"` // only when created
}

func keyJSON(k store.APIKey) apiKeyJSON {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	return apiKeyJSON{ID: k.ID, Name: k.Name, Scopes: k.Scopes, CreatedAt: k.CreatedAt.UTC(), CreatedBy: k.CreatedBy,
		ExpiresAt: utc(k.ExpiresAt), RevokedAt: utc(k.RevokedAt), LastUsedAt: utc(k.LastUsedAt)}
}
