package lifecycle_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/lifecycle"
)

// recurringProduct creates a recurring monthly product with mode m.
func recurringProduct(t *testing.T, s licensor.Store, m licensor.RenewalMode) licensor.Product {
	t.Helper()
	p := licensor.NewProduct("Monthly")
	p.Recurring, p.LicensePeriod, p.RenewalMode = true, "P1M", m
	p.PriceAmount, p.PriceCurrency = new(int64(999)), new("EUR")
	if err := s.CreateProduct(context.Background(), &p, licensor.Change{Time: time.Now().Unix()}); err != nil {
		t.Fatal(err)
	}
	return p
}

// recurring creates recurring licenses of p for the given periods, now.
func recurring(t *testing.T, s licensor.Store, p licensor.Product, periods ...[2]int64) []licensor.License {
	t.Helper()
	return recurringAt(t, s, p, time.Now().Unix(), periods...)
}

// recurringAt creates them at unix time at (a license created after its
// expiry_date is never renewed: a backlog is made of licenses created
// before the downtime).
func recurringAt(t *testing.T, s licensor.Store, p licensor.Product, at int64, periods ...[2]int64) []licensor.License {
	t.Helper()
	drafts := make([]licensor.LicenseDraft, len(periods))
	for i := range periods {
		drafts[i] = licensor.LicenseDraft{UserID: fmt.Sprint("u", i), ProductID: p.ID, StartDate: &periods[i][0], StopDate: &periods[i][1]}
	}
	var out []licensor.License
	for chunk := range slices.Chunk(drafts, 1000) {
		ls, err := s.CreateLicenses(context.Background(), chunk, licensor.Change{Time: at, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ls...)
	}
	return out
}

// eventsOf returns the events of type typ.
func eventsOf(t *testing.T, s licensor.Store, typ licensor.EventType) []licensor.Event {
	t.Helper()
	var out []licensor.Event
	after := int64(0)
	for {
		page, err := s.Events(context.Background(), licensor.EventQuery{
			Filter: licensor.EventFilter{Types: []licensor.EventType{typ}}, After: after, Limit: licensor.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Events...)
		if len(page.Events) < licensor.MaxPageSize {
			return out
		}
		after = page.Next
	}
}

func findLicense(t *testing.T, s licensor.Store, id int64) licensor.License {
	t.Helper()
	l, err := s.FindLicenseByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return *l
}

// TestRenewalLag renews licenses whose expiry dates fall in the next few
// seconds, while they are watched: each gets its successor within a
// second or so of its expiry_date (the successor starts at the stop, so
// the user's entitlement has no gap but this lag). The lag is logged:
//
//	go test -run TestRenewalLag -v ./internal/lifecycle
func TestRenewalLag(t *testing.T) {
	forEachEngine(t, func(t *testing.T, open func(t *testing.T) licensor.Store) {
		t.Parallel()
		s := open(t)
		p := recurringProduct(t, s, licensor.RenewalAutomatic)
		run(t, s, lifecycle.Options{})
		base := time.Now().Unix() + 2
		var periods [][2]int64
		for i := range 30 {
			periods = append(periods, [2]int64{base - 3600, base + int64(i%6)})
		}
		ls := recurring(t, s, p, periods...)
		lags := make([]time.Duration, len(ls))
		pending := len(ls)
		deadline := time.Unix(base+6+5, 0)
		for pending > 0 && time.Now().Before(deadline) {
			for i, l := range ls {
				if lags[i] != 0 || time.Now().Before(time.Unix(*l.ExpiryDate, 0)) {
					continue
				}
				if findLicense(t, s, l.ID).RenewedBy != nil {
					lags[i] = max(time.Since(time.Unix(*l.ExpiryDate, 0)), time.Nanosecond)
					pending--
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		for i, l := range ls {
			if lags[i] == 0 {
				t.Errorf("license %d (expiry %d) was not renewed 5 s after its expiry_date", l.ID, *l.ExpiryDate)
			}
		}
		if n := len(eventsOf(t, s, licensor.EventLicenseRenewed)); n != len(ls) {
			t.Errorf("%d license.renewed events, want %d", n, len(ls))
		}
		slices.Sort(lags)
		t.Logf("%s: renewal lag over %d licenses (expiry_date to successor, observed every 5 ms): p50 %v, p99 %v, max %v",
			t.Name(), len(lags), lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1])
	})
}

// TestRenewalBacklog starts two instances' workers (expirer, renewer,
// pruner) after a long downtime: every missed period of every license is
// made once, contiguous, the last holding now; each predecessor was
// expired too, and each renewal is announced once, by the system with the
// renewal marker.
func TestRenewalBacklog(t *testing.T) {
	forEachEngine(t, func(t *testing.T, open func(t *testing.T) licensor.Store) {
		s := open(t)
		p := recurringProduct(t, s, "")
		now := time.Now()
		start := now.AddDate(0, -7, 0).Unix()
		month, err := licensor.ParsePeriod("P1M")
		if err != nil {
			t.Fatal(err)
		}
		var periods [][2]int64
		for i := range 200 {
			s0 := start + int64(i)*3600
			periods = append(periods, [2]int64{s0, month.AddTo(time.Unix(s0, 0)).Unix()})
		}
		ls := recurringAt(t, s, p, start, periods...)
		opts := lifecycle.Options{RenewalBatch: 70, RenewalMode: licensor.RenewalAutomatic}
		run(t, s, opts)
		run(t, s, opts)
		chainEnd := func(l licensor.License) licensor.License {
			for l.RenewedBy != nil {
				l = findLicense(t, s, *l.RenewedBy)
			}
			return l
		}
		waitFor(t, "the backlog", func() bool {
			for _, l := range []licensor.License{ls[0], ls[len(ls)-1]} {
				if end := chainEnd(findLicense(t, s, l.ID)); *end.ExpiryDate <= time.Now().Unix() {
					return false
				}
			}
			return true
		})
		waitFor(t, "the expiries", func() bool {
			next, ok, err := s.NextExpiry(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return !ok || next > time.Now().Unix()
		})
		// Let the two racers finish their passes: every chain caught up,
		// every renewal in it with its event, every predecessor expired.
		waitFor(t, "the last passes", func() bool {
			events, chains := len(eventsOf(t, s, licensor.EventLicenseRenewed)), 0
			for _, root := range ls {
				l := findLicense(t, s, root.ID)
				for ; l.RenewedBy != nil; l = findLicense(t, s, *l.RenewedBy) {
					if l.Status != licensor.StatusExpired {
						return false
					}
					chains++
				}
				if *l.ExpiryDate <= time.Now().Unix() {
					return false
				}
			}
			return events == chains
		})
		renewed := map[int64]int{}
		for _, e := range eventsOf(t, s, licensor.EventLicenseRenewed) {
			renewed[e.LicenseID]++
			if e.Actor != licensor.ActorSystem || e.RequestID != licensor.RequestIDRenewal {
				t.Errorf("license.renewed of %d: actor %q request_id %q", e.LicenseID, e.Actor, e.RequestID)
			}
		}
		total := 0
		for _, root := range ls {
			l := findLicense(t, s, root.ID)
			n := 0
			for l.RenewedBy != nil {
				if renewed[l.ID] != 1 {
					t.Errorf("license %d: %d license.renewed events, want 1", l.ID, renewed[l.ID])
				}
				if l.Status != licensor.StatusExpired {
					t.Errorf("license %d: stored %s, want EXPIRED", l.ID, l.Status)
				}
				next := findLicense(t, s, *l.RenewedBy)
				if next.StartDate != *l.StopDate || *next.StopDate != month.AddTo(time.Unix(next.StartDate, 0)).Unix() {
					t.Errorf("license %d renews %d [%d, %d) with [%d, %d)", next.ID, l.ID, l.StartDate, *l.StopDate, next.StartDate, *next.StopDate)
				}
				l, n = next, n+1
			}
			if nowUnix := time.Now().Unix(); l.StartDate > nowUnix || *l.StopDate <= now.Unix() {
				t.Errorf("chain of %d ends with [%d, %d), want the period holding now", root.ID, l.StartDate, *l.StopDate)
			}
			if n < 6 || n > 8 {
				t.Errorf("chain of %d: %d renewals over seven months", root.ID, n)
			}
			total += n
		}
		if len(renewed) != total {
			t.Errorf("%d licenses renewed by events, %d by the chains", len(renewed), total)
		}
		t.Logf("%d renewals caught up", total)
	})
}

// TestRenewalNotice drives notify mode with a fake clock: license.renewal_due
// is sent once, RenewalNotice before expiry_date (within Poll), and the
// server makes no successor itself.
func TestRenewalNotice(t *testing.T) {
	forEachEngine(t, func(t *testing.T, open func(t *testing.T) licensor.Store) {
		t.Parallel()
		s := open(t)
		p := recurringProduct(t, s, "")
		expiry := time.Now().Add(30 * 24 * time.Hour).Unix()
		l := recurring(t, s, p, [2]int64{time.Now().Unix(), expiry})[0]
		var clock atomic.Int64
		clock.Store(expiry - 48*3600 - 60)
		opts := lifecycle.Options{Now: func() time.Time { return time.Unix(clock.Load(), 0) }, RenewalNotice: 48 * time.Hour, Poll: 100 * time.Millisecond}
		run(t, s, opts)
		run(t, s, opts)
		time.Sleep(500 * time.Millisecond)
		if n := len(eventsOf(t, s, licensor.EventLicenseRenewalDue)); n != 0 {
			t.Fatalf("%d license.renewal_due events a minute before the notice, want none", n)
		}
		clock.Store(expiry - 48*3600)
		waitFor(t, "the notice", func() bool { return len(eventsOf(t, s, licensor.EventLicenseRenewalDue)) > 0 })
		clock.Store(expiry + 3600)
		time.Sleep(500 * time.Millisecond)
		due := eventsOf(t, s, licensor.EventLicenseRenewalDue)
		if len(due) != 1 || due[0].LicenseID != l.ID || due[0].Time != expiry-48*3600 || due[0].RequestID != licensor.RequestIDRenewal {
			t.Errorf("license.renewal_due events: %+v, want one for license %d at %d", due, l.ID, expiry-48*3600)
		}
		if got := findLicense(t, s, l.ID); got.Renewal != licensor.RenewalDue || got.RenewedBy != nil {
			t.Errorf("after expiry_date in notify mode: renewal %s successor %v, want DUE and none", got.Renewal, got.RenewedBy)
		}
	})
}
