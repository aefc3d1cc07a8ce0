package main

import (
	"context"
	"fmt"
	"io"

	"github.com/licensor/licensor/internal/sqlite"
)

// runBackup copies a SQLite database to a new file while servers keep
// using it (VACUUM INTO). PostgreSQL has its own tools.
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", stderr)
	db := dbFlag(fs, getenv)
	to := fs.String("to", "", "the new file to write the copy to (required; never overwritten)")
	if err := parseWithEnv(fs, args, getenv, dbEnv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	if *to == "" {
		return usageError{"--to is required: the file to write the copy to"}
	}
	t, err := parseDB(*db)
	if err != nil {
		return err
	}
	if t.postgres {
		return usageError{"licensor backup copies a SQLite database; back up PostgreSQL with pg_dump, or a base backup and WAL archiving (docs/operations.md)"}
	}
	if t.inMemory() {
		return usageError{"an in-memory database has no file to back up"}
	}
	if f := t.file(); f != "" {
		if err := fileExists(f); err != nil {
			return err
		}
	}
	info, err := sqlite.Backup(ctx, t.path, *to)
	if err != nil {
		return fmt.Errorf("back up %s: %w", redact(*db), err)
	}
	fmt.Fprintf(stdout, "backed up %s to %s: %d bytes, schema at version %d, integrity ok\n", redact(*db), *to, info.Bytes, info.SchemaVersion)
	return nil
}
