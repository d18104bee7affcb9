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
	scopes := fs.String("scopes", "read,diagnose", "comma-separated scopes: read, diagnose, remediate, admin, delegate (create)")
	employee := fs.String("employee", "", "with the delegate scope: the UPN of the one employee the key acts for; without it, each request names its employee (create)")
	expires := fs.String("expires", "", "lifetime such as 720h or 30d; empty never expires (create)")
	quiet := fs.Bool("q", false, "print only the key (create)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
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
		return createKey(ctx, env, keys, *name, *scopes, *employee, *expires, *quiet)
	case "list":
		return listKeys(ctx, env, keys)
	case "revoke":
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: dexbridge apikey revoke <id>", ErrUsage)
		}
		k, err := keys.Revoke(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(env.Stdout, "revoked %s (%s)\n", k.ID, k.Name)
		return err
	}
	return fmt.Errorf("%w: unknown apikey command %q", ErrUsage, sub)
}

func createKey(ctx context.Context, env Env, keys *auth.Keys, name, scopeList, employee, expires string, quiet bool) error {
	if name == "" {
		return fmt.Errorf("%w: -name is required", ErrUsage)
	}
	scopes, err := auth.ParseScopes(strings.Split(scopeList, ","))
	if err != nil {
		return err
	}
	if _, err := auth.CheckDelegate(scopes, employee); err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	n := auth.NewKey{Name: name, Scopes: scopes, CreatedBy: "cli", EmployeeUPN: employee}
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
	actsFor := ""
	if k.EmployeeUPN != nil {
		actsFor = "for:    " + *k.EmployeeUPN + "\n"
	}
	_, err = fmt.Fprintf(env.Stdout, "id:     %s\nname:   %s\nscopes: %s\n%skey:    %s\n\nThe key is shown only this once; dexbridge stores only its hash.\n",
		k.ID, k.Name, strings.Join(k.Scopes, ","), actsFor, secret)
	return err
}

func listKeys(ctx context.Context, env Env, keys *auth.Keys) error {
	list, err := keys.List(ctx)
	if err != nil {
		return err
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
			last = k.LastUsedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), status, k.CreatedAt.Format(time.RFC3339), last)
	}
	return tw.Flush()
}
