package client_test

import (
	"context"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/testdb"
)

// TestRenewalAgainstServer: a product's renewal mode both ways, a
// successor made with RenewedFrom and the links read back, CancelRenewal
// and its refusal.
func TestRenewalAgainstServer(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		l := newLive(t, e)
		ctx := context.Background()
		p := l.product("Monthly", func(p *licensor.Product) { p.Recurring, p.RenewalMode = true, licensor.RenewalNotify })
		if p.RenewalMode != licensor.RenewalNotify {
			t.Errorf("CreateProduct renewal mode = %q", p.RenewalMode)
		}
		clear := licensor.RenewalMode("")
		if q, _, err := l.writer.UpdateProduct(ctx, p.ID, licensor.ProductPatch{RenewalMode: &clear}, ""); err != nil || q.RenewalMode != "" {
			t.Errorf("UpdateProduct clearing the renewal mode = %+v, %v", q, err)
		}
		a, err := l.writer.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: p.ID})
		if err != nil || a.Renewal != licensor.RenewalPending {
			t.Fatalf("CreateLicense = %+v, %v", a, err)
		}
		b, err := l.writer.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: p.ID, RenewedFrom: &a.ID})
		if err != nil || b.StartDate != *a.StopDate || b.RenewedFrom == nil || *b.RenewedFrom != a.ID {
			t.Fatalf("CreateLicense of the successor = %+v, %v", b, err)
		}
		got, err := l.reader.License(ctx, a.ID)
		if err != nil || got.Renewal != licensor.RenewalRenewed || got.RenewedBy == nil || *got.RenewedBy != b.ID {
			t.Fatalf("License of the predecessor = %+v, %v", got, err)
		}
		r, err := l.writer.CancelRenewal(ctx, b.ID, "subscriber cancelled")
		if err != nil || !r.Changed || r.PreviousRenewal != licensor.RenewalPending || r.License.Renewal != licensor.RenewalCancelled {
			t.Fatalf("CancelRenewal = %+v, %v", r, err)
		}
		if r, err = l.writer.CancelRenewal(ctx, b.ID, ""); err != nil || r.Changed {
			t.Errorf("CancelRenewal again = %+v, %v", r, err)
		}
		_, err = l.writer.CancelRenewal(ctx, a.ID, "")
		apiError(t, err, 409, licensor.CodeRenewalClosed)
	})
}
