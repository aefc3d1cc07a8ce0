package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlstore"
	"github.com/licensor/licensor/internal/storetest"
)

// BenchmarkCreateLicense creates one license per operation from
// concurrent callers, sharing commits (as CreateLicenses does) and, for
// comparison in the same run, each in a transaction of its own (as before
// group commit); units/group is how many creates share a commit.
//
//	go test -run XXX -bench CreateLicense -benchtime 2s ./internal/sqlite
func BenchmarkCreateLicense(b *testing.B) {
	for _, mode := range []string{"grouped", "alone"} {
		for _, callers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/callers=%d", mode, callers), func(b *testing.B) {
				db := openAt(b, b.TempDir()+"/bench.db", Options{})
				p := storetest.NewProduct(b, db)
				create := func(drafts []licensor.LicenseDraft, c licensor.Change) error {
					_, err := db.CreateLicenses(b.Context(), drafts, c)
					return err
				}
				if mode == "alone" {
					create = func(drafts []licensor.LicenseDraft, c licensor.Change) error {
						return db.writeTxSized(b.Context(), aloneAbove+1, func(ctx context.Context, tx *sql.Tx) error {
							q := db.wq(tx)
							out, err := createLicenses(ctx, q, drafts, c)
							if err != nil {
								return err
							}
							return appendEvents(ctx, q, licensor.LicenseEvents(licensor.EventLicenseCreated, out, c))
						})
					}
				}
				before := db.WriteStats()
				var n atomic.Int64
				cpu := processCPU()
				b.SetParallelism((callers + 1) / 2) // callers goroutines with GOMAXPROCS 2
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						order := fmt.Sprint("o-", n.Add(1))
						err := create([]licensor.LicenseDraft{{UserID: order, ProductID: p.ID, OrderID: &order}}, licensor.Change{Time: 2})
						if err != nil {
							b.Error(err)
						}
					}
				})
				reportCPU(b, cpu)
				s := db.WriteStats()
				b.ReportMetric(float64(s.Units-before.Units)/float64(max(s.Commits-before.Commits, 1)), "units/group")
			})
		}
	}
}

// BenchmarkFindLicenseByID reads licenses by id from concurrent readers,
// through the prepared statements without watching the caller's
// cancellation (as FindLicenseByID does) and, for comparison in the same
// run, watching it, and parsing the query at each call.
//
//	go test -run XXX -bench FindLicenseByID ./internal/sqlite
func BenchmarkFindLicenseByID(b *testing.B) {
	db := openAt(b, b.TempDir()+"/bench.db", Options{})
	p := storetest.NewProduct(b, db)
	drafts := make([]licensor.LicenseDraft, 1000)
	for i := range drafts {
		drafts[i] = licensor.LicenseDraft{UserID: fmt.Sprint("u", i), ProductID: p.ID, OrderID: new(fmt.Sprint("o", i))}
	}
	ls, err := db.CreateLicenses(b.Context(), drafts, licensor.Change{Time: 2})
	if err != nil {
		b.Fatal(err)
	}
	const query = `SELECT ` + sqlstore.LicenseColumns + ` FROM licenses WHERE id = ? AND deleted_at IS NULL`
	for _, bc := range []struct {
		name string
		find func(id int64) error
	}{
		{"prepared", func(id int64) error { _, err := db.FindLicenseByID(b.Context(), id); return err }},
		{"prepared, cancellable ctx", func(id int64) error {
			_, err := sqlstore.ScanLicense(db.rq().QueryRowContext(b.Context(), query, id))
			return err
		}},
		{"unprepared", func(id int64) error {
			_, err := sqlstore.ScanLicense(db.read.QueryRowContext(b.Context(), query, id))
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var n atomic.Int64
			cpu := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.find(ls[n.Add(1)%int64(len(ls))].ID); err != nil {
						b.Error(err)
					}
				}
			})
			reportCPU(b, cpu)
		})
	}
}

// processCPU is the CPU time the process has used (user and system), which
// other processes on a shared machine do not inflate as they do ns/op.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU()-start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}
