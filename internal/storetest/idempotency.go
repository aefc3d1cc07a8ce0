package storetest

import (
	"reflect"
	"testing"

	"github.com/licensor/licensor"
)

// testIdempotency checks the idempotency keys of a store: claim, replay,
// reuse with another request, in-flight, take-over of a stale claim, and a
// response stored with its write.
func testIdempotency(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := licensor.NewProduct("p")
	if err := s.CreateProduct(ctx, &p, licensor.Change{Time: 1}); err != nil {
		t.Fatal(err)
	}
	claimOf := func(key, fp string) *licensor.IdempotencyClaim {
		return &licensor.IdempotencyClaim{APIKeyID: 1, Key: key, Fingerprint: fp, ExpiresAt: 1000,
			Render: licensor.Renders{Licenses: func(ls []licensor.License) (licensor.StoredResponse, error) {
				return licensor.StoredResponse{Status: 201, Headers: map[string]string{"Location": "/licenses"},
					Body: []byte{byte(len(ls))}}, nil
			}}}
	}
	claim := func(c *licensor.IdempotencyClaim, now, staleBefore int64, want licensor.Code) *licensor.StoredResponse {
		t.Helper()
		r, err := s.ClaimIdempotencyKey(ctx, c, now, staleBefore)
		if got := licensor.ErrorCode(err); got != want {
			t.Fatalf("Claim(%s, %s): got %v, want %q", c.Key, c.Fingerprint, err, want)
		}
		return r
	}
	create := func(c *licensor.IdempotencyClaim, orderID string) error {
		_, err := s.CreateLicenses(ctx, []licensor.LicenseDraft{{UserID: "u", ProductID: p.ID, OrderID: &orderID}},
			licensor.Change{Time: 10, Idempotency: c})
		return err
	}

	// A fresh key is held; a repeat is in flight; another request is refused.
	a := claimOf("a", "fp1")
	if r := claim(a, 10, 0, ""); r != nil {
		t.Fatalf("fresh claim replayed %+v", r)
	}
	claim(claimOf("a", "fp1"), 11, 0, licensor.CodeIdempotencyKeyInFlight)
	claim(claimOf("a", "fp2"), 11, 0, licensor.CodeIdempotencyKeyReused)
	claim(claimOf("a", "fp1"), 11, 0, licensor.CodeIdempotencyKeyInFlight)
	if r := claim(&licensor.IdempotencyClaim{APIKeyID: 2, Key: "a", Fingerprint: "fp1", ExpiresAt: 1000}, 11, 0, ""); r != nil {
		t.Fatal("keys of another API key interfere")
	}

	// A write stores its response with it, and repeats replay it.
	if err := create(a, "o1"); err != nil {
		t.Fatal(err)
	}
	if !a.Stored {
		t.Fatal("Stored not set after the write")
	}
	want := licensor.StoredResponse{Status: 201, Headers: map[string]string{"Location": "/licenses"}, Body: []byte{1}}
	if r := claim(claimOf("a", "fp1"), 12, 0, ""); r == nil || !reflect.DeepEqual(*r, want) {
		t.Fatalf("replay: got %+v, want %+v", r, want)
	}
	claim(claimOf("a", "fp2"), 12, 0, licensor.CodeIdempotencyKeyReused)

	// A failed write stores nothing and keeps the key held.
	b := claimOf("b", "fp1")
	claim(b, 10, 0, "")
	if err := create(b, "o1"); licensor.ErrorCode(err) != licensor.CodeOrderIDConflict || b.Stored {
		t.Fatalf("conflicting write: %v, stored %v", err, b.Stored)
	}
	claim(claimOf("b", "fp1"), 11, 0, licensor.CodeIdempotencyKeyInFlight)
	// Complete stores an error response.
	if err := s.CompleteIdempotencyKey(ctx, b, licensor.StoredResponse{Status: 409, Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if r := claim(claimOf("b", "fp1"), 11, 0, ""); r == nil || r.Status != 409 || string(r.Body) != "x" {
		t.Fatalf("replay of the completed key: %+v", r)
	}

	// Release frees a held key; a completed one stays.
	c := claimOf("c", "fp1")
	claim(c, 10, 0, "")
	if err := s.ReleaseIdempotencyKey(ctx, c); err != nil {
		t.Fatal(err)
	}
	claim(claimOf("c", "fp1"), 11, 0, "")
	if err := s.ReleaseIdempotencyKey(ctx, claimOf("b", "fp1")); err != nil {
		t.Fatal(err)
	}
	claim(claimOf("b", "fp1"), 11, 0, "")

	// A stale holder is taken over; its late write then fails and writes nothing.
	d := claimOf("d", "fp1")
	claim(d, 10, 0, "")
	d2 := claimOf("d", "fp1")
	claim(d2, 100, 50, "")
	if err := s.CompleteIdempotencyKey(ctx, d2, licensor.StoredResponse{Status: 400}); err != nil {
		t.Fatal(err)
	}
	if err := create(d, "o-late"); licensor.ErrorCode(err) != licensor.CodeIdempotencyKeyInFlight || d.Stored {
		t.Fatalf("late write of a taken-over key: %v", err)
	}
	page, err := s.FindLicenses(ctx, licensor.LicenseQuery{Filter: licensor.LicenseFilter{OrderID: new("o-late")}, Limit: 10})
	if err != nil || len(page.Licenses) != 0 {
		t.Fatalf("the late write was kept: %v, %v", page, err)
	}

	// Expired keys are free again, and pruned.
	e := claimOf("e", "fp1")
	e.ExpiresAt = 20
	claim(e, 10, 0, "")
	if err := s.CompleteIdempotencyKey(ctx, e, licensor.StoredResponse{Status: 201}); err != nil {
		t.Fatal(err)
	}
	claim(claimOf("e", "fp2"), 21, 0, "")
	f := claimOf("f", "fp1")
	f.ExpiresAt = 30
	claim(f, 10, 0, "")
	n, err := s.PruneIdempotencyKeys(ctx, 31)
	if err != nil || n != 1 {
		t.Fatalf("Prune: %d, %v", n, err)
	}
	claim(claimOf("f", "fp2"), 32, 0, "")

	// Other writes store their own results.
	g := &licensor.IdempotencyClaim{APIKeyID: 1, Key: "g", Fingerprint: "fp", ExpiresAt: 1000,
		Render: licensor.Renders{Product: func(pr *licensor.Product) (licensor.StoredResponse, error) {
			return licensor.StoredResponse{Status: 201, Headers: map[string]string{"ETag": pr.ETag()}}, nil
		}}}
	claim(g, 10, 0, "")
	q := licensor.NewProduct("q")
	if err := s.CreateProduct(ctx, &q, licensor.Change{Time: 10, Idempotency: g}); err != nil || !g.Stored {
		t.Fatal(err)
	}
	if r := claim(claimOf("g", "fp"), 11, 0, ""); r == nil || r.Headers["ETag"] != q.ETag() {
		t.Fatalf("CreateProduct replay: %+v", r)
	}
	h := &licensor.IdempotencyClaim{APIKeyID: 1, Key: "h", Fingerprint: "fp", ExpiresAt: 1000,
		Render: licensor.Renders{Deleted: func(dr licensor.DeleteResult) (licensor.StoredResponse, error) {
			return licensor.StoredResponse{Status: 200, Body: []byte{byte(len(dr.Deleted)), byte(len(dr.Missing))}}, nil
		}}}
	claim(h, 10, 0, "")
	all, err := s.FindLicenses(ctx, licensor.LicenseQuery{Limit: 10})
	if err != nil || len(all.Licenses) != 1 {
		t.Fatalf("FindLicenses: %v, %v", all, err)
	}
	if _, _, err := s.DeleteLicenses(ctx, []int64{all.Licenses[0].ID, 999}, true, licensor.Change{Time: 10, Idempotency: h}); err != nil || !h.Stored {
		t.Fatal(err)
	}
	if r := claim(claimOf("h", "fp"), 11, 0, ""); r == nil || !reflect.DeepEqual(r.Body, []byte{1, 1}) {
		t.Fatalf("DeleteLicenses replay: %+v", r)
	}
}
