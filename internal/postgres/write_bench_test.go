package postgres

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/storetest"
)

// BenchmarkCreateLicense creates one license per operation from 64
// goroutines, through the store (no HTTP), with 1, 2 and 4 write lanes,
// next to the raw single-row insert transaction on the same schema
// (BEGIN, INSERT, COMMIT from 64 goroutines on the pool): compare the
// ns/op within one run.
//
//	go test -run '^$' -bench CreateLicense -benchtime 3s ./internal/postgres
func BenchmarkCreateLicense(b *testing.B) {
	const writers = 64
	u := schemaURL(b)
	setup := openAt(b, u, Options{})
	p := storetest.NewProduct(b, setup)
	var seq atomic.Int64
	parallel := func(b *testing.B, op func(ctx context.Context, n int64) error) {
		b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(b.Context(), seq.Add(1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}

	b.Run("ref=driver-insert", func(b *testing.B) {
		parallel(b, func(ctx context.Context, n int64) error {
			return pgx.BeginFunc(ctx, setup.pool, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO licenses (user_id, product_id, status, start_date, order_id,
	recurring, purchase_timestamp, created_at) VALUES ($1, $2, 'ACTIVE', 2, $3, false, 2, 2)`,
					"u", p.ID, fmt.Sprint("ref-", n))
				return err
			})
		})
	})
	for _, lanes := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("lanes=%d", lanes), func(b *testing.B) {
			db, err := Open(b.Context(), u, Options{WriteLanes: lanes})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			before := db.lanes.stats()
			parallel(b, func(ctx context.Context, n int64) error {
				_, err := db.CreateLicenses(ctx, []licensor.LicenseDraft{{UserID: "u", ProductID: p.ID,
					OrderID: new(fmt.Sprint("o-", n))}}, licensor.Change{Time: 2, RequestID: "r"})
				return err
			})
			b.StopTimer()
			s := db.lanes.stats()
			b.ReportMetric(float64(s.Succeeded-before.Succeeded)/float64(max(1, s.Commits-before.Commits)), "units/commit")
		})
	}
}
