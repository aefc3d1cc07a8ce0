package sqlite

import (
	"strings"
	"testing"

	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
	"github.com/licensor/licensor/internal/storetest"
)

// TestGrantQueriesReadTheIndexOnly: the entitlement cache's reads are
// searches of the covering index licenses_live_user_id (migration 0011),
// never a visit of the licenses' rows, and need no sort of their own.
func TestGrantQueriesReadTheIndexOnly(t *testing.T) {
	db := openTest(t, "plan.db")
	storetest.NewUsersLicenses(t, db, 2000, 500)
	if _, err := db.write.ExecContext(t.Context(), "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	for query, args := range sqlstore.GrantQueries(sqlfilter.SQLite, storetest.UserID(1), storetest.UserID(2)) {
		rows, err := db.read.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		got := strings.Join(plan, "; ")
		if !strings.Contains(got, "licenses USING COVERING INDEX licenses_live_user_id") || strings.Contains(got, "TEMP B-TREE") {
			t.Errorf("%s\nplan: %s\nwant a search of the covering index licenses_live_user_id, no sort", query, got)
		}
	}
}
