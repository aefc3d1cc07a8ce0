package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlite"
	"github.com/licensor/licensor/internal/storetest"
)

// open returns a fresh, migrated store in a file of its own.
func open(t *testing.T) *sqlite.DB {
	t.Helper()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) licensor.Store { return open(t) })
}

func TestMigrate(t *testing.T) {
	db := open(t)
	// Migrating an up-to-date database changes nothing.
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	current, latest, err := db.SchemaVersion(t.Context())
	if err != nil {
		t.Fatalf("SchemaVersion: %v", err)
	}
	if latest < 1 || current != latest {
		t.Errorf("SchemaVersion: got current %d latest %d, want current == latest >= 1", current, latest)
	}
}
