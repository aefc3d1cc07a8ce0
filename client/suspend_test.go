package client_test

import (
	"context"
	"slices"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/client"
	"github.com/licensor/licensor/internal/testdb"
)

func TestSuspensionAgainstServer(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		l := newLive(t, e)
		ctx := context.Background()
		p := l.product("Sports", func(p *licensor.Product) { p.Channels = licensor.Channels{licensor.ServiceLive: {"c1"}} })
		a, err := l.writer.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: p.ID})
		if err != nil {
			t.Fatal(err)
		}
		b, err := l.writer.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: p.ID})
		if err != nil {
			t.Fatal(err)
		}

		r, err := l.writer.SuspendLicense(ctx, a.ID, client.Suspension{Reason: "unpaid"})
		if err != nil || !r.Changed || r.PreviousStatus != licensor.StatusActive || r.License.Status != licensor.StatusSuspended ||
			r.License.ID != a.ID || *r.License.StopDate != *a.StopDate {
			t.Fatalf("SuspendLicense = %+v, %v", r, err)
		}
		if ent, _, err := l.reader.UserEntitlements(ctx, "41", 0); err != nil || !slices.Equal(ent.Products, []int64{p.ID}) {
			t.Errorf("entitlements with one of two licenses suspended = %+v, %v", ent, err)
		}
		if r, err = l.writer.SuspendLicense(ctx, a.ID, client.Suspension{}); err != nil || r.Changed {
			t.Errorf("SuspendLicense again = %+v, %v", r, err)
		}
		_, err = l.reader.SuspendLicense(ctx, a.ID, client.Suspension{})
		apiError(t, err, 403, licensor.CodeInsufficientScope)
		_, err = l.writer.SuspendLicense(ctx, a.ID+100, client.Suspension{})
		apiError(t, err, 404, licensor.CodeLicenseNotFound)

		u, err := l.writer.SuspendUserLicenses(ctx, "41", client.Suspension{Status: licensor.StatusSuspendedAdmin, Reason: "chargeback"})
		if err != nil || len(u.Licenses) != 2 || !slices.Equal(u.Changed, []int64{a.ID, b.ID}) || len(u.Unchanged) != 0 || len(u.Refused) != 0 {
			t.Fatalf("SuspendUserLicenses = %+v, %v", u, err)
		}
		if ent, _, err := l.reader.UserEntitlements(ctx, "41", 0); err != nil || len(ent.Products) != 0 {
			t.Errorf("entitlements with every license suspended = %+v, %v", ent, err)
		}
		_, err = l.writer.ReinstateLicense(ctx, a.ID, client.Suspension{})
		apiError(t, err, 409, licensor.CodeLicenseSuspendedAdmin)
		u, err = l.writer.ReinstateUserLicenses(ctx, "41", client.Suspension{})
		if err != nil || len(u.Changed) != 0 || len(u.Refused) != 2 || u.Refused[0].ID != a.ID || u.Refused[0].Code != licensor.CodeLicenseSuspendedAdmin {
			t.Fatalf("plain ReinstateUserLicenses of SUSPENDEDADMIN = %+v, %v", u, err)
		}
		if r, err = l.writer.ReinstateLicense(ctx, a.ID, client.Suspension{Status: licensor.StatusSuspendedAdmin}); err != nil || !r.Changed ||
			r.License.Status != licensor.StatusActive || r.PreviousStatus != licensor.StatusSuspendedAdmin {
			t.Fatalf("ReinstateLicense SUSPENDEDADMIN = %+v, %v", r, err)
		}
		if u, err = l.writer.ReinstateUserLicenses(ctx, "41", client.Suspension{Status: licensor.StatusSuspendedAdmin}); err != nil ||
			!slices.Equal(u.Changed, []int64{b.ID}) || !slices.Equal(u.Unchanged, []int64{a.ID}) {
			t.Fatalf("ReinstateUserLicenses = %+v, %v", u, err)
		}
		page, err := l.reader.Events(ctx, client.EventQuery{Types: []licensor.EventType{licensor.EventLicenseSuspended, licensor.EventLicenseReinstated}})
		if err != nil || len(page.Events) != 5 {
			t.Fatalf("suspension events = %d, %v; want 5", len(page.Events), err)
		}
		if ev := page.Events[0]; ev.Type != licensor.EventLicenseSuspended || ev.Actor != "writer" || ev.LicenseID != a.ID {
			t.Errorf("first suspension event = %+v", ev)
		}
	})
}
