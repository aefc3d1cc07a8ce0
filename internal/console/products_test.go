package console_test

import (
	"strings"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/testdb"
)

// TestProductsInBrowser: the product list, create (a bad value refused
// with the form kept), edit, an edit that meets a newer version (412: shown,
// not lost, nothing written), and delete with the live-license count:
// refused without cascade, done with it; each write in the change feed
// with the key as actor.
func TestProductsInBrowser(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		f := newFixture(t, e.Open(t))
		b := newBrowser(t)
		shots := e.Name == "sqlite"
		ctx := t.Context()
		f.signin(t, b, f.writeKey)

		b.open(t, f.url("/products"))
		if got := b.text(t, "main table"); !strings.Contains(got, "Sports") || !strings.Contains(got, "espn, eurosport") {
			t.Errorf("product list:\n%s", got)
		}
		b.axe(t, "products")
		if shots {
			t.Log("screenshot:", b.screenshot(t, "products"))
		}

		// Create: a bad currency and a bad channel id first, then a good product.
		b.submit(t, "a[href='/console/products/new']", nil)
		b.axe(t, "new product")
		b.submit(t, "form[action='/console/products'] button", map[string]string{"#e-title": "Cinema", "#e-price": "999", "#e-currency": "XXY", "#e-ch-live": "hbo, cinemax"})
		if got := b.text(t, "#problem"); !strings.Contains(got, "currency") {
			t.Errorf("bad currency: %q", got)
		}
		if got := eval[string](t, b, `document.querySelector("#e-ch-live").value`); got != "hbo, cinemax" {
			t.Errorf("the form lost its channels: %q", got)
		}
		// A bad channel id: the message names the service; the form is kept.
		b.submit(t, "form[action='/console/products'] button", map[string]string{"#e-currency": "EUR", "#e-ch-npvr": "hbo, bad/id"})
		if got := b.text(t, "#problem"); !strings.Contains(got, "channels of npvr") || !strings.Contains(got, `"bad/id"`) {
			t.Errorf("bad channel id: %q", got)
		}
		if got := eval[string](t, b, `document.querySelector("#e-ch-npvr").value`); got != "hbo, bad/id" {
			t.Errorf("the form lost its npvr channels: %q", got)
		}
		b.run(t, discard(eval2(`document.querySelector("#e-ch-npvr").value = ""; ""`)))
		b.submit(t, "form[action='/console/products'] button", map[string]string{"#e-currency": "EUR", "#e-period": "P1M"})
		if got := b.text(t, "[role=status]"); !strings.Contains(got, "Created") {
			t.Fatalf("after create: %q\n%s", got, b.text(t, "main"))
		}
		ev := f.lastEvent(t)
		p, err := f.store.FindProductByID(ctx, ev.ProductID)
		if err != nil || ev.Type != licensor.EventProductCreated || ev.Actor != "ops-alice" || p.Title != "Cinema" || *p.PriceAmount != 999 ||
			p.LicensePeriod != "P1M" || strings.Join(p.Channels[licensor.ServiceLive], ",") != "hbo,cinemax" {
			t.Fatalf("created: %+v %v; event %+v", p, err, ev)
		}

		// Edit.
		b.submit(t, "form[action='/console/products/"+itoa(p.ID)+"'] button", map[string]string{"#e-title": "Cinema+", "#e-ch-catchup": "hbo"})
		if got := b.text(t, "[role=status]"); !strings.Contains(got, "Saved") {
			t.Errorf("after save: %q", got)
		}
		if ev := f.lastEvent(t); ev.Type != licensor.EventProductUpdated || ev.Actor != "ops-alice" {
			t.Errorf("update event: %+v", ev)
		}

		// Someone else saves meanwhile: the edit is refused, shown, kept.
		title := "Cinema by the API"
		if _, err := f.store.UpdateProduct(ctx, p.ID, licensor.ProductPatch{Title: &title}, "", licensor.Change{Time: f.now, Actor: "bss"}); err != nil {
			t.Fatal(err)
		}
		b.submit(t, "form[action='/console/products/"+itoa(p.ID)+"'] button", map[string]string{"#e-title": "Cinema mine"})
		if got := b.text(t, "#problem"); !strings.Contains(got, "changed this product") {
			t.Errorf("conflict: %q", got)
		}
		if got := b.text(t, "#current"); !strings.Contains(got, title) {
			t.Errorf("the current version is not shown:\n%s", got)
		}
		if got := eval[string](t, b, `document.querySelector("#e-title").value`); got != "Cinema mine" {
			t.Errorf("the edit was lost: %q", got)
		}
		if cur, _ := f.store.FindProductByID(ctx, p.ID); cur.Title != title {
			t.Errorf("the conflicting edit was written: %q", cur.Title)
		}
		b.axe(t, "product edit conflict")
		if shots {
			t.Log("screenshot:", b.screenshot(t, "product-conflict"))
		}
		// Saving again replaces that version, deliberately.
		b.submit(t, "form[action='/console/products/"+itoa(p.ID)+"'] button", nil)
		if cur, _ := f.store.FindProductByID(ctx, p.ID); cur.Title != "Cinema mine" {
			t.Errorf("second save: %q", cur.Title)
		}

		// Delete Sports: 1 live license; refused without cascade.
		sports := f.licenses["grants"].ProductID
		b.open(t, f.url("/products/"+itoa(sports)+"/delete"))
		if got := b.text(t, "#live"); !strings.Contains(got, "1 live license") {
			t.Errorf("live count: %q", got)
		}
		b.axe(t, "product deletion")
		if shots {
			t.Log("screenshot:", b.screenshot(t, "product-delete"))
		}
		b.submit(t, "form[action$='/delete'] button", nil)
		if _, err := f.store.FindProductByID(ctx, sports); err != nil {
			t.Fatalf("deleted without cascade: %v", err)
		}
		if got := b.text(t, "[role=alert]"); got == "" {
			t.Errorf("no refusal shown without cascade")
		}
		b.open(t, f.url("/products/"+itoa(sports)+"/delete"))
		b.run(t, discard(eval2(`document.querySelector("#cascade").click(); ""`)))
		b.submit(t, "form[action$='/delete'] button", nil)
		if _, err := f.store.FindProductByID(ctx, sports); licensor.ErrorCode(err) != licensor.CodeProductNotFound {
			t.Errorf("after cascade delete: %v", err)
		}
		if _, err := f.store.FindLicenseByID(ctx, f.licenses["grants"].ID); licensor.ErrorCode(err) != licensor.CodeLicenseNotFound {
			t.Errorf("its license survived: %v", err)
		}
		if ev := f.lastEvent(t); ev.Type != licensor.EventProductDeleted || ev.Actor != "ops-alice" {
			t.Errorf("delete event: %+v", ev)
		}
		b.narrow(t, f.url("/products/"+itoa(p.ID)), map[bool]string{true: "product-narrow"}[shots])
		f.noSecrets(t, b)

		// A read key sees products but no forms.
		b.submit(t, "form[action='/console/signout'] button", nil)
		f.signin(t, b, f.readKey)
		b.open(t, f.url("/products/"+itoa(p.ID)))
		if n := eval[int](t, b, `document.querySelectorAll("main form[method=post], a.button.danger").length`); n != 0 {
			t.Errorf("a read key is offered %d forms", n)
		}
	})
}
