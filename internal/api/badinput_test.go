package api_test

import (
	"strings"
	"testing"
)

// TestBadInput sends every kind of bad request and checks that each gets a
// JSON:API error with a stable code and the right pointer or parameter,
// never a 500, and that nothing was written.
func TestBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		pid := en.createProduct(map[string]any{"price_currency_amount": 100, "price_currency_iso4217": "EUR"})
		lic := func(attrs map[string]any) map[string]any { return licenseBody("u1", pid, attrs) }
		licRel := func(rels map[string]any) map[string]any {
			return map[string]any{"data": map[string]any{"type": "License", "relationships": rels}}
		}
		user := map[string]any{"data": map[string]any{"type": "User", "id": "u1"}}
		prod := map[string]any{"data": map[string]any{"type": "Product", "id": pid}}
		cases := []struct {
			name    string
			r       req
			status  int
			code    string
			pointer string // or "?param" for source.parameter
		}{
			{"malformed JSON", req{method: "POST", path: base + "/licenses", body: `{"data": {`}, 400, "MALFORMED_JSON", ""},
			{"empty body", req{method: "POST", path: base + "/licenses", body: ``}, 400, "MALFORMED_JSON", ""},
			{"trailing data", req{method: "POST", path: base + "/licenses", body: `{"data":{}} {}`}, 400, "MALFORMED_JSON", ""},
			{"not an object", req{method: "POST", path: base + "/licenses", body: `[1,2]`}, 400, "MALFORMED_JSON", ""},
			{"no data", req{method: "POST", path: base + "/licenses", body: `{}`}, 400, "MISSING_ATTRIBUTE", "/data"},
			{"unknown top-level member", req{method: "POST", path: base + "/licenses", body: map[string]any{"data": lic(nil)["data"], "x": 1}}, 400, "UNKNOWN_ATTRIBUTE", "/x"},
			{"two resources", req{method: "POST", path: base + "/licenses", body: map[string]any{"data": []any{lic(nil)["data"], lic(nil)["data"]}}}, 400, "INVALID_REQUEST", "/data"},
			{"wrong type", req{method: "POST", path: base + "/licenses", body: map[string]any{"data": map[string]any{"type": "Product"}}}, 400, "", "/data/type"},
			{"id on create", req{method: "POST", path: base + "/licenses", body: map[string]any{"data": map[string]any{"type": "License", "id": "5", "relationships": map[string]any{"user": user, "product": prod}}}}, 400, "INVALID_ATTRIBUTE", "/data/id"},
			{"unknown attribute", req{method: "POST", path: base + "/licenses", body: lic(map[string]any{"stop_dat": 5})}, 400, "UNKNOWN_ATTRIBUTE", "/data/attributes/stop_dat"},
			{"unknown nested attribute", req{method: "POST", path: base + "/licenses", body: lic(map[string]any{"renew_record": map[string]any{"recuring": true}})}, 400, "UNKNOWN_ATTRIBUTE", "/data/attributes/renew_record/recuring"},
			{"string for integer", req{method: "POST", path: base + "/licenses", body: lic(map[string]any{"start_date": "1700000000"})}, 400, "INVALID_ATTRIBUTE", "/data/attributes/start_date"},
			{"fraction for integer", req{method: "POST", path: base + "/licenses", body: lic(map[string]any{"start_date": 1.5})}, 400, "INVALID_ATTRIBUTE", "/data/attributes/start_date"},
			{"huge integer", req{method: "POST", path: base + "/licenses", body: `{"data":{"type":"License","attributes":{"start_date":99999999999999999999999},"relationships":{"user":{"data":{"type":"User","id":"u"}},"product":{"data":{"type":"Product","id":"` + pid + `"}}}}}`}, 400, "INVALID_ATTRIBUTE", "/data/attributes/start_date"},
			{"string for bool", req{method: "POST", path: base + "/licenses", body: lic(map[string]any{"renew_record": map[string]any{"recurring": "yes"}})}, 400, "INVALID_ATTRIBUTE", "/data/attributes/renew_record/recurring"},
			{"stop before start", req{method: "POST", path: base + "/licenses", body: lic(map[string]any{"start_date": 2000, "stop_date": 1000})}, 400, "INVALID_ATTRIBUTE", "/data/attributes/stop_date"},
			{"stop equals start", req{method: "POST", path: base + "/licenses", body: lic(map[string]any{"start_date": 2000, "stop_date": 2000})}, 400, "INVALID_ATTRIBUTE", "/data/attributes/stop_date"},
			{"negative price", req{method: "POST", path: base + "/licenses", body: lic(map[string]any{"purchase_record": map[string]any{"price_currency_amount": -1}})}, 400, "INVALID_ATTRIBUTE", "/data/attributes/purchase_record/price_currency_amount"},
			{"unknown currency", req{method: "POST", path: base + "/licenses", body: lic(map[string]any{"purchase_record": map[string]any{"price_currency_iso4217": "EURO"}})}, 400, "INVALID_ATTRIBUTE", "/data/attributes/purchase_record/price_currency_iso4217"},
			{"unknown status", req{method: "POST", path: base + "/licenses", body: lic(map[string]any{"status": "active"})}, 400, "INVALID_ATTRIBUTE", "/data/attributes/status"},
			{"long order id", req{method: "POST", path: base + "/licenses", body: lic(map[string]any{"order_id": strings.Repeat("o", 129)})}, 400, "INVALID_ATTRIBUTE", "/data/attributes/order_id"},
			{"read-only created_at", req{method: "POST", path: base + "/licenses", body: lic(map[string]any{"created_at": 5})}, 400, "INVALID_ATTRIBUTE", "/data/attributes/created_at"},
			{"no relationships", req{method: "POST", path: base + "/licenses", body: map[string]any{"data": map[string]any{"type": "License"}}}, 400, "INVALID_RELATIONSHIP", "/data/relationships"},
			{"missing user", req{method: "POST", path: base + "/licenses", body: licRel(map[string]any{"product": prod})}, 400, "INVALID_RELATIONSHIP", "/data/relationships/user"},
			{"user id as number", req{method: "POST", path: base + "/licenses", body: licRel(map[string]any{"user": map[string]any{"data": map[string]any{"type": "User", "id": 41}}, "product": prod})}, 400, "INVALID_ATTRIBUTE", "/data/relationships/user/data/id"},
			{"bad user id", req{method: "POST", path: base + "/licenses", body: licRel(map[string]any{"user": map[string]any{"data": map[string]any{"type": "User", "id": "a b"}}, "product": prod})}, 400, "INVALID_RELATIONSHIP", "/data/relationships/user/data/id"},
			{"product id not a number", req{method: "POST", path: base + "/licenses", body: licRel(map[string]any{"user": user, "product": map[string]any{"data": map[string]any{"type": "Product", "id": "abc"}}})}, 400, "INVALID_RELATIONSHIP", "/data/relationships/product/data/id"},
			{"unknown product", req{method: "POST", path: base + "/licenses", body: licenseBody("u1", "987654", nil)}, 404, "PRODUCT_NOT_FOUND", "/data/relationships/product"},
			{"wrong media type", req{method: "POST", path: base + "/licenses", body: lic(nil), contentType: "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
			{"form media type", req{method: "POST", path: base + "/products", body: "title=x", contentType: "application/x-www-form-urlencoded"}, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
			// JSON:API 1.1: its media type with a parameter other than ext and
			// profile, or with an extension the server does not support: 415.
			{"JSON:API extension", req{method: "POST", path: base + "/products", body: productBody(map[string]any{"title": "x"}), contentType: `application/vnd.api+json; ext="https://jsonapi.org/ext/atomic"`}, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
			{"JSON:API charset not UTF-8", req{method: "POST", path: base + "/products", body: productBody(map[string]any{"title": "x"}), contentType: "application/vnd.api+json; charset=iso-8859-1"}, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
			// JSON:API 1.1: a resource object of a type the endpoint does not
			// take, or a PATCH whose id is not the path's: 409.
			{"create of another type", req{method: "POST", path: base + "/products", body: map[string]any{"data": map[string]any{"type": "License", "attributes": map[string]any{"title": "x"}}}}, 409, "RESOURCE_MISMATCH", "/data/type"},
			{"patch of another type", req{method: "PATCH", path: base + "/products/" + pid, body: map[string]any{"data": map[string]any{"type": "Webhook", "attributes": map[string]any{"title": "y"}}}}, 409, "RESOURCE_MISMATCH", "/data/type"},
			{"id not positive", req{method: "GET", path: base + "/licenses/0"}, 400, "INVALID_ID", ""},
			{"id not integer", req{method: "GET", path: base + "/licenses/abc"}, 400, "INVALID_ID", ""},
			{"id with sign", req{method: "DELETE", path: base + "/products/+5"}, 400, "INVALID_ID", ""},
			{"unknown license", req{method: "GET", path: base + "/licenses/424242"}, 404, "LICENSE_NOT_FOUND", ""},
			{"unknown product get", req{method: "GET", path: base + "/products/424242"}, 404, "PRODUCT_NOT_FOUND", ""},
			{"page size too big", req{method: "GET", path: base + "/licenses?page[size]=1001"}, 400, "INVALID_PARAMETER", "?page[size]"},
			{"page size zero", req{method: "GET", path: base + "/licenses?page[size]=0"}, 400, "INVALID_PARAMETER", "?page[size]"},
			{"unknown filter", req{method: "GET", path: base + "/licenses?filter[colour]=red"}, 400, "UNKNOWN_PARAMETER", "?filter[colour]"},
			{"unknown range op", req{method: "GET", path: base + "/licenses?filter[start_date][eq]=5"}, 400, "UNKNOWN_PARAMETER", "?filter[start_date][eq]"},
			{"unknown sort", req{method: "GET", path: base + "/licenses?sort=price"}, 400, "INVALID_PARAMETER", "?sort"},
			{"unknown page param", req{method: "GET", path: base + "/licenses?page[number]=2"}, 400, "UNKNOWN_PARAMETER", "?page[number]"},
			{"bad status filter", req{method: "GET", path: base + "/licenses?filter[status]=ACTIVE,NOPE"}, 400, "INVALID_PARAMETER", "?filter[status]"},
			{"bad bool filter", req{method: "GET", path: base + "/products?filter[is_premium]=yes"}, 400, "INVALID_PARAMETER", "?filter[is_premium]"},
			{"garbage cursor", req{method: "GET", path: base + "/licenses?page[after]=zzz"}, 400, "INVALID_CURSOR", "?page[after]"},
			{"repeated parameter", req{method: "GET", path: base + "/licenses?sort=id&sort=-id"}, 400, "INVALID_PARAMETER", "?sort"},
			{"user filter on user route", req{method: "GET", path: base + "/users/u1/licenses?filter[user_id]=u2"}, 400, "UNKNOWN_PARAMETER", "?filter[user_id]"},
			{"bad include", req{method: "GET", path: base + "/licenses?include=user"}, 400, "INVALID_PARAMETER", "?include"},
			{"product without title", req{method: "POST", path: base + "/products", body: productBody(map[string]any{"description": "x"})}, 400, "MISSING_ATTRIBUTE", "/data/attributes/title"},
			{"product empty title", req{method: "POST", path: base + "/products", body: productBody(map[string]any{"title": ""})}, 400, "INVALID_ATTRIBUTE", "/data/attributes/title"},
			{"product lower-case type", req{method: "POST", path: base + "/products", body: productBody(map[string]any{"title": "x", "type": "svod"})}, 400, "INVALID_ATTRIBUTE", "/data/attributes/type"},
			{"product bad period", req{method: "POST", path: base + "/products", body: productBody(map[string]any{"title": "x", "license_period": "1 month"})}, 400, "INVALID_ATTRIBUTE", "/data/attributes/license_period"},
			{"product price without currency", req{method: "POST", path: base + "/products", body: productBody(map[string]any{"title": "x", "price_currency_amount": 5})}, 400, "MISSING_ATTRIBUTE", "/data/attributes/price_currency_iso4217"},
			{"product bad channel", req{method: "POST", path: base + "/products", body: map[string]any{"data": map[string]any{"type": "Product", "attributes": map[string]any{"title": "x"}, "relationships": map[string]any{"live": map[string]any{"data": []any{map[string]any{"type": "Channel"}}}}}}}, 400, "INVALID_RELATIONSHIP", "/data/relationships/live/data/0/id"},
			{"product unknown relationship", req{method: "POST", path: base + "/products", body: map[string]any{"data": map[string]any{"type": "Product", "attributes": map[string]any{"title": "x"}, "relationships": map[string]any{"vod": map[string]any{"data": []any{}}}}}}, 400, "UNKNOWN_ATTRIBUTE", "/data/relationships/vod"},
			{"patch id mismatch", req{method: "PATCH", path: base + "/products/" + pid, body: map[string]any{"data": map[string]any{"type": "Product", "id": "999", "attributes": map[string]any{"title": "y"}}}}, 409, "RESOURCE_MISMATCH", "/data/id"},
			{"patch clears currency only", req{method: "PATCH", path: base + "/products/" + pid, body: map[string]any{"data": map[string]any{"type": "Product", "attributes": map[string]any{"price_currency_iso4217": nil}}}}, 400, "MISSING_ATTRIBUTE", "/data/attributes/price_currency_iso4217"},
			{"patch unknown product", req{method: "PATCH", path: base + "/products/999999", body: map[string]any{"data": map[string]any{"type": "Product", "attributes": map[string]any{"title": "y"}}}}, 404, "PRODUCT_NOT_FOUND", ""},
			{"batch not an array", req{method: "POST", path: base + "/licenses/batch_create", body: lic(nil)}, 400, "INVALID_REQUEST", "/data"},
			{"batch empty", req{method: "POST", path: base + "/licenses/batch_create", body: map[string]any{"data": []any{}}}, 400, "INVALID_REQUEST", "/data"},
			{"batch bad item", req{method: "POST", path: base + "/licenses/batch_create", body: map[string]any{"data": []any{lic(nil)["data"], lic(map[string]any{"status": "NOPE"})["data"]}}}, 400, "INVALID_ATTRIBUTE", "/data/1/attributes/status"},
			{"batch delete bad id", req{method: "POST", path: base + "/licenses/batch_delete", body: map[string]any{"data": []any{map[string]any{"type": "License", "id": "-3"}}}}, 400, "INVALID_ID", "/data/0/id"},
			{"batch delete no id", req{method: "POST", path: base + "/licenses/batch_delete", body: map[string]any{"data": []any{map[string]any{"type": "License"}}}}, 400, "MISSING_ATTRIBUTE", "/data/0/id"},
			{"batch delete duplicate", req{method: "POST", path: base + "/licenses/batch_delete", body: map[string]any{"data": []any{map[string]any{"type": "License", "id": "1"}, map[string]any{"type": "License", "id": "1"}}}}, 400, "DUPLICATE_IN_BATCH", "/data/1/id"},
			{"batch delete bad flag", req{method: "POST", path: base + "/licenses/batch_delete?allow_missing=maybe", body: map[string]any{"data": []any{map[string]any{"type": "License", "id": "1"}}}}, 400, "INVALID_PARAMETER", "?allow_missing"},
			{"delete product bad cascade", req{method: "DELETE", path: base + "/products/" + pid + "?cascade=1"}, 400, "INVALID_PARAMETER", "?cascade"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := en.must(c.status, c.r)
				doc := r.json(t)
				errs, _ := doc["errors"].([]any)
				if len(errs) == 0 {
					t.Fatalf("no errors member: %s", r.body)
				}
				first := errs[0]
				if c.code != "" && path(first, "code") != c.code {
					t.Errorf("code %v, want %s (%s)", path(first, "code"), c.code, r.body)
				}
				switch {
				case strings.HasPrefix(c.pointer, "?"):
					if got := path(first, "source", "parameter"); got != c.pointer[1:] {
						t.Errorf("source.parameter %v, want %s (%s)", got, c.pointer[1:], r.body)
					}
				case c.pointer != "":
					if got := path(first, "source", "pointer"); got != c.pointer {
						t.Errorf("source.pointer %v, want %s (%s)", got, c.pointer, r.body)
					}
				}
			})
		}
		// Nothing above wrote a license, and the product is unchanged.
		list := en.must(200, req{method: "GET", path: base + "/licenses?count=true"}).json(t)
		if total := num(path(list, "meta", "total")); total != 0 {
			t.Errorf("bad input wrote %d licenses", total)
		}
		p := en.must(200, req{method: "GET", path: base + "/products/" + pid}).json(t)
		if path(p, "data", "attributes", "price_currency_iso4217") != "EUR" {
			t.Errorf("a refused patch changed the product: %v", p)
		}
	})
}

// TestMediaTypeParameters: the parameters JSON:API 1.1 allows on its media
// type (profile, which a server may ignore, and an empty ext) are accepted,
// and so are charset=utf-8 (HTTP libraries add it) and application/json
// with a charset; TestBadInput has the refusals.
func TestMediaTypeParameters(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		for _, ct := range []string{
			`application/vnd.api+json; profile="https://example.com/profiles/timestamps"`,
			`application/vnd.api+json; ext=""`,
			"application/vnd.api+json; charset=UTF-8",
			"application/json; charset=utf-8",
			"Application/Vnd.Api+JSON",
		} {
			r := en.do(req{method: "POST", path: base + "/products", body: productBody(map[string]any{"title": "x"}), contentType: ct})
			if r.StatusCode != 201 {
				t.Errorf("Content-Type %s: %d %s, want 201", ct, r.StatusCode, r.body)
			}
		}
	})
}

// TestAllowAfterBatchPath: the batch paths share the fallback of
// .../licenses/{license_id}; a wrong method on one of them (Allow: POST)
// must not change what that path answers afterwards. It did: the fallback
// kept "POST" for every later request (and raced).
func TestAllowAfterBatchPath(t *testing.T) {
	en := newEnv(t, engines(t)[0])
	auth := map[string]string{"Authorization": "Apikey " + en.writeKey}
	if r, _ := raw(t, "PUT", en.srv.URL+base+"/licenses/batch_create", auth); r.StatusCode != 405 || r.Header.Get("Allow") != "POST" {
		t.Errorf("PUT batch_create: %d Allow %q, want 405 POST", r.StatusCode, r.Header.Get("Allow"))
	}
	if r, _ := raw(t, "PUT", en.srv.URL+base+"/licenses/5", auth); r.StatusCode != 405 || r.Header.Get("Allow") != "GET, DELETE, HEAD" {
		t.Errorf("PUT /licenses/5 after it: %d Allow %q, want 405 GET, DELETE, HEAD", r.StatusCode, r.Header.Get("Allow"))
	}
}
