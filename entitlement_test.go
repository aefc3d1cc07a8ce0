package licensor_test

import (
	"math"
	"reflect"
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

func entProduct(id int64) *licensor.Product { return entCatalog[id] }

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
			got := licensor.EntitlementsAt(c.licenses, entProduct, c.t)
			if !reflect.DeepEqual(got.Products, c.want.products) {
				t.Errorf("products = %v, want %v", got.Products, c.want.products)
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
				list, ok := got.Channels[s.service]
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
		e := licensor.EntitlementsAt(licenses, entProduct, at)
		lo := max(e.ValidFrom, 0)
		hi := int64(100)
		if e.ValidUntil != nil {
			hi = *e.ValidUntil
		}
		for u := lo; u < hi; u++ {
			if o := licensor.EntitlementsAt(licenses, entProduct, u); !reflect.DeepEqual(o.Products, e.Products) || !reflect.DeepEqual(o.Channels, e.Channels) {
				t.Fatalf("at %d the answer differs from the one at %d inside its window [%d, %d)", u, at, lo, hi)
			}
		}
		if e.ValidUntil != nil {
			if o := licensor.EntitlementsAt(licenses, entProduct, hi); reflect.DeepEqual(o.Products, e.Products) && reflect.DeepEqual(o.Channels, e.Channels) {
				// Not wrong (valid_until may be conservative), but with
				// these licenses every edge changes the answer.
				t.Errorf("at %d: valid_until %d does not change the answer", at, hi)
			}
		}
	}
}

func TestEntitlementsAllows(t *testing.T) {
	e := licensor.EntitlementsAt([]licensor.License{entLicense(1, 1, 0, 0), entLicense(2, 2, 0, 0), entLicense(3, 3, 0, 0)}, entProduct, 5)
	for _, c := range []struct {
		s       licensor.Service
		channel string
		want    bool
	}{
		{licensor.ServiceLive, "espn", true},
		{licensor.ServiceLive, "cnn", true},
		{licensor.ServiceLive, "eurosport", true},
		{licensor.ServiceLive, "bbc", false},
		{licensor.ServiceCatchup, "espn", true},
		{licensor.ServiceCatchup, "cnn", false},
		{licensor.ServiceNPVR, "cnn", true},
		{licensor.ServiceNPVR, "espn", false},
		{licensor.ServiceStartover, "espn", false},
		{licensor.ServiceLive, "", false},
		{licensor.Service("vod"), "espn", false},
	} {
		if got := e.Allows(c.s, c.channel); got != c.want {
			t.Errorf("Allows(%s, %q) = %v, want %v", c.s, c.channel, got, c.want)
		}
	}
	for id, want := range map[int64]bool{1: true, 2: true, 3: true, 4: false} {
		if e.Holds(id) != want {
			t.Errorf("Holds(%d) = %v, want %v", id, !want, want)
		}
	}
}

func TestParseService(t *testing.T) {
	for _, s := range licensor.Services {
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
