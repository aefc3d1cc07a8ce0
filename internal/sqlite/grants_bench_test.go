package sqlite

import (
	"testing"

	"github.com/licensor/licensor/internal/storetest"
)

// BenchmarkFindGrants is the entitlement cache's loads (one user, 1,000
// users) on the covering index of migration 0011 and, in the same run, on
// the index before it, which left each license's row to read.
//
//	go test -run '^$' -bench FindGrants -count 3 ./internal/sqlite
func BenchmarkFindGrants(b *testing.B) {
	db := openAt(b, b.TempDir()+"/bench.db", Options{})
	exec := func(q string) error { _, err := db.write.ExecContext(b.Context(), q); return err }
	storetest.BenchFindGrants(b, db, storetest.GrantsIndex{
		Exec: exec, Users: 25_000, Licenses: 100_000,
		Rows: []string{`DROP INDEX licenses_live_user_id`,
			`CREATE INDEX licenses_live_user_id ON licenses (user_id, id) WHERE deleted_at IS NULL`, `ANALYZE`},
		Covering: []string{`DROP INDEX licenses_live_user_id`,
			`CREATE INDEX licenses_live_user_id ON licenses (user_id, id, status, product_id, start_date, stop_date, deleted_at) WHERE deleted_at IS NULL`, `ANALYZE`},
	})
}
