package console_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/testdb"
)

// TestWebhooksInBrowser: subscribe an endpoint (the signing secret shown
// once), its delivery log with the failures first, redeliver, pause (its
// deliveries queued, not claimed) and resume, and delete with
// confirmation; bad URLs are refused with the form kept; a forged
// CSRF token changes nothing; a read key has no such page and cannot pause.
func TestWebhooksInBrowser(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		f := newFixture(t, e.Open(t))
		b := newBrowser(t)
		shots := e.Name == "sqlite"
		ctx := t.Context()
		f.signin(t, b, f.writeKey)

		b.open(t, f.url("/webhooks"))
		b.axe(t, "webhooks")
		b.submit(t, "form[action='/console/webhooks'] button", map[string]string{"#w-url": "ftp://receiver.example/hook", "#w-desc": "DRM"})
		if got := b.text(t, "[role=alert]"); !strings.Contains(got, "http or https") {
			t.Errorf("bad URL: %q", got)
		}
		if got := eval[string](t, b, `document.querySelector("#w-desc").value`); got != "DRM" {
			t.Errorf("the form lost its description: %q", got)
		}
		b.run(t, discard(eval2(`document.querySelector("input[name=event_types][value='license.created']").click(); ""`)))
		b.submit(t, "form[action='/console/webhooks'] button", map[string]string{"#w-url": "https://receiver.example/hook"})
		secret := b.text(t, "#secret")
		hooks, err := f.store.FindWebhooks(ctx)
		if err != nil || len(hooks) != 1 || hooks[0].Secret != secret || !strings.HasPrefix(secret, "whsec_") {
			t.Fatalf("created webhook: %+v %v (secret shown %q)", hooks, err, secret)
		}
		h := hooks[0]
		if len(h.EventTypes) != 1 || h.EventTypes[0] != licensor.EventLicenseCreated || h.Description != "DRM" {
			t.Errorf("webhook: %+v", h)
		}
		if shots {
			t.Log("screenshot:", b.screenshot(t, "webhooks-created"))
		}
		b.open(t, f.url("/webhooks"))
		if strings.Contains(b.html(t), secret) {
			t.Errorf("the signing secret is shown again")
		}

		// Three events, queued; two attempts fail for good, one is delivered.
		for i := range 3 {
			d := licensor.LicenseDraft{UserID: fmt.Sprintf("hooked-%d", i), ProductID: f.licenses["grants"].ProductID}
			if _, err := f.store.CreateLicenses(ctx, []licensor.LicenseDraft{d}, licensor.Change{Time: f.now, Actor: "cli"}); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now().Unix()
		if n, err := f.store.DispatchEvents(ctx, now, 100); err != nil || n != 3 {
			t.Fatalf("dispatch: %d %v", n, err)
		}
		jobs, err := f.store.ClaimDeliveries(ctx, licensor.DeliveryClaim{Now: now, LeaseUntil: now + 60, Limit: 10})
		if err != nil || len(jobs) != 3 {
			t.Fatalf("claim: %d %v", len(jobs), err)
		}
		for i, j := range jobs {
			o := licensor.DeliveryOutcome{ID: j.ID, Attempt: j.Attempts, At: now, Status: 503, Error: "HTTP 503 from the receiver"}
			if i == 2 {
				o = licensor.DeliveryOutcome{ID: j.ID, Attempt: j.Attempts, At: now, Status: 204, Delivered: true}
			}
			if err := f.store.CompleteDelivery(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		b.open(t, f.url("/webhooks/"+itoa(h.ID)))
		failed := b.text(t, "table[aria-labelledby=failed] tbody")
		if strings.Count(failed, "failed") != 2 || !strings.Contains(failed, "HTTP 503") {
			t.Errorf("failed deliveries:\n%s", failed)
		}
		if got := b.text(t, "table[aria-labelledby=log] tbody"); !strings.Contains(got, "delivered") {
			t.Errorf("other deliveries:\n%s", got)
		}
		if y := eval[bool](t, b, `document.querySelector("#failed").getBoundingClientRect().top < document.querySelector("#log").getBoundingClientRect().top`); !y {
			t.Errorf("the failures are not first")
		}
		b.axe(t, "webhook")
		if shots {
			t.Log("screenshot:", b.screenshot(t, "webhook"))
		}

		// Redeliver a failed one: a new pending delivery of the same event.
		b.submit(t, "table[aria-labelledby=failed] tbody tr:first-child button", nil)
		if got := b.text(t, "[role=status]"); !strings.Contains(got, "queued again") {
			t.Errorf("after redeliver: %q", got)
		}
		if got := b.text(t, "table[aria-labelledby=log] tbody"); !strings.Contains(got, "pending") {
			t.Errorf("no pending delivery after redeliver:\n%s", got)
		}
		b.narrow(t, f.url("/webhooks/"+itoa(h.ID)), map[bool]string{true: "webhook-narrow"}[shots])

		// Pause on the endpoint's page: its deliveries stay queued, none
		// is claimed; a forged token on resume changes nothing; resume
		// from the list, and the backlog is claimed.
		b.open(t, f.url("/webhooks/"+itoa(h.ID)))
		b.submit(t, "button[aria-label='Pause webhook "+itoa(h.ID)+"']", nil)
		if got := b.text(t, "[role=status]"); !strings.Contains(got, "Paused") {
			t.Errorf("after pause: %q", got)
		}
		if got, err := f.store.FindWebhookByID(ctx, h.ID); err != nil || !got.Paused() {
			t.Fatalf("after pause: %+v %v", got, err)
		}
		d := licensor.LicenseDraft{UserID: "hooked-paused", ProductID: f.licenses["grants"].ProductID}
		if _, err := f.store.CreateLicenses(ctx, []licensor.LicenseDraft{d}, licensor.Change{Time: f.now, Actor: "cli"}); err != nil {
			t.Fatal(err)
		}
		now = time.Now().Unix()
		if n, err := f.store.DispatchEvents(ctx, now, 100); err != nil || n != 1 {
			t.Fatalf("dispatch while paused: %d %v", n, err)
		}
		if jobs, err := f.store.ClaimDeliveries(ctx, licensor.DeliveryClaim{Now: now, LeaseUntil: now + 60, Limit: 10}); err != nil || len(jobs) != 0 {
			t.Fatalf("claim while paused: %d %v", len(jobs), err)
		}
		b.open(t, f.url("/webhooks/"+itoa(h.ID)))
		if got := b.text(t, "#paused"); !strings.Contains(got, "Paused since") || !strings.Contains(got, "2 pending") {
			t.Errorf("the paused notice: %q", got)
		}
		b.axe(t, "paused webhook")
		if shots {
			t.Log("screenshot:", b.screenshot(t, "webhook-paused"))
		}
		b.open(t, f.url("/"))
		if got := b.text(t, "section[aria-labelledby=counts]"); !strings.Contains(got, "webhooks (1 paused)") {
			t.Errorf("the overview's counts with a paused webhook:\n%s", got)
		}
		b.open(t, f.url("/webhooks"))
		row := "tr[data-webhook='" + itoa(h.ID) + "']"
		if got := b.text(t, row); !strings.Contains(got, "paused") || !strings.Contains(got, "Resume") {
			t.Errorf("the list's row of a paused webhook: %q", got)
		}
		b.axe(t, "webhooks with a paused one")
		if shots {
			t.Log("screenshot:", b.screenshot(t, "webhooks"))
		}
		b.run(t, discard(eval2(`document.querySelector("`+row+` form[action$='/resume'] input[name=csrf]").value = "forged"; ""`)))
		b.submit(t, row+" form[action$='/resume'] button", nil)
		if got := b.text(t, "[role=alert]"); !strings.Contains(got, "CSRF") {
			t.Errorf("forged CSRF on resume: %q", got)
		}
		if got, _ := f.store.FindWebhookByID(ctx, h.ID); !got.Paused() {
			t.Fatalf("the forged resume resumed")
		}
		b.open(t, f.url("/webhooks"))
		b.submit(t, row+" button[aria-label='Resume webhook "+itoa(h.ID)+"']", nil)
		if got := b.path(t); got != "/console/webhooks?done=resumed" {
			t.Errorf("after resume from the list: at %s", got)
		}
		if got := b.text(t, row); !strings.Contains(got, "active") || !strings.Contains(got, "Pause") {
			t.Errorf("the list's row after resume: %q", got)
		}
		if got, _ := f.store.FindWebhookByID(ctx, h.ID); got.Paused() {
			t.Fatalf("not resumed")
		}
		if jobs, err := f.store.ClaimDeliveries(ctx, licensor.DeliveryClaim{Now: now, LeaseUntil: now + 60, Limit: 10}); err != nil || len(jobs) != 2 {
			t.Errorf("claim after resume: %d %v; want the 2 queued while paused", len(jobs), err)
		}

		// Delete: confirmation; a forged token changes nothing; then done.
		b.open(t, f.url("/webhooks/"+itoa(h.ID)))
		b.submit(t, "a.button.danger", nil)
		b.axe(t, "webhook deletion")
		b.run(t, discard(eval2(`document.querySelector("form[action$='/delete'] input[name=csrf]").value = "forged"; ""`)))
		b.submit(t, "form[action$='/delete'] button", nil)
		if got := b.text(t, "[role=alert]"); !strings.Contains(got, "CSRF") {
			t.Errorf("forged CSRF on delete: %q", got)
		}
		if _, err := f.store.FindWebhookByID(ctx, h.ID); err != nil {
			t.Fatalf("the forged delete deleted: %v", err)
		}
		b.open(t, f.url("/webhooks/"+itoa(h.ID)+"/delete"))
		b.submit(t, "form[action$='/delete'] button", nil)
		if _, err := f.store.FindWebhookByID(ctx, h.ID); licensor.ErrorCode(err) != licensor.CodeWebhookNotFound {
			t.Errorf("after delete: %v", err)
		}
		if got := b.text(t, "main"); !strings.Contains(got, "Deleted.") || !strings.Contains(got, "No webhooks") {
			t.Errorf("after delete:\n%s", got)
		}
		f.noSecrets(t, b, secret)

		b.submit(t, "form[action='/console/signout'] button", nil)
		f.signin(t, b, f.readKey)
		b.open(t, f.url("/webhooks"))
		if got := b.text(t, "[role=alert]"); !strings.Contains(got, "write key") {
			t.Errorf("read key on /webhooks: %q", got)
		}
		// Nor may it pause one, even with its session's own CSRF token.
		other := licensor.Webhook{URL: "https://other.example/hook", Secret: licensor.NewWebhookSecret()}
		if err := f.store.CreateWebhook(ctx, &other, licensor.Change{Time: f.now, Actor: "cli"}); err != nil {
			t.Fatal(err)
		}
		b.run(t, discard(eval2(`const form = document.createElement("form");
form.method = "post"; form.action = "/console/webhooks/`+itoa(other.ID)+`/pause";
form.innerHTML = '<input type="hidden" name="csrf"><button type="submit" id="forged-pause">Pause</button>';
form.querySelector("input").value = document.querySelector("form[action='/console/signout'] input[name=csrf]").value;
document.querySelector("main").append(form); ""`)))
		b.submit(t, "#forged-pause", nil)
		if got := b.text(t, "[role=alert]"); !strings.Contains(got, "write key") {
			t.Errorf("a read key's pause: %q", got)
		}
		if got, _ := f.store.FindWebhookByID(ctx, other.ID); got.Paused() {
			t.Errorf("a read key paused a webhook")
		}
	})
}
