package api_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/licensor/licensor"
)

// successorBody is a CreateLicense body renewing license pred.
func successorBody(user, product, pred string, attrs map[string]any) map[string]any {
	body := licenseBody(user, product, attrs)
	body["data"].(map[string]any)["relationships"].(map[string]any)["renewed_from"] =
		map[string]any{"data": map[string]any{"type": "License", "id": pred}}
	return body
}

// TestRenewalOverHTTP drives renewal through the API on both engines: the
// renewal state on the wire, the product's renewal_mode, a successor
// created by the BSS with renewed_from (and the links both ways), the
// server's own successor, the cancellation and its refusals, and what a
// client may not send.
func TestRenewalOverHTTP(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		pid := en.createProduct(map[string]any{"recurring": true, "license_period": "P1M",
			"price_currency_amount": 999, "price_currency_iso4217": "EUR", "renewal_mode": "notify"})
		prod := en.must(200, req{method: "GET", path: base + "/products/" + pid}).json(t)
		if m := path(prod, "data", "attributes", "renewal_mode"); m != "notify" {
			t.Errorf("product renewal_mode: %v", m)
		}
		lic := en.createLicense("41", pid, nil)
		id := path(lic, "id").(string)
		if r := path(lic, "attributes", "renew_record", "renewal"); r != "PENDING" {
			t.Errorf("renew_record.renewal of a recurring license: %v, want PENDING", r)
		}
		if _, ok := path(lic, "relationships").(map[string]any)["renewed_from"]; ok {
			t.Errorf("a first license has renewed_from: %v", path(lic, "relationships"))
		}
		plain := en.createLicense("41", pid, map[string]any{"renew_record": map[string]any{"recurring": false}})
		if r := path(plain, "attributes", "renew_record", "renewal"); r != nil {
			t.Errorf("renew_record.renewal of a license that does not recur: %v, want null", r)
		}

		// The BSS renews: the successor starts at the predecessor's stop.
		resp := en.must(201, req{method: "POST", path: base + "/licenses", body: successorBody("41", pid, id, map[string]any{"order_id": "bss-2"})})
		succ := resp.json(t)["data"]
		sid := path(succ, "id").(string)
		if num(path(succ, "attributes", "start_date")) != num(path(lic, "attributes", "stop_date")) ||
			path(succ, "relationships", "renewed_from", "data", "id") != id {
			t.Errorf("successor: %v", succ)
		}
		pred := en.must(200, req{method: "GET", path: base + "/licenses/" + id, key: en.readKey}).json(t)["data"]
		if path(pred, "attributes", "renew_record", "renewal") != "RENEWED" || path(pred, "relationships", "renewed_by", "data", "id") != sid {
			t.Errorf("predecessor after the renewal: %v", pred)
		}
		list := en.must(200, req{method: "GET", path: base + "/users/41/licenses", key: en.readKey}).json(t)
		found := false
		for _, l := range path(list, "data").([]any) {
			if path(l, "id") == id && path(l, "relationships", "renewed_by", "data", "id") == sid {
				found = true
			}
		}
		if !found {
			t.Errorf("the list does not show the successor of %s: %v", id, list)
		}
		// A second successor, a cancellation of a renewed license: 409.
		wantCodes(t, en.must(409, req{method: "POST", path: base + "/licenses", body: successorBody("41", pid, id, nil)}), "RENEWAL_CLOSED")
		wantCodes(t, en.must(409, req{method: "POST", path: base + "/licenses/" + id + "/cancel-renewal"}), "RENEWAL_CLOSED")
		// Another user, a start elsewhere, an unknown predecessor.
		bad := en.must(400, req{method: "POST", path: base + "/licenses", body: successorBody("42", pid, sid, nil)})
		wantCodes(t, bad, "INVALID_RELATIONSHIP")
		if p := path(bad.json(t), "errors", 0, "source", "pointer"); p != "/data/relationships/renewed_from" {
			t.Errorf("pointer %v", p)
		}
		wantCodes(t, en.must(400, req{method: "POST", path: base + "/licenses", body: successorBody("41", pid, sid, map[string]any{"start_date": 1})}), "INVALID_ATTRIBUTE")
		wantCodes(t, en.must(404, req{method: "POST", path: base + "/licenses", body: successorBody("41", pid, "987654321", nil)}), "LICENSE_NOT_FOUND")
		// What a client may not send.
		wantCodes(t, en.must(400, req{method: "POST", path: base + "/licenses", body: licenseBody("41", pid, map[string]any{"order_id": "renewal:7"})}), "INVALID_ATTRIBUTE")
		wantCodes(t, en.must(400, req{method: "POST", path: base + "/licenses", body: licenseBody("41", pid, map[string]any{"renew_record": map[string]any{"renewal": "RENEWED"}})}), "INVALID_ATTRIBUTE")
		body := licenseBody("41", pid, nil)
		body["data"].(map[string]any)["relationships"].(map[string]any)["renewed_by"] = map[string]any{"data": map[string]any{"type": "License", "id": id}}
		wantCodes(t, en.must(400, req{method: "POST", path: base + "/licenses", body: body}), "INVALID_ATTRIBUTE")
		// renewed_from null is a first license.
		body = licenseBody("41", pid, nil)
		body["data"].(map[string]any)["relationships"].(map[string]any)["renewed_from"] = map[string]any{"data": nil}
		en.must(201, req{method: "POST", path: base + "/licenses", body: body})

		// Cancel the successor's renewal: 200 changed, then unchanged.
		c := en.must(200, req{method: "POST", path: base + "/licenses/" + sid + "/cancel-renewal", body: map[string]any{"meta": map[string]any{"reason": "subscriber cancelled"}}}).json(t)
		if path(c, "meta", "changed") != true || path(c, "meta", "previous_renewal") != "PENDING" ||
			path(c, "data", "attributes", "renew_record", "renewal") != "CANCELLED" || path(c, "data", "attributes", "status") != "ACTIVE" {
			t.Errorf("cancel-renewal: %v", c)
		}
		again := en.must(200, req{method: "POST", path: base + "/licenses/" + sid + "/cancel-renewal"}).json(t)
		if path(again, "meta", "changed") != false || path(again, "meta", "previous_renewal") != "CANCELLED" {
			t.Errorf("cancel-renewal again: %v", again)
		}
		wantCodes(t, en.must(409, req{method: "POST", path: base + "/licenses/" + path(plain, "id").(string) + "/cancel-renewal"}), "RENEWAL_CLOSED")
		wantCodes(t, en.must(404, req{method: "POST", path: base + "/licenses/987654321/cancel-renewal"}), "LICENSE_NOT_FOUND")
		wantCodes(t, en.must(400, req{method: "POST", path: base + "/licenses/" + sid + "/cancel-renewal", body: map[string]any{"meta": map[string]any{"why": "x"}}}), "UNKNOWN_ATTRIBUTE")
		wantCodes(t, en.must(400, req{method: "POST", path: base + "/licenses/" + sid + "/cancel-renewal", body: map[string]any{"meta": map[string]any{"reason": strings.Repeat("x", 1025)}}}), "INVALID_ATTRIBUTE")
		wantCodes(t, en.must(403, req{method: "POST", path: base + "/licenses/" + sid + "/cancel-renewal", key: en.readKey}), "INSUFFICIENT_SCOPE")

		// The feed: license.renewed of the predecessor with the successor,
		// license.renewal_cancelled with the reason and the key's name.
		feed := en.must(200, req{method: "GET", path: base + "/events?filter[type]=license.renewed,license.renewal_cancelled", key: en.readKey}).json(t)
		var types []string
		for _, ev := range path(feed, "data").([]any) {
			types = append(types, path(ev, "attributes", "event_type").(string))
			switch path(ev, "attributes", "event_type") {
			case "license.renewed":
				if path(ev, "attributes", "license_id") != id || path(ev, "attributes", "data", "meta", "successor") != sid {
					t.Errorf("license.renewed: %v", ev)
				}
			case "license.renewal_cancelled":
				if path(ev, "attributes", "actor") != "writer" || path(ev, "attributes", "data", "meta", "reason") != "subscriber cancelled" {
					t.Errorf("license.renewal_cancelled: %v", ev)
				}
			}
		}
		if !slices.Equal(types, []string{"license.renewed", "license.renewal_cancelled"}) {
			t.Errorf("renewal events: %v", types)
		}

		// The server's own successor (automatic mode, by product), as the
		// API shows it.
		if m := en.must(200, req{method: "PATCH", path: base + "/products/" + pid, body: map[string]any{"data": map[string]any{"type": "Product", "id": pid,
			"attributes": map[string]any{"renewal_mode": "automatic"}}}}).json(t); path(m, "data", "attributes", "renewal_mode") != "automatic" {
			t.Errorf("PATCH renewal_mode: %v", m)
		}
		wantCodes(t, en.must(400, req{method: "PATCH", path: base + "/products/" + pid, body: map[string]any{"data": map[string]any{"type": "Product", "id": pid,
			"attributes": map[string]any{"renewal_mode": "sometimes"}}}}), "INVALID_ATTRIBUTE")
		auto := en.createLicense("43", pid, nil)
		stop := num(path(auto, "attributes", "stop_date"))
		res, err := en.store.RenewLicenses(t.Context(), licensor.Change{Time: stop, Actor: licensor.ActorSystem, RequestID: licensor.RequestIDRenewal},
			licensor.RenewalPass{Mode: licensor.RenewalNotify, Notice: 3600, Limit: 100})
		if err != nil || len(res.Renewed) != 2 { // auto and the license created with renewed_from null
			t.Fatalf("RenewLicenses: %+v, %v", res, err)
		}
		made := en.must(200, req{method: "GET", path: base + "/licenses/" + path(auto, "id").(string) + "?include=product", key: en.readKey}).json(t)
		next := path(made, "data", "relationships", "renewed_by", "data", "id").(string)
		got := en.must(200, req{method: "GET", path: base + "/licenses?filter[order_id]=renewal:" + path(auto, "id").(string), key: en.readKey}).json(t)
		if path(got, "data", 0, "id") != next || num(path(got, "data", 0, "attributes", "start_date")) != stop ||
			num(path(got, "data", 0, "attributes", "purchase_record", "price_currency_amount")) != 999 {
			t.Errorf("the server's successor: %v", got)
		}
		// The product again null: the deployment's mode.
		if m := en.must(200, req{method: "PATCH", path: base + "/products/" + pid, body: map[string]any{"data": map[string]any{"type": "Product", "id": pid,
			"attributes": map[string]any{"renewal_mode": nil}}}}).json(t); path(m, "data", "attributes", "renewal_mode") != nil {
			t.Errorf("PATCH renewal_mode null: %v", m)
		}
	})
}

// wantCodes checks the error codes of a response.
func wantCodes(t *testing.T, r *response, want ...string) {
	t.Helper()
	if got := r.errorCodes(t); !slices.Equal(got, want) {
		t.Errorf("error codes: got %v, want %v (%s)", got, want, r.body)
	}
}
