package postgres

import (
	"testing"

	"github.com/licensor/licensor/internal/storetest"
)

// BenchmarkFindGrants is the entitlement cache's loads (one user, 1,000
// users) on the covering index of migration 0011 (an index-only scan once
// the table is vacuumed) and, in the same run, on the index before it,
// which left each license's row to visit.
//
//	go test -run '^$' -bench FindGrants -count 3 ./internal/postgres
func BenchmarkFindGrants(b *testing.B) {
	db := openAt(b, schemaURL(b), Options{})
	exec := func(q string) error { _, err := db.pool.Exec(b.Context(), q); return err }
	storetest.BenchFindGrants(b, db, storetest.GrantsIndex{
		Exec: exec, Users: 25_000, Licenses: 100_000,
		Rows: []string{`DROP INDEX licenses_live_user_id`,
			`CREATE INDEX licenses_live_user_id ON licenses (user_id, id) WHERE deleted_at IS NULL`, `VACUUM ANALYZE licenses`},
		Covering: []string{`DROP INDEX licenses_live_user_id`,
			`CREATE INDEX licenses_live_user_id ON licenses (user_id, id) INCLUDE (status, product_id, start_date, stop_date) WHERE deleted_at IS NULL`, `VACUUM ANALYZE licenses`},
	})
}
