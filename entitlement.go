package licensor

import (
	"cmp"
	"math"
	"slices"
)

// A Grant is an ACTIVE license as the entitlement rule reads it: the
// license's id, its product, and the interval [start_date, stop_date) in
// which it entitles (never ending when stop_date is null). A license in any
// other status never entitles, nor bounds an answer's validity, so it has
// no Grant. Grants are what entitlement caches hold, one per license: 32
// bytes each.
type Grant struct {
	license int64
	product int64 // negated: the license has no stop_date
	start   int64
	stop    int64
}

// A UserGrant is a live license's user, with the license's Grant when it
// is ACTIVE (Store.ListGrants).
type UserGrant struct {
	User   string
	Active bool // Grant is set
	Grant
}

// GrantOf returns the grant of l, and false when l is not ACTIVE (as
// stored: an ACTIVE license past its stop_date is simply outside its
// interval).
func GrantOf(l *License) (Grant, bool) {
	if l.Status != StatusActive {
		return Grant{}, false
	}
	return NewGrant(l.ID, l.ProductID, l.StartDate, l.StopDate), true
}

// NewGrant is the grant of the ACTIVE license id of product, from start to
// stop (nil: no stop_date), as GrantOf makes it.
func NewGrant(id, product, start int64, stop *int64) Grant {
	g := Grant{license: id, product: product, start: start}
	if stop != nil {
		g.stop = *stop
	} else {
		g.product = -g.product
	}
	return g
}

// LicenseID is the id of the grant's license.
func (g *Grant) LicenseID() int64 { return g.license }

// ProductID is the id of the grant's product.
func (g *Grant) ProductID() int64 { return max(g.product, -g.product) }

// endless reports whether the license has no stop_date.
func (g *Grant) endless() bool { return g.product < 0 }

// Entitlements is what one user may use at one instant t: the products of
// the user's grants whose interval contains t; the channels a user may
// use, per service, are those these products list.
//
// The answer is the same for every instant in [ValidFrom, ValidUntil):
// within that window only a write (a license created or deleted, a product
// changed) can change it, never the passing of time.
type Entitlements[P any] struct {
	// Products are the entitling products, ascending by id and distinct.
	// A product that grants no channel is listed too: the user holds it
	// (an SVOD or TVOD product, say).
	Products []P
	// ValidFrom is the latest start_date or stop_date at or before t among
	// the grants: the instant the answer last changed. math.MinInt64 when
	// no such instant exists.
	ValidFrom int64
	// ValidUntil is the next instant the answer can change: the earliest
	// start_date or stop_date after t among the grants. Nil when there is
	// none: the answer holds until a write changes it.
	ValidUntil *int64
}

// ValidAt reports whether the entitlements computed for some instant are
// also the answer at t (t is inside [ValidFrom, ValidUntil)).
func (e *Entitlements[P]) ValidAt(t int64) bool {
	return e.ValidFrom <= t && (e.ValidUntil == nil || t < *e.ValidUntil)
}

// EntitlementsAt is the entitlement rule: the entitlements at unix time t
// of a user whose live ACTIVE licenses are grants. product returns a
// grant's product (in whatever form the caller holds products), or false
// when it does not exist (any more): such grants entitle to nothing and do
// not bound the answer's validity. The first error of product is
// returned.
func EntitlementsAt[P any](grants []Grant, t int64, product func(id int64) (P, bool, error)) (Entitlements[P], error) {
	e := Entitlements[P]{ValidFrom: math.MinInt64}
	until := int64(math.MaxInt64)
	edge := func(at int64) {
		if at <= t {
			e.ValidFrom = max(e.ValidFrom, at)
		} else {
			until = min(until, at)
		}
	}
	type held struct {
		id int64
		p  P
	}
	var buf [8]held
	entitling := buf[:0]
	for i := range grants {
		g := &grants[i]
		id := g.ProductID()
		p, ok, err := product(id)
		if err != nil {
			return Entitlements[P]{}, err
		}
		if !ok {
			continue
		}
		edge(g.start)
		if !g.endless() {
			edge(g.stop)
		}
		if g.start <= t && (g.endless() || t < g.stop) {
			entitling = append(entitling, held{id, p})
		}
	}
	slices.SortFunc(entitling, func(a, b held) int { return cmp.Compare(a.id, b.id) })
	entitling = slices.CompactFunc(entitling, func(a, b held) bool { return a.id == b.id })
	e.Products = make([]P, len(entitling))
	for i, h := range entitling {
		e.Products[i] = h.p
	}
	if until != math.MaxInt64 {
		e.ValidUntil = &until
	}
	return e, nil
}

// ParseService returns the service named s, and whether there is one.
func ParseService(s string) (Service, bool) {
	for _, v := range services {
		if string(v) == s {
			return v, true
		}
	}
	return "", false
}
