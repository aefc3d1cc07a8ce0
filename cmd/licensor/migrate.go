package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// runMigrate applies the pending migrations and says which; "migrate
// status" only reports them.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "status" {
		return migrateStatus(ctx, args[1:], getenv, stdout, stderr)
	}
	fs := newFlagSet("migrate", stderr)
	db := dbFlag(fs, getenv)
	if err := parseWithEnv(fs, args, getenv, dbEnv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q: migrate takes only flags, or \"status\"", fs.Args())}
	}
	t, err := parseDB(*db)
	if err != nil {
		return err
	}
	d, err := t.open(ctx, quietLogger(stderr), false)
	if err != nil {
		return err
	}
	defer d.Close()
	pending, err := d.PendingMigrations(ctx)
	if err != nil {
		return err
	}
	if err := d.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate database %s: %w", redact(*db), err)
	}
	current, latest, err := d.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	switch {
	case len(pending) == 0:
		fmt.Fprintf(stdout, "schema already at version %d, nothing to apply (%s)\n", current, redact(*db))
	default:
		fmt.Fprintf(stdout, "applied %d migration%s (%s): schema at version %d (%s)\n",
			len(pending), plural(len(pending)), strings.Join(pending, ", "), current, redact(*db))
	}
	if current > latest {
		fmt.Fprintf(stdout, "note: the schema is newer than this licensor (version %d, it knows %d): upgrade licensor\n", current, latest)
	}
	return nil
}

func migrateStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate status", stderr)
	db := dbFlag(fs, getenv)
	if err := parseWithEnv(fs, args, getenv, dbEnv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	t, err := parseDB(*db)
	if err != nil {
		return err
	}
	if f := t.file(); f != "" {
		if err := fileExists(f); err != nil {
			return err
		}
	}
	d, err := t.open(ctx, quietLogger(stderr), true)
	if err != nil {
		return err
	}
	defer d.Close()
	current, latest, err := d.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	pending, err := d.PendingMigrations(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database:  %s\nschema:    version %d (this licensor: %d)\n", redact(*db), current, latest)
	if len(pending) == 0 {
		fmt.Fprintln(stdout, "pending:   none")
		return nil
	}
	fmt.Fprintf(stdout, "pending:   %d migration%s (run licensor migrate)\n", len(pending), plural(len(pending)))
	for _, p := range pending {
		fmt.Fprintln(stdout, "  "+p)
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
