package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/licensor/licensor"
)

func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return subcommand("keys", args, "licensor keys create|list|rotate|revoke [flags]", map[string]func([]string) error{
		"rotate": func(args []string) error { return keysRotate(ctx, args, getenv, stdout, stderr) },
		"create": func(args []string) error { return keysCreate(ctx, args, getenv, stdout, stderr) },
		"list":   func(args []string) error { return keysList(ctx, args, getenv, stdout, stderr) },
		"revoke": func(args []string) error { return keysRevoke(ctx, args, getenv, stdout, stderr) },
	})
}

// quietLogger keeps CLI output to what the user asked for.
func quietLogger(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func keysCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys create", stderr)
	db := dbFlag(fs, getenv)
	name := fs.String("name", "", "a unique name for the key, e.g. the BSS it belongs to (required)")
	scope := fs.String("scope", "", "read (GET routes only) or write (everything) (required)")
	var allow prefixList
	fs.Var(&allow, "allow", "a client network (CIDR or address) the key may be used from; repeatable; none means anywhere")
	expires := fs.String("expires", "", "lifetime of the key: a Go duration (720h) or an ISO-8601 period (P90D); none means it never expires")
	if err := parseWithEnv(fs, args, getenv, dbEnv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	if !licensor.ValidKeyName(*name) {
		return usageError{"--name is required: 1 to 64 characters of A-Z a-z 0-9 . _ : @ -"}
	}
	if !licensor.Scope(*scope).Valid() {
		return usageError{"--scope must be read or write"}
	}
	now := time.Now()
	k := licensor.APIKey{Name: *name, Scope: licensor.Scope(*scope), Networks: allow, CreatedAt: now.Unix()}
	if *expires != "" {
		at, err := expiryTime(now, *expires)
		if err != nil {
			return usageError{err.Error()}
		}
		k.ExpiresAt = &at
	}
	secret, prefix, hash := licensor.NewAPIKeySecret()
	k.Prefix, k.Hash = prefix, hash

	d, err := openExisting(ctx, *db, quietLogger(stderr))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.CreateAPIKey(ctx, &k); err != nil {
		if licensor.ErrorCode(err) == licensor.CodeConflict {
			return fmt.Errorf("a key named %q is in use; pick another name, rotate it (licensor keys rotate %s) or revoke it first", *name, *name)
		}
		return fmt.Errorf("create key: %w", err)
	}
	fmt.Fprintln(stdout, secret)
	fmt.Fprintf(stderr, "Created API key %q (prefix %s, scope %s%s%s).\nIt is shown only this once: store it now. Use it as: Authorization: Apikey <key>\n",
		k.Name, k.Prefix, k.Scope, describeNetworks(k.Networks, ", from "), describeExpiry(k.ExpiresAt, ", expires "))
	return nil
}

// expiryTime reads a lifetime as a Go duration or an ISO-8601 period.
func expiryTime(now time.Time, s string) (int64, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return 0, fmt.Errorf("--expires must be positive, got %s", s)
		}
		return now.Add(d).Unix(), nil
	}
	p, err := licensor.ParsePeriod(s)
	if err != nil {
		return 0, fmt.Errorf("--expires %q is neither a duration like 720h nor a period like P90D", s)
	}
	return p.AddTo(now).Unix(), nil
}

func describeNetworks(ns []netip.Prefix, lead string) string {
	if len(ns) == 0 {
		return ""
	}
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = n.String()
	}
	return lead + strings.Join(parts, " ")
}

func describeExpiry(at *int64, lead string) string {
	if at == nil {
		return ""
	}
	return lead + time.Unix(*at, 0).UTC().Format(time.RFC3339)
}

// keyView is how keys list shows a key; never the secret or its hash.
type keyView struct {
	Name      string   `json:"name"`
	Prefix    string   `json:"prefix"`
	Scope     string   `json:"scope"`
	Networks  []string `json:"networks"`
	ExpiresAt *string  `json:"expires_at"`
	LastUsed  *string  `json:"last_used_at"`
	CreatedAt string   `json:"created_at"`
	RevokedAt *string  `json:"revoked_at"`
	// Status is active, rotating (revoked at the end of a grace period),
	// revoked or expired.
	Status string `json:"status"`
}

// keyStatus says whether a key works at unix time now.
func keyStatus(k licensor.APIKey, now int64) string {
	switch {
	case k.RevokedAt != nil && *k.RevokedAt <= now:
		return "revoked"
	case k.ExpiresAt != nil && *k.ExpiresAt <= now:
		return "expired"
	case k.RevokedAt != nil:
		return "rotating"
	}
	return "active"
}

func keysList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys list", stderr)
	db := dbFlag(fs, getenv)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseWithEnv(fs, args, getenv, dbEnv); err != nil {
		return err
	}
	d, err := openExisting(ctx, *db, quietLogger(stderr))
	if err != nil {
		return err
	}
	defer d.Close()
	keys, err := d.FindAPIKeys(ctx)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	now := time.Now().Unix()
	views := make([]keyView, len(keys))
	for i, k := range keys {
		v := keyView{Name: k.Name, Prefix: k.Prefix, Scope: string(k.Scope), Networks: []string{},
			ExpiresAt: timeText(k.ExpiresAt), LastUsed: timeText(k.LastUsedAt), RevokedAt: timeText(k.RevokedAt),
			CreatedAt: *timeText(&k.CreatedAt), Status: keyStatus(k, now)}
		for _, n := range k.Networks {
			v.Networks = append(v.Networks, n.String())
		}
		views[i] = v
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(views)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPREFIX\tSTATUS\tSCOPE\tNETWORKS\tEXPIRES\tLAST USED\tCREATED\tREVOKED")
	for _, v := range views {
		nets := strings.Join(v.Networks, ",")
		if nets == "" {
			nets = "any"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Prefix, v.Status, v.Scope, nets,
			orDash(v.ExpiresAt, "never"), orDash(v.LastUsed, "never"), v.CreatedAt, orDash(v.RevokedAt, "-"))
	}
	return tw.Flush()
}

func timeText(t *int64) *string {
	if t == nil {
		return nil
	}
	s := time.Unix(*t, 0).UTC().Format(time.RFC3339)
	return &s
}

func orDash(s *string, none string) string {
	if s == nil {
		return none
	}
	return *s
}

func keysRevoke(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys revoke", stderr)
	db := dbFlag(fs, getenv)
	if err := parseWithEnv(fs, args, getenv, dbEnv); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"usage: licensor keys revoke NAME|PREFIX"}
	}
	d, err := openExisting(ctx, *db, quietLogger(stderr))
	if err != nil {
		return err
	}
	defer d.Close()
	which := fs.Arg(0)
	if err := d.RevokeAPIKey(ctx, which, licensor.Change{Time: time.Now().Unix(), Actor: "cli"}); err != nil {
		switch licensor.ErrorCode(err) {
		case licensor.CodeNotFound:
			return fmt.Errorf("no key named or prefixed %q (see licensor keys list)", which)
		case licensor.CodeConflict:
			// Idempotent, but not silent: nothing changed.
			fmt.Fprintf(stdout, "%s was already revoked; nothing changed (see licensor keys list)\n", which)
			return nil
		}
		return fmt.Errorf("revoke key: %w", err)
	}
	fmt.Fprintf(stdout, "revoked %s; every instance refuses it within a second\n", which)
	return nil
}

// keysRotate gives a key a successor: a new secret with the same name,
// scope, networks and expiry; the old secret works for the grace period.
func keysRotate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys rotate", stderr)
	db := dbFlag(fs, getenv)
	grace := fs.Duration("grace", 24*time.Hour, "how long the old secret keeps working, to roll the new one out (0: refused at once)")
	if err := parseWithEnv(fs, args, getenv, dbEnv); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"usage: licensor keys rotate NAME [--grace DURATION]"}
	}
	if *grace < 0 {
		return usageError{"--grace must not be negative"}
	}
	d, err := openExisting(ctx, *db, quietLogger(stderr))
	if err != nil {
		return err
	}
	defer d.Close()
	name := fs.Arg(0)
	secret, prefix, hash := licensor.NewAPIKeySecret()
	next := licensor.APIKey{Prefix: prefix, Hash: hash}
	now := time.Now()
	old, err := d.RotateAPIKey(ctx, name, &next, now.Add(*grace).Unix(), licensor.Change{Time: now.Unix(), Actor: "cli"})
	if err != nil {
		if licensor.ErrorCode(err) == licensor.CodeNotFound {
			return fmt.Errorf("no current key named %q (see licensor keys list; a revoked name takes keys create)", name)
		}
		return fmt.Errorf("rotate key: %w", err)
	}
	fmt.Fprintln(stdout, secret)
	fmt.Fprintf(stderr, "Rotated API key %q: new prefix %s (scope %s%s%s); the old key %s works until %s.\nThe new key is shown only this once: store it now.\n",
		name, next.Prefix, next.Scope, describeNetworks(next.Networks, ", from "), describeExpiry(next.ExpiresAt, ", expires "),
		old.Prefix, time.Unix(*old.RevokedAt, 0).UTC().Format(time.RFC3339))
	return nil
}
