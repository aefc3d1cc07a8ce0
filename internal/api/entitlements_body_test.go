package api

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/entitlement"
	"github.com/licensor/licensor/internal/sqlite"
)

// The entitlement answer as encoding/json writes it: what the hand-written
// encoder (entitlementJSON) must match byte for byte.
type (
	entitlementsDocument struct {
		Data entitlementsResource `json:"data"`
	}
	entitlementsResource struct {
		ID            string                 `json:"id"` // the user id
		Type          string                 `json:"type"`
		Attributes    entitlementsAttributes `json:"attributes"`
		Relationships entitlementsRelations  `json:"relationships"`
	}
	entitlementsAttributes struct {
		ValidUntil *int64 `json:"valid_until"`
	}
	entitlementsRelations struct {
		User      toOne  `json:"user"`
		Products  toMany `json:"products"`
		Live      toMany `json:"live"`
		Catchup   toMany `json:"catchup"`
		NPVR      toMany `json:"npvr"`
		Startover toMany `json:"startover"`
	}
)

// entitlementsOut is the resource of the entitlements e of user: its
// products and the channels they list, per service, ascending and
// distinct.
func entitlementsOut(user string, e *licensor.Entitlements[*licensor.Product]) entitlementsResource {
	channels := func(s licensor.Service) toMany {
		var ids []string
		for _, p := range e.Products {
			ids = append(ids, p.Channels[s]...)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		out := toMany{Data: make([]identifier, len(ids))}
		for i, c := range ids {
			out.Data[i] = identifier{Type: "Channel", ID: c}
		}
		return out
	}
	products := toMany{Data: make([]identifier, len(e.Products))}
	for i, p := range e.Products {
		products.Data[i] = identifier{Type: "Product", ID: id(p.ID)}
	}
	return entitlementsResource{
		ID:         user,
		Type:       "Entitlements",
		Attributes: entitlementsAttributes{ValidUntil: e.ValidUntil},
		Relationships: entitlementsRelations{
			User:      toOne{Data: identifier{Type: "User", ID: user}},
			Products:  products,
			Live:      channels(licensor.ServiceLive),
			Catchup:   channels(licensor.ServiceCatchup),
			NPVR:      channels(licensor.ServiceNPVR),
			Startover: channels(licensor.ServiceStartover),
		},
	}
}

// TestEntitlementBodyMatchesJSON: the body of every answer of the server's
// entitlement cache, over random products (channels unsorted, repeated,
// missing) and licenses (every status, dates around 1000) in SQLite, is
// byte for byte what encoding/json makes of licensor.EntitlementsAt, and
// its size is the one the cache recorded with its ETag.
func TestEntitlementBodyMatchesJSON(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "body.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	c := licensor.Change{Time: 1_750_000_000, Actor: "test"}
	products := map[int64]*licensor.Product{}
	for i := range 8 {
		p := licensor.NewProduct("product " + strconv.Itoa(i))
		for _, s := range licensor.Services() {
			if r.IntN(3) == 0 {
				continue
			}
			for range r.IntN(6) {
				p.Channels[s] = append(p.Channels[s], "ch"+strconv.Itoa(r.IntN(12)))
			}
		}
		if err := db.CreateProduct(ctx, &p, c); err != nil {
			t.Fatal(err)
		}
		products[p.ID] = &p
	}
	var users []string
	for i := range 60 {
		u := "user" + strconv.Itoa(i)
		users = append(users, u)
		var drafts []licensor.LicenseDraft
		for range r.IntN(6) {
			status := licensor.StatusActive
			if r.IntN(5) == 0 {
				status = licensor.Statuses()[r.IntN(len(licensor.Statuses()))]
			}
			start := r.Int64N(2000)
			d := licensor.LicenseDraft{UserID: u, ProductID: 1 + r.Int64N(8), Status: &status, StartDate: &start}
			if r.IntN(3) > 0 {
				stop := start + 1 + r.Int64N(1500)
				d.StopDate = &stop
			}
			drafts = append(drafts, d)
		}
		if len(drafts) > 0 {
			if _, err := db.CreateLicenses(ctx, drafts, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	users = append(users, "u<&>\"x\u2028") // needs escaping (not a valid id, but never mis-encoded)
	srv := New(db, Options{EndUser: EndUserOptions{Cache: entitlement.Options{TTL: time.Hour}}})
	for _, u := range users {
		page, err := db.FindLicenses(ctx, licensor.LicenseQuery{Filter: licensor.LicenseFilter{UserID: &u},
			Sort: licensor.SortOrder{Field: "id"}, Limit: licensor.MaxPageSize, Now: math.MinInt64})
		if err != nil {
			t.Fatal(err)
		}
		var grants []licensor.Grant
		for i := range page.Licenses {
			if g, ok := licensor.GrantOf(&page.Licenses[i]); ok {
				grants = append(grants, g)
			}
		}
		for _, at := range []int64{-1, 0, 500, 999, 1000, 1500, 3000, math.MaxInt64} {
			want, err := licensor.EntitlementsAt(grants, at, func(id int64) (*licensor.Product, bool, error) {
				p, ok := products[id]
				return p, ok, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			wantBody, _ := json.Marshal(entitlementsDocument{Data: entitlementsOut(u, &want)})
			ans, err := srv.endUser.cache.Answer(ctx, u, at)
			if err != nil {
				t.Fatal(err)
			}
			if got := (entitlementJSON{}).AppendAnswer(nil, u, ans); string(got) != string(wantBody) {
				t.Fatalf("user %s at %d:\n got %s\nwant %s", u, at, got, wantBody)
			}
			if ans.Size() != len(wantBody) {
				t.Fatalf("user %s at %d: size %d, want %d", u, at, ans.Size(), len(wantBody))
			}
		}
	}
}
