package licensor

import (
	"cmp"
	"math"
	"slices"
)

// Entitlements is what one user may use at one instant t: the products of
// the user's ACTIVE licenses whose interval contains t (start_date <= t <
// stop_date, a null stop_date never ending), and the channels those
// products grant, per service.
//
// The answer is the same for every instant in [ValidFrom, ValidUntil):
// within that window only a write (a license created or deleted, a product
// changed) can change it, never the passing of time.
type Entitlements struct {
	// Products are the ids of the entitling products, ascending and
	// distinct. A product that grants no channel is listed too: the user
	// holds it (an SVOD or TVOD product, say).
	Products []int64
	// Channels holds, for every service of Services, the channel ids the
	// entitling products grant for it, ascending and distinct (an empty,
	// non-nil list when none).
	Channels Channels
	// ValidFrom is the latest start_date or stop_date at or before t among
	// the user's ACTIVE licenses: the instant the answer last changed.
	// math.MinInt64 when no such instant exists.
	ValidFrom int64
	// ValidUntil is the next instant the answer can change: the earliest
	// start_date or stop_date after t among the user's ACTIVE licenses. Nil
	// when there is none: the answer holds until a write changes it.
	ValidUntil *int64
}

// EntitlementsAt computes the entitlements of a user at unix time t from
// that user's live licenses. product returns a license's product, or nil
// when it does not exist (any more): such licenses grant nothing.
//
// Only ACTIVE licenses count, for the answer and for its validity window:
// the dates of a license in any other status never change the answer.
// Statuses are taken as stored: an ACTIVE license past its stop_date is
// simply outside its interval.
func EntitlementsAt(licenses []License, product func(id int64) *Product, t int64) Entitlements {
	e := Entitlements{Channels: make(Channels, len(Services)), ValidFrom: math.MinInt64}
	var until int64 = math.MaxInt64
	edge := func(at int64) {
		switch {
		case at <= t:
			e.ValidFrom = max(e.ValidFrom, at)
		default:
			until = min(until, at)
		}
	}
	var products []*Product
	for i := range licenses {
		l := &licenses[i]
		if l.Status != StatusActive {
			continue
		}
		p := product(l.ProductID)
		if p == nil {
			continue
		}
		edge(l.StartDate)
		if l.StopDate != nil {
			edge(*l.StopDate)
		}
		if l.EntitledAt(t) {
			products = append(products, p)
		}
	}
	slices.SortFunc(products, func(a, b *Product) int { return cmp.Compare(a.ID, b.ID) })
	products = slices.CompactFunc(products, func(a, b *Product) bool { return a.ID == b.ID })
	e.Products = make([]int64, len(products))
	for i, p := range products {
		e.Products[i] = p.ID
	}
	for _, s := range Services {
		var ids []string
		for _, p := range products {
			ids = append(ids, p.Channels[s]...)
		}
		slices.Sort(ids)
		e.Channels[s] = append(make([]string, 0, len(ids)), slices.Compact(ids)...)
	}
	if until != math.MaxInt64 {
		e.ValidUntil = &until
	}
	return e
}

// Allows reports whether the entitlements include channel for service s.
func (e *Entitlements) Allows(s Service, channel string) bool {
	_, found := slices.BinarySearch(e.Channels[s], channel)
	return found
}

// Holds reports whether the entitlements include the product.
func (e *Entitlements) Holds(productID int64) bool {
	_, found := slices.BinarySearch(e.Products, productID)
	return found
}

// ValidAt reports whether the entitlements computed for some instant are
// also the answer at t (t is inside [ValidFrom, ValidUntil)).
func (e *Entitlements) ValidAt(t int64) bool {
	return e.ValidFrom <= t && (e.ValidUntil == nil || t < *e.ValidUntil)
}

// ParseService returns the service named s, and whether there is one.
func ParseService(s string) (Service, bool) {
	for _, v := range Services {
		if string(v) == s {
			return v, true
		}
	}
	return "", false
}
