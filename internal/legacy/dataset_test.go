package legacy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/licensor/licensor/internal/legacy"
	"github.com/licensor/licensor/internal/legacy/legacytest"
)

// TestGeneratedDataset reads and converts the generated legacy data set
// (100,000 licenses over 10,000 users; 10,000 with -short) the way the
// importer does, without a server, and checks every record against what
// the generator says it must become.
func TestGeneratedDataset(t *testing.T) {
	users, licenses := 10000, 100000
	if testing.Short() {
		users, licenses = 1000, 10000
	}
	loc, err := time.LoadLocation("Europe/Helsinki")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ds, err := legacytest.Generate(dir, legacytest.Options{Seed: 6, Users: users, Licenses: licenses, BadPercent: 8, Location: loc, Service: "boox"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(ds.UsersFile)
	if err != nil {
		t.Fatal(err)
	}
	userMap, err := legacy.ReadUsers(f, ds.UsersFile)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	productMap := map[string]int64{}
	for i, p := range ds.Products {
		productMap[p] = int64(i + 1)
	}
	conv, err := legacy.NewConverter(userMap, productMap, loc, "boox")
	if err != nil {
		t.Fatal(err)
	}
	inputs, err := legacy.Inputs([]string{ds.Inputs}, legacy.FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	read, good := 0, 0
	kinds := map[string]int{}
	for _, in := range inputs {
		f, err := os.Open(in.Path)
		if err != nil {
			t.Fatal(err)
		}
		err = legacy.Read(f, in.Path, in.Format, func(r *legacy.Record) error {
			read++
			src := strings.TrimPrefix(r.Source, ds.Inputs+string(filepath.Separator))
			d, err := conv.Convert(r)
			if want, bad := ds.Bad[src]; bad {
				kind := want
				if strings.HasPrefix(kind, "duplicate") {
					kind = "duplicate"
				}
				kinds[kind]++
				if err == nil {
					t.Errorf("%s converted, want a rejection with %q: %s", src, want, r.Raw)
				} else if !strings.Contains(err.Error(), want) {
					t.Errorf("%s rejected with %q, want %q", src, err, want)
				}
				return nil
			}
			if err != nil {
				t.Errorf("%s rejected: %v: %s", src, err, r.Raw)
				return nil
			}
			e, ok := ds.Good[*d.OrderID]
			if !ok || e.Source != src {
				t.Errorf("%s: unexpected good record %s (%+v)", src, *d.OrderID, e)
				return nil
			}
			good++
			if d.UserID != e.UserID || d.ProductID != productMap[e.LegacyProduct] || *d.Status != e.Status ||
				*d.StartDate != e.Start || *d.StopDate != e.Stop || *d.PurchaseTimestamp != e.Purchase ||
				*d.PriceAmount != e.Amount || *d.PriceCurrency != e.Currency || *d.Recurring != e.Recurring ||
				(d.PaymentMethod == nil) != (e.PaymentMethod == nil) || (d.PaymentMethod != nil && *d.PaymentMethod != *e.PaymentMethod) {
				t.Errorf("%s: converted %+v, want %+v", src, d, e)
			}
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if read != ds.Read || good != len(ds.Good) {
		t.Errorf("read %d records (%d good), want %d (%d good)", read, good, ds.Read, len(ds.Good))
	}
	if licenses < 100000 && !testing.Short() {
		t.Errorf("only %d licenses", licenses)
	}
	t.Logf("%d records, %d good, %d bad; defects: %v", read, good, len(ds.Bad), kinds)
}

// BenchmarkReadConvert measures the importer's own work, reading and
// converting, without a server: go test ./internal/legacy -bench ReadConvert
func BenchmarkReadConvert(b *testing.B) {
	loc, err := time.LoadLocation("Europe/Helsinki")
	if err != nil {
		b.Fatal(err)
	}
	ds, err := legacytest.Generate(b.TempDir(), legacytest.Options{Seed: 7, Users: 2000, Licenses: 20000, Location: loc})
	if err != nil {
		b.Fatal(err)
	}
	users := map[string]string{}
	for i := range 2000 {
		users[fmt.Sprintf("user%05d@example.com", i)] = strconv.Itoa(i + 1)
	}
	products := map[string]int64{}
	for i, p := range ds.Products {
		products[p] = int64(i + 1)
	}
	inputs, err := legacy.Inputs([]string{ds.Inputs}, legacy.FormatAuto)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		conv, _ := legacy.NewConverter(users, products, loc, "bench")
		for _, in := range inputs {
			f, err := os.Open(in.Path)
			if err != nil {
				b.Fatal(err)
			}
			err = legacy.Read(f, in.Path, in.Format, func(r *legacy.Record) error {
				if _, err := conv.Convert(r); err != nil {
					return err
				}
				n++
				return nil
			})
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
