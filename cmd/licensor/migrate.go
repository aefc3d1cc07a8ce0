package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	db := dbFlag(fs, getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := openMigrated(ctx, *db, logger)
	if err != nil {
		return err
	}
	defer d.Close()
	current, _, err := d.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d (%s)\n", current, redact(*db))
	return nil
}
