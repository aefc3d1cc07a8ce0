package storetest

import (
	"fmt"
	"testing"

	"github.com/licensor/licensor"
)

// GrantsIndex is how a benchmark of the entitlement cache's reads
// switches the index they use: Covering is the schema's own, Rows the
// index that held only (user_id, id), which leaves each license's row to
// visit (schema version 10; the engine's SQL of each).
type GrantsIndex struct {
	Exec            func(sql string) error
	Rows, Covering  []string // statements that put the index in place of the other
	Users, Licenses int      // the data set: Licenses spread over Users
}

// BenchFindGrants measures Store.FindGrants (one user) and FindUsersGrants
// (1,000 users) on the schema's index and then on the index of schema
// version 10, in the same run: the loads of the entitlement cache.
func BenchFindGrants(b *testing.B, s licensor.Store, ix GrantsIndex) {
	NewUsersLicenses(b, s, ix.Licenses, ix.Users)
	users := make([]string, licensor.MaxGrantUsers)
	run := func(name string) {
		b.Run(name+"/user", func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				gs, err := s.FindGrants(b.Context(), UserID(i*7919%ix.Users))
				if err != nil || len(gs) == 0 {
					b.Fatal(len(gs), err)
				}
			}
		})
		b.Run(fmt.Sprintf("%s/users=%d", name, len(users)), func(b *testing.B) {
			i := 0
			for b.Loop() {
				for j := range users {
					i++
					users[j] = UserID(i * 7919 % ix.Users)
				}
				gs, err := s.FindUsersGrants(b.Context(), users)
				if err != nil || len(gs) < len(users) {
					b.Fatal(len(gs), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(users)), "ns/user")
		})
	}
	exec(b, ix.Exec, ix.Covering) // the same statistics (and visibility map) as Rows will have
	run("covering")
	exec(b, ix.Exec, ix.Rows)
	run("rows")
	exec(b, ix.Exec, ix.Covering)
}

func exec(b *testing.B, f func(string) error, statements []string) {
	for _, q := range statements {
		if err := f(q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
}
