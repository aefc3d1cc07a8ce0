package licensor_test

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/licensor/licensor"
)

func entPtr[T any](v T) *T { return &v }

// lic is an ACTIVE license of product from start to stop (0: never ends).
func entLicense(id, product, start, stop int64) licensor.License {
	l := licensor.License{ID: id, UserID: "41", ProductID: product, Status: licensor.StatusActive, StartDate: start}
	if stop != 0 {
		l.StopDate = entPtr(stop)
	}
	return l
}

func entWithStatus(l licensor.License, s licensor.Status) licensor.License {
	l.Status = s
	return l
}

var entCatalog = map[int64]*licensor.Product{
	1: {ID: 1, Channels: licensor.Channels{
		licensor.ServiceLive:    {"espn", "eurosport"},
		licensor.ServiceCatchup: {"espn"},
	}},
	2: {ID: 2, Channels: licensor.Channels{
		licensor.ServiceLive: {"cnn", "espn"},
		licensor.ServiceNPVR: {"cnn"},
	}},
	3: {ID: 3, Channels: licensor.Channels{}}, // an SVOD product: no channels
	4: {ID: 4, Channels: licensor.Channels{licensor.ServiceStartover: {"bbc"}}},
}

// entResult is an answer of the rule with its products' ids and the
// channels they grant, per service (ascending, distinct, never nil).
type entResult struct {
	licensor.Entitlements[*licensor.Product]
	ids      []int64
	channels licensor.Channels
}

// entAt applies the rule at t to the grants of licenses over entCatalog.
func entAt(licenses []licensor.License, t int64) entResult {
	var grants []licensor.Grant
	for i := range licenses {
		if g, ok := licensor.GrantOf(&licenses[i]); ok {
			grants = append(grants, g)
		}
	}
	e, err := licensor.EntitlementsAt(grants, t, func(id int64) (*licensor.Product, bool, error) {
		p, ok := entCatalog[id]
		return p, ok, nil
	})
	if err != nil {
		panic(err)
	}
	r := entResult{Entitlements: e, ids: []int64{}, channels: licensor.Channels{}}
	for _, p := range e.Products {
		r.ids = append(r.ids, p.ID)
	}
	for _, s := range licensor.Services() {
		ids := []string{}
		for _, p := range e.Products {
			ids = append(ids, p.Channels[s]...)
		}
		slices.Sort(ids)
		r.channels[s] = slices.Compact(ids)
	}
	return r
}

func TestEntitlementsAt(t *testing.T) {
	const (
		never = math.MinInt64
	)
	type want struct {
		products   []int64
		live       []string
		catchup    []string
		npvr       []string
		startover  []string
		validFrom  int64
		validUntil *int64
	}
	cases := []struct {
		name     string
		licenses []licensor.License
		t        int64
		want     want
	}{
		{
			name: "no licenses",
			t:    100,
			want: want{products: []int64{}, validFrom: never},
		},
		{
			name:     "inside the interval",
			licenses: []licensor.License{entLicense(1, 1, 50, 200)},
			t:        100,
			want: want{products: []int64{1}, live: []string{"espn", "eurosport"}, catchup: []string{"espn"},
				validFrom: 50, validUntil: entPtr[int64](200)},
		},
		{
			name:     "start_date is included",
			licenses: []licensor.License{entLicense(1, 1, 100, 200)},
			t:        100,
			want: want{products: []int64{1}, live: []string{"espn", "eurosport"}, catchup: []string{"espn"},
				validFrom: 100, validUntil: entPtr[int64](200)},
		},
		{
			name:     "stop_date is excluded",
			licenses: []licensor.License{entLicense(1, 1, 50, 100)},
			t:        100,
			want:     want{products: []int64{}, validFrom: 100},
		},
		{
			name:     "one second before stop_date",
			licenses: []licensor.License{entLicense(1, 1, 50, 100)},
			t:        99,
			want: want{products: []int64{1}, live: []string{"espn", "eurosport"}, catchup: []string{"espn"},
				validFrom: 50, validUntil: entPtr[int64](100)},
		},
		{
			name:     "null stop_date never ends",
			licenses: []licensor.License{entLicense(1, 1, 50, 0)},
			t:        math.MaxInt64 - 1,
			want: want{products: []int64{1}, live: []string{"espn", "eurosport"}, catchup: []string{"espn"},
				validFrom: 50},
		},
		{
			name:     "future license: nothing yet, valid until it starts",
			licenses: []licensor.License{entLicense(1, 1, 150, 200)},
			t:        100,
			want:     want{products: []int64{}, validFrom: never, validUntil: entPtr[int64](150)},
		},
		{
			name:     "overlapping licenses merge their channels, distinct and sorted",
			licenses: []licensor.License{entLicense(1, 2, 0, 300), entLicense(2, 1, 50, 200)},
			t:        100,
			want: want{products: []int64{1, 2}, live: []string{"cnn", "espn", "eurosport"}, catchup: []string{"espn"},
				npvr: []string{"cnn"}, validFrom: 50, validUntil: entPtr[int64](200)},
		},
		{
			name:     "two licenses of one product list it once",
			licenses: []licensor.License{entLicense(1, 1, 0, 300), entLicense(2, 1, 50, 0)},
			t:        100,
			want: want{products: []int64{1}, live: []string{"espn", "eurosport"}, catchup: []string{"espn"},
				validFrom: 50, validUntil: entPtr[int64](300)},
		},
		{
			name:     "overlap: the later stop keeps the product after the earlier one ends",
			licenses: []licensor.License{entLicense(1, 1, 0, 300), entLicense(2, 1, 50, 200)},
			t:        250,
			want: want{products: []int64{1}, live: []string{"espn", "eurosport"}, catchup: []string{"espn"},
				validFrom: 200, validUntil: entPtr[int64](300)},
		},
		{
			name: "suspended and other statuses entitle to nothing and do not bound validity",
			licenses: []licensor.License{
				entWithStatus(entLicense(1, 1, 0, 300), licensor.StatusSuspended),
				entWithStatus(entLicense(2, 2, 0, 300), licensor.StatusSuspendedAdmin),
				entWithStatus(entLicense(3, 4, 0, 300), licensor.StatusExpired),
				entWithStatus(entLicense(4, 1, 0, 300), licensor.StatusProcessing),
				entWithStatus(entLicense(5, 1, 0, 300), licensor.StatusCheckInvalid),
				entWithStatus(entLicense(6, 1, 0, 300), licensor.StatusOrderError),
				entWithStatus(entLicense(7, 1, 150, 0), licensor.StatusSuspended),
			},
			t:    100,
			want: want{products: []int64{}, validFrom: never},
		},
		{
			name:     "a suspended license next to an active one",
			licenses: []licensor.License{entWithStatus(entLicense(1, 1, 0, 300), licensor.StatusSuspended), entLicense(2, 4, 0, 0)},
			t:        100,
			want:     want{products: []int64{4}, startover: []string{"bbc"}, validFrom: 0},
		},
		{
			name:     "a product with no channels is still held",
			licenses: []licensor.License{entLicense(1, 3, 0, 0)},
			t:        100,
			want:     want{products: []int64{3}, validFrom: 0},
		},
		{
			name:     "a license whose product is gone grants nothing",
			licenses: []licensor.License{entLicense(1, 99, 0, 500), entLicense(2, 3, 10, 0)},
			t:        100,
			want:     want{products: []int64{3}, validFrom: 10},
		},
		{
			name:     "valid_until is the earliest future edge of any active license",
			licenses: []licensor.License{entLicense(1, 1, 0, 400), entLicense(2, 2, 300, 500), entLicense(3, 4, 90, 250), entLicense(4, 3, 120, 0)},
			t:        100,
			want: want{products: []int64{1, 4}, live: []string{"espn", "eurosport"}, catchup: []string{"espn"},
				startover: []string{"bbc"}, validFrom: 90, validUntil: entPtr[int64](120)},
		},
		{
			name:     "an expired ACTIVE license bounds validity from below only",
			licenses: []licensor.License{entLicense(1, 1, 10, 20)},
			t:        100,
			want:     want{products: []int64{}, validFrom: 20},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := entAt(c.licenses, c.t)
			if !reflect.DeepEqual(got.ids, c.want.products) {
				t.Errorf("products = %v, want %v", got.ids, c.want.products)
			}
			for _, s := range []struct {
				service licensor.Service
				want    []string
			}{
				{licensor.ServiceLive, c.want.live},
				{licensor.ServiceCatchup, c.want.catchup},
				{licensor.ServiceNPVR, c.want.npvr},
				{licensor.ServiceStartover, c.want.startover},
			} {
				list, ok := got.channels[s.service]
				if !ok || list == nil {
					t.Errorf("service %s is missing (want an empty list)", s.service)
				}
				if s.want == nil {
					s.want = []string{}
				}
				if !reflect.DeepEqual(list, s.want) {
					t.Errorf("%s = %v, want %v", s.service, list, s.want)
				}
			}
			if got.ValidFrom != c.want.validFrom {
				t.Errorf("valid from %d, want %d", got.ValidFrom, c.want.validFrom)
			}
			switch {
			case (got.ValidUntil == nil) != (c.want.validUntil == nil):
				t.Errorf("valid until %v, want %v", entDeref(got.ValidUntil), entDeref(c.want.validUntil))
			case got.ValidUntil != nil && *got.ValidUntil != *c.want.validUntil:
				t.Errorf("valid until %d, want %d", *got.ValidUntil, *c.want.validUntil)
			}
			if !got.ValidAt(c.t) {
				t.Errorf("the answer is not valid at the instant it was computed for")
			}
		})
	}
}

func entDeref(p *int64) any {
	if p == nil {
		return "null"
	}
	return *p
}

// TestEntitlementsWindow checks the window property: at every instant of
// [ValidFrom, ValidUntil) the answer is the same, and it differs just
// outside whenever the window is bounded.
func TestEntitlementsWindow(t *testing.T) {
	licenses := []licensor.License{
		entLicense(1, 1, 10, 40), entLicense(2, 2, 30, 60), entLicense(3, 4, 45, 0),
		entWithStatus(entLicense(4, 3, 20, 50), licensor.StatusSuspended),
		entLicense(5, 3, 70, 80),
	}
	for at := int64(0); at < 100; at++ {
		e := entAt(licenses, at)
		lo := max(e.ValidFrom, 0)
		hi := int64(100)
		if e.ValidUntil != nil {
			hi = *e.ValidUntil
		}
		for u := lo; u < hi; u++ {
			if o := entAt(licenses, u); !reflect.DeepEqual(o.ids, e.ids) || !reflect.DeepEqual(o.channels, e.channels) {
				t.Fatalf("at %d the answer differs from the one at %d inside its window [%d, %d)", u, at, lo, hi)
			}
		}
		if e.ValidUntil != nil {
			if o := entAt(licenses, hi); reflect.DeepEqual(o.ids, e.ids) && reflect.DeepEqual(o.channels, e.channels) {
				// Not wrong (valid_until may be conservative), but with
				// these licenses every edge changes the answer.
				t.Errorf("at %d: valid_until %d does not change the answer", at, hi)
			}
		}
	}
}

// TestEntitlementsProductError: the first error of the product lookup is
// the rule's.
func TestEntitlementsProductError(t *testing.T) {
	g, _ := licensor.GrantOf(&licensor.License{ID: 1, ProductID: 1, Status: licensor.StatusActive})
	down := errors.New("down")
	_, err := licensor.EntitlementsAt([]licensor.Grant{g}, 0, func(int64) (*licensor.Product, bool, error) { return nil, false, down })
	if err != down {
		t.Fatalf("error %v, want %v", err, down)
	}
}

// TestGrantOf: only ACTIVE licenses have grants, which keep the license
// and product ids.
func TestGrantOf(t *testing.T) {
	for _, s := range licensor.Statuses() {
		l := entWithStatus(entLicense(7, 3, 0, 10), s)
		g, ok := licensor.GrantOf(&l)
		if ok != (s == licensor.StatusActive) {
			t.Errorf("GrantOf(%s license) ok = %v", s, ok)
		}
		if ok && (g.LicenseID() != 7 || g.ProductID() != 3) {
			t.Errorf("grant of license 7 of product 3: license %d, product %d", g.LicenseID(), g.ProductID())
		}
	}
	l := entLicense(8, 4, 0, 0) // no stop_date
	if g, _ := licensor.GrantOf(&l); g.ProductID() != 4 {
		t.Errorf("endless grant: product %d, want 4", g.ProductID())
	}
}

func TestParseService(t *testing.T) {
	for _, s := range licensor.Services() {
		if got, ok := licensor.ParseService(string(s)); !ok || got != s {
			t.Errorf("ParseService(%q) = %q, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "LIVE", "vod", "live "} {
		if _, ok := licensor.ParseService(s); ok {
			t.Errorf("ParseService(%q) accepted", s)
		}
	}
}

// TestListsAreCopies: the root's lists are functions returning a new
// slice, so a caller that changes one changes nobody else's.
func TestListsAreCopies(t *testing.T) {
	s := licensor.Services()
	s[0] = "vod"
	st := licensor.Statuses()
	st[0] = "GONE"
	ev := licensor.EventTypes()
	ev[0] = "gone"
	for _, l := range [][]string{licensor.LicenseSortFields(), licensor.LicenseRangeFields(), licensor.RangeOps(),
		licensor.ProductSortFields(), licensor.KnownProductTypes()} {
		l[0] = "changed"
	}
	if _, ok := licensor.ParseService("live"); licensor.Services()[0] != licensor.ServiceLive || !ok {
		t.Error("Services changed")
	}
	if licensor.Statuses()[0] != licensor.StatusProcessing || !licensor.StatusProcessing.Valid() {
		t.Error("Statuses changed")
	}
	if licensor.EventTypes()[0] != licensor.EventLicenseCreated || !licensor.EventLicenseCreated.Valid() {
		t.Error("EventTypes changed")
	}
	if licensor.LicenseSortFields()[0] != "id" || licensor.LicenseRangeFields()[0] != "start_date" || licensor.RangeOps()[0] != "gt" ||
		licensor.ProductSortFields()[0] != "id" || licensor.KnownProductTypes()[0] != "CHANNEL_GROUP" {
		t.Error("a list changed")
	}
}
