package postgres

import (
	"strings"
	"testing"

	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
	"github.com/licensor/licensor/internal/storetest"
)

// TestGrantQueriesReadTheIndexOnly: once the table is vacuumed, the
// entitlement cache's reads are index-only scans of licenses_live_user_id
// (migration 0011), which visit no license's row (Heap Fetches: 0).
func TestGrantQueriesReadTheIndexOnly(t *testing.T) {
	db := openAt(t, schemaURL(t), Options{})
	storetest.NewUsersLicenses(t, db, 10_000, 2500)
	if _, err := db.pool.Exec(t.Context(), "VACUUM ANALYZE licenses"); err != nil {
		t.Fatal(err)
	}
	for query, args := range sqlstore.GrantQueries(sqlfilter.PostgreSQL, storetest.UserID(1), storetest.UserID(2)) {
		rows, err := db.pool.Query(t.Context(), "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "+sqlfilter.PostgreSQL.Rebind(query), args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, strings.TrimSpace(line))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(plan, "; ")
		if !strings.Contains(got, "Index Only Scan using licenses_live_user_id on licenses") || !strings.Contains(got, "Heap Fetches: 0") || strings.Contains(got, "Sort") {
			t.Errorf("%s\nplan: %s\nwant an index-only scan of licenses_live_user_id, no heap fetch, no sort", query, got)
		}
	}
}
