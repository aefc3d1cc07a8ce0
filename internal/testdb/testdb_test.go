package testdb_test

import (
	"context"
	"testing"

	"github.com/licensor/licensor/internal/testdb"
)

// migrator is what both engines offer besides the Store.
type migrator interface {
	Migrate(ctx context.Context) error
	SchemaVersion(ctx context.Context) (current, latest int, err error)
}

// TestMigrateTwice: migrating an up-to-date database changes nothing, on
// every engine.
func TestMigrateTwice(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db, ok := e.Open(t).(migrator)
		if !ok {
			t.Fatalf("the %s store has no Migrate and SchemaVersion", e.Name)
		}
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
	})
}
