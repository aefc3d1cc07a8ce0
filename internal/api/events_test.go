package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
	"github.com/licensor/licensor/internal/webhook"
)

// feedPage is a decoded page of GET /events.
type feedPage struct {
	Data []struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		Attributes struct {
			EventType string          `json:"event_type"`
			Time      int64           `json:"time"`
			Actor     string          `json:"actor"`
			RequestID string          `json:"request_id"`
			LicenseID *string         `json:"license_id"`
			ProductID string          `json:"product_id"`
			UserID    *string         `json:"user_id"`
			Data      json.RawMessage `json:"data"`
		} `json:"attributes"`
	} `json:"data"`
	Links struct {
		Self string `json:"self"`
		Next string `json:"next"`
	} `json:"links"`
	Meta struct {
		Cursor string `json:"cursor"`
	} `json:"meta"`
}

func (en *env) feed(path, key string) feedPage {
	en.t.Helper()
	resp := en.must(http.StatusOK, req{method: "GET", path: path, key: key})
	var p feedPage
	if err := json.Unmarshal(resp.body, &p); err != nil {
		en.t.Fatal(err)
	}
	return p
}

// dataOf returns the "data" member of a response document.
func dataOf(t *testing.T, r *response) json.RawMessage {
	t.Helper()
	var doc struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Data
}

func TestEventsFeed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		prod := en.must(http.StatusCreated, req{method: "POST", path: base + "/products", body: productBody(map[string]any{"title": "Sports"})})
		lic := en.must(http.StatusCreated, req{method: "POST", path: base + "/licenses", body: licenseBody("41", "1", nil),
			header: map[string]string{"X-Request-Id": "req-create-1"}})
		licData := dataOf(t, lic)
		en.must(http.StatusNoContent, req{method: "DELETE", path: base + "/licenses/1", header: map[string]string{"X-Request-Id": "req-delete-1"}})

		// The whole feed, with the read key.
		p := en.feed(base+"/events", en.readKey)
		if len(p.Data) != 3 {
			t.Fatalf("feed: %d events, want 3: %+v", len(p.Data), p)
		}
		want := []struct{ typ, request string }{{"product.created", ""}, {"license.created", "req-create-1"}, {"license.deleted", "req-delete-1"}}
		for i, w := range want {
			a := p.Data[i].Attributes
			if p.Data[i].ID != id64(int64(i+1)) || p.Data[i].Type != "Event" || a.EventType != w.typ || a.Actor != "writer" ||
				(w.request != "" && a.RequestID != w.request) || a.ProductID != "1" {
				t.Errorf("event %d: %+v", i, p.Data[i])
			}
		}
		if string(p.Data[0].Attributes.Data) != string(dataOf(t, prod)) {
			t.Errorf("product.created data\n got %s\nwant %s (as the API showed it)", p.Data[0].Attributes.Data, dataOf(t, prod))
		}
		if string(p.Data[1].Attributes.Data) != string(licData) || string(p.Data[2].Attributes.Data) != string(licData) {
			t.Errorf("license events' data\n got %s\n and %s\nwant %s", p.Data[1].Attributes.Data, p.Data[2].Attributes.Data, licData)
		}
		if a := p.Data[1].Attributes; a.LicenseID == nil || *a.LicenseID != "1" || a.UserID == nil || *a.UserID != "41" {
			t.Errorf("license.created ids: %+v", a)
		}
		if a := p.Data[0].Attributes; a.LicenseID != nil || a.UserID != nil {
			t.Errorf("product.created has license or user: %+v", a)
		}
		// At the head: an empty page whose links.next stays put.
		next := en.feed(p.Links.Next, en.readKey)
		if len(next.Data) != 0 || next.Meta.Cursor != p.Meta.Cursor {
			t.Errorf("at the head: %+v", next)
		}
		en.must(http.StatusCreated, req{method: "POST", path: base + "/licenses", body: licenseBody("42", "1", nil)})
		if next = en.feed(next.Links.Next, ""); len(next.Data) != 1 || next.Data[0].ID != "4" {
			t.Errorf("after a new write: %+v", next)
		}

		// Paging one at a time.
		var ids []string
		path := base + "/events?page%5Bsize%5D=1"
		for range 10 {
			pg := en.feed(path, "")
			if len(pg.Data) == 0 {
				break
			}
			ids = append(ids, pg.Data[0].ID)
			path = pg.Links.Next
		}
		if !slices.Equal(ids, []string{"1", "2", "3", "4"}) {
			t.Errorf("paging: %v", ids)
		}

		// Filters.
		for q, want := range map[string][]string{
			"filter[type]=license.deleted":                 {"3"},
			"filter[type]=license.created,product.created": {"1", "2", "4"},
			"filter[user_id]=42":                           {"4"},
			"filter[license_id]=1":                         {"2", "3"},
			"filter[product_id]=1":                         {"1", "2", "3", "4"},
		} {
			pg := en.feed(base+"/events?"+encodeQuery(q), "")
			var got []string
			for _, d := range pg.Data {
				got = append(got, d.ID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: got %v, want %v", q, got, want)
			}
		}
		filtered := en.feed(base+"/events?"+encodeQuery("filter[user_id]=41"), "")
		for q, code := range map[string]string{
			"filter[type]=license.renamed":           "INVALID_PARAMETER",
			"filter[license_id]=0":                   "INVALID_PARAMETER",
			"filter[user_id]=a b":                    "INVALID_PARAMETER",
			"page[size]=1001":                        "INVALID_PARAMETER",
			"page[after]=garbage":                    "INVALID_CURSOR",
			"page[after]=" + filtered.Meta.Cursor:    "INVALID_CURSOR", // made for other filters
			"filter[status]=ACTIVE":                  "UNKNOWN_PARAMETER",
			"count=true":                             "UNKNOWN_PARAMETER",
			"filter[type]=license.created&sort=-id":  "UNKNOWN_PARAMETER",
			"filter[license_id]=1&filter[user_id]=!": "INVALID_PARAMETER",
		} {
			resp := en.do(req{method: "GET", path: base + "/events?" + encodeQuery(q)})
			if resp.StatusCode != http.StatusBadRequest || !slices.Contains(resp.errorCodes(t), code) {
				t.Errorf("%s: %d %s, want 400 %s", q, resp.StatusCode, resp.body, code)
			}
		}
	})
}

// encodeQuery escapes a raw a=b&c=d query.
func encodeQuery(raw string) string {
	var parts []string
	for _, kv := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(kv, "=")
		parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(v))
	}
	return strings.Join(parts, "&")
}

func id64(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func webhookBody(attrs map[string]any) map[string]any {
	return map[string]any{"data": map[string]any{"type": "Webhook", "attributes": attrs}}
}

func TestWebhooksAPI(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		policy := webhook.Policy{}
		en := newEnv(t, e, func(o *api.Options) { o.CheckWebhookURL = policy.CheckURL })
		hooks := base + "/webhooks"

		resp := en.do(req{method: "POST", path: hooks, key: en.readKey, body: webhookBody(map[string]any{"url": "https://example.com/h"})})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("create with a read key: %d", resp.StatusCode)
		}
		created := en.must(http.StatusCreated, req{method: "POST", path: hooks, body: webhookBody(map[string]any{
			"url": "https://drm.example.com/licensor", "event_types": []string{"license.created", "license.deleted"}, "description": "Irdeto"})})
		doc := created.json(t)
		secret, _ := path(doc, "data", "attributes", "secret").(string)
		if _, ok := licensor.WebhookSecretKey(secret); !ok {
			t.Errorf("created webhook's secret: %q", secret)
		}
		if loc := created.Header.Get("Location"); loc != hooks+"/1" {
			t.Errorf("Location: %q", loc)
		}
		given := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		second := en.must(http.StatusCreated, req{method: "POST", path: hooks, body: webhookBody(map[string]any{"url": "https://b.example.com/", "secret": given})})
		if got := path(second.json(t), "data", "attributes", "secret"); got != given {
			t.Errorf("given secret: got %v", got)
		}
		if got := path(second.json(t), "data", "attributes", "event_types"); got == nil || len(got.([]any)) != 0 {
			t.Errorf("default event_types: %v, want []", got)
		}

		// Reads: write scope, and never the secret.
		for _, p := range []string{hooks, hooks + "/1", hooks + "/1/deliveries"} {
			if resp := en.do(req{method: "GET", path: p, key: en.readKey}); resp.StatusCode != http.StatusForbidden ||
				!slices.Contains(resp.errorCodes(t), "INSUFFICIENT_SCOPE") {
				t.Errorf("GET %s with a read key: %d %s", p, resp.StatusCode, resp.body)
			}
		}
		list := en.must(http.StatusOK, req{method: "GET", path: hooks})
		if strings.Contains(string(list.body), "whsec_") || len(path(list.json(t), "data").([]any)) != 2 {
			t.Errorf("list: %s", list.body)
		}
		one := en.must(http.StatusOK, req{method: "GET", path: hooks + "/1"})
		if strings.Contains(string(one.body), "whsec_") || path(one.json(t), "data", "attributes", "description") != "Irdeto" {
			t.Errorf("get: %s", one.body)
		}

		patched := en.must(http.StatusOK, req{method: "PATCH", path: hooks + "/1", body: map[string]any{"data": map[string]any{
			"type": "Webhook", "id": "1", "attributes": map[string]any{"event_types": []string{"license.expired"}}}}})
		if got := path(patched.json(t), "data", "attributes", "event_types", 0); got != "license.expired" {
			t.Errorf("patched event_types: %s", patched.body)
		}
		if a := path(patched.json(t), "data", "attributes").(map[string]any); a["paused"] != false || a["paused_at"] != nil {
			t.Errorf("an active webhook: %s", patched.body)
		}

		// Pause and resume: the paused attribute, paused_at read-only.
		pause := func(v any) map[string]any {
			return map[string]any{"data": map[string]any{"type": "Webhook", "id": "1", "attributes": map[string]any{"paused": v}}}
		}
		paused := en.must(http.StatusOK, req{method: "PATCH", path: hooks + "/1", body: pause(true)})
		pa := path(paused.json(t), "data", "attributes").(map[string]any)
		if pa["paused"] != true || pa["paused_at"] == nil || pa["paused_at"] != pa["updated_at"] {
			t.Errorf("paused: %s", paused.body)
		}
		if got := path(en.must(http.StatusOK, req{method: "GET", path: hooks + "/1"}).json(t), "data", "attributes", "paused"); got != true {
			t.Errorf("GET of a paused webhook: paused %v", got)
		}
		again := path(en.must(http.StatusOK, req{method: "PATCH", path: hooks + "/1", body: pause(true)}).json(t), "data", "attributes").(map[string]any)
		if again["paused_at"] != pa["paused_at"] {
			t.Errorf("paused again: paused_at %v, want %v", again["paused_at"], pa["paused_at"])
		}
		resumed := en.must(http.StatusOK, req{method: "PATCH", path: hooks + "/1", body: pause(false)})
		if ra := path(resumed.json(t), "data", "attributes").(map[string]any); ra["paused"] != false || ra["paused_at"] != nil {
			t.Errorf("resumed: %s", resumed.body)
		}
		third := en.must(http.StatusCreated, req{method: "POST", path: hooks, body: webhookBody(map[string]any{"url": "https://c.example.com/", "paused": true})})
		if ta := path(third.json(t), "data", "attributes").(map[string]any); ta["paused"] != true || ta["paused_at"] == nil {
			t.Errorf("created paused: %s", third.body)
		}
		en.must(http.StatusNoContent, req{method: "DELETE", path: hooks + "/3"})

		for name, c := range map[string]struct {
			method, path string
			body         any
			status       int
			code         string
			pointer      string
		}{
			"internal address": {"POST", hooks, webhookBody(map[string]any{"url": "https://169.254.169.254/latest"}), 400, "INVALID_ATTRIBUTE", "/data/attributes/url"},
			"plain http":       {"POST", hooks, webhookBody(map[string]any{"url": "http://example.com/h"}), 400, "INVALID_ATTRIBUTE", "/data/attributes/url"},
			"no url":           {"POST", hooks, webhookBody(map[string]any{}), 400, "MISSING_ATTRIBUTE", "/data/attributes/url"},
			"bad type":         {"POST", hooks, webhookBody(map[string]any{"url": "https://x.example/", "event_types": []string{"license.renamed"}}), 400, "INVALID_ATTRIBUTE", "/data/attributes/event_types"},
			"bad secret":       {"POST", hooks, webhookBody(map[string]any{"url": "https://x.example/", "secret": "hunter2"}), 400, "INVALID_ATTRIBUTE", "/data/attributes/secret"},
			"unknown member":   {"POST", hooks, webhookBody(map[string]any{"url": "https://x.example/", "active": true}), 400, "UNKNOWN_ATTRIBUTE", "/data/attributes/active"},
			"paused not bool":  {"PATCH", hooks + "/1", map[string]any{"data": map[string]any{"type": "Webhook", "attributes": map[string]any{"paused": "yes"}}}, 400, "INVALID_ATTRIBUTE", "/data/attributes/paused"},
			"paused_at given":  {"PATCH", hooks + "/1", map[string]any{"data": map[string]any{"type": "Webhook", "attributes": map[string]any{"paused_at": 1}}}, 400, "INVALID_ATTRIBUTE", "/data/attributes/paused_at"},
			"patch to private": {"PATCH", hooks + "/1", map[string]any{"data": map[string]any{"type": "Webhook", "attributes": map[string]any{"url": "https://10.0.0.1/"}}}, 400, "INVALID_ATTRIBUTE", "/data/attributes/url"},
			"patch other id":   {"PATCH", hooks + "/1", map[string]any{"data": map[string]any{"type": "Webhook", "id": "2", "attributes": map[string]any{}}}, 409, "RESOURCE_MISMATCH", "/data/id"},
			"patch unknown":    {"PATCH", hooks + "/99", map[string]any{"data": map[string]any{"type": "Webhook", "attributes": map[string]any{}}}, 404, "WEBHOOK_NOT_FOUND", ""},
			"get unknown":      {"GET", hooks + "/99", nil, 404, "WEBHOOK_NOT_FOUND", ""},
			"bad id":           {"GET", hooks + "/x", nil, 400, "INVALID_ID", ""},
		} {
			resp := en.do(req{method: c.method, path: c.path, body: c.body})
			if resp.StatusCode != c.status || !slices.Contains(resp.errorCodes(t), c.code) ||
				(c.pointer != "" && !strings.Contains(string(resp.body), `"pointer":"`+c.pointer+`"`)) {
				t.Errorf("%s: %d %s, want %d %s at %s", name, resp.StatusCode, resp.body, c.status, c.code, c.pointer)
			}
		}

		en.must(http.StatusNoContent, req{method: "DELETE", path: hooks + "/2"})
		en.must(http.StatusNotFound, req{method: "DELETE", path: hooks + "/2"})
		en.must(http.StatusNotFound, req{method: "GET", path: hooks + "/2/deliveries"})
	})
}

func TestWebhookDeliveriesAPI(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		ctx := context.Background()
		en.must(http.StatusCreated, req{method: "POST", path: base + "/webhooks", body: webhookBody(map[string]any{"url": "https://drm.example.com/h"})})
		en.must(http.StatusCreated, req{method: "POST", path: base + "/products", body: productBody(map[string]any{"title": "A"})})
		en.must(http.StatusCreated, req{method: "POST", path: base + "/products", body: productBody(map[string]any{"title": "B"})})
		now := en.clock.Now().Unix()
		if n, err := en.store.DispatchEvents(ctx, now, 100); err != nil || n != 2 {
			t.Fatalf("DispatchEvents: %d, %v", n, err)
		}
		log := base + "/webhooks/1/deliveries"
		page := en.must(http.StatusOK, req{method: "GET", path: log}).json(t)
		if n := len(path(page, "data").([]any)); n != 2 {
			t.Fatalf("log: %d deliveries", n)
		}
		if path(page, "data", 0, "attributes", "event_id") != "2" || path(page, "data", 0, "attributes", "state") != "pending" ||
			path(page, "data", 0, "attributes", "next_attempt_at") == nil {
			t.Errorf("newest delivery: %v", path(page, "data", 0))
		}
		// One fails for good.
		jobs, err := en.store.ClaimDeliveries(ctx, licensor.DeliveryClaim{Now: now, LeaseUntil: now + 30, Limit: 10})
		if err != nil || len(jobs) != 2 {
			t.Fatalf("claim: %v %d", err, len(jobs))
		}
		for _, j := range jobs {
			o := licensor.DeliveryOutcome{ID: j.ID, Attempt: j.Attempts, At: now, Status: 200, Delivered: true}
			if j.EventSeq == 1 {
				o = licensor.DeliveryOutcome{ID: j.ID, Attempt: j.Attempts, At: now, Status: 410, Error: "the receiver answered 410 Gone"}
			}
			if err := en.store.CompleteDelivery(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		failed := en.must(http.StatusOK, req{method: "GET", path: log + "?filter%5Bstate%5D=failed"}).json(t)
		if n := len(path(failed, "data").([]any)); n != 1 || path(failed, "data", 0, "attributes", "last_status") != 410.0 ||
			path(failed, "data", 0, "attributes", "next_attempt_at") != nil {
			t.Fatalf("failed deliveries: %v", failed)
		}
		did := path(failed, "data", 0, "id").(string)

		// Redeliver it: a new pending delivery of event 1.
		again := en.must(http.StatusAccepted, req{method: "POST", path: log + "/" + did + "/redeliver"}).json(t)
		if path(again, "data", "attributes", "state") != "pending" || path(again, "data", "attributes", "event_id") != "1" || path(again, "data", "id") == did {
			t.Errorf("redelivery: %v", again)
		}
		byEvent := en.must(http.StatusOK, req{method: "GET", path: log + "?filter%5Bevent_id%5D=1"}).json(t)
		if n := len(path(byEvent, "data").([]any)); n != 2 {
			t.Errorf("deliveries of event 1: %d, want 2", n)
		}
		// Paging.
		var seen []string
		p := log + "?page%5Bsize%5D=1"
		for range 10 {
			resp := en.must(http.StatusOK, req{method: "GET", path: p})
			doc := resp.json(t)
			for _, d := range path(doc, "data").([]any) {
				seen = append(seen, d.(map[string]any)["id"].(string))
			}
			next, _ := path(doc, "links", "next").(string)
			if next == "" {
				break
			}
			p = next
		}
		if len(seen) != 3 || seen[0] <= seen[1] {
			t.Errorf("paging the log: %v", seen)
		}
		for name, c := range map[string]struct {
			path   string
			status int
			code   string
		}{
			"unknown delivery": {log + "/99/redeliver", 404, "DELIVERY_NOT_FOUND"},
			"unknown webhook":  {base + "/webhooks/9/deliveries/1/redeliver", 404, "WEBHOOK_NOT_FOUND"},
		} {
			resp := en.do(req{method: "POST", path: c.path})
			if resp.StatusCode != c.status || !slices.Contains(resp.errorCodes(t), c.code) {
				t.Errorf("%s: %d %s", name, resp.StatusCode, resp.body)
			}
		}
		for q, code := range map[string]string{"filter[state]=lost": "INVALID_PARAMETER", "page[after]=x": "INVALID_CURSOR", "sort=id": "UNKNOWN_PARAMETER"} {
			resp := en.do(req{method: "GET", path: log + "?" + encodeQuery(q)})
			if resp.StatusCode != 400 || !slices.Contains(resp.errorCodes(t), code) {
				t.Errorf("%s: %d %s", q, resp.StatusCode, resp.body)
			}
		}
	})
}
