package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
)

// productBody is a CreateProduct document.
func productBody(attrs map[string]any) map[string]any {
	return map[string]any{"data": map[string]any{"type": "Product", "attributes": attrs}}
}

// licenseBody is a CreateLicense document for user and product with attrs.
func licenseBody(user, product string, attrs map[string]any) map[string]any {
	return map[string]any{"data": licenseObject(user, product, attrs)}
}

func licenseObject(user, product string, attrs map[string]any) map[string]any {
	obj := map[string]any{
		"type": "License",
		"relationships": map[string]any{
			"user":    map[string]any{"data": map[string]any{"type": "User", "id": user}},
			"product": map[string]any{"data": map[string]any{"type": "Product", "id": product}},
		},
	}
	if attrs != nil {
		obj["attributes"] = attrs
	}
	return obj
}

// path walks a decoded JSON document: path(doc, "data", "attributes", "status").
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// createProduct creates a product and returns its id.
func (en *env) createProduct(attrs map[string]any) string {
	en.t.Helper()
	if _, ok := attrs["title"]; !ok {
		attrs["title"] = "Sports"
	}
	resp := en.must(201, req{method: "POST", path: base + "/products", body: productBody(attrs)})
	return path(resp.json(en.t), "data", "id").(string)
}

func (en *env) createLicense(user, product string, attrs map[string]any) map[string]any {
	en.t.Helper()
	resp := en.must(201, req{method: "POST", path: base + "/licenses", body: licenseBody(user, product, attrs)})
	return resp.json(en.t)["data"].(map[string]any)
}

func TestLicenseLifecycle(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		now := en.clock.Now().Unix()
		pid := en.createProduct(map[string]any{
			"title": "Sport channels megapack", "price_currency_amount": 1223, "price_currency_iso4217": "EUR",
			"recurring": true, "license_period": "P1M",
		})

		// Defaults come from the product.
		resp := en.must(201, req{method: "POST", path: base + "/licenses", body: licenseBody("41", pid, nil)})
		lic := resp.json(t)["data"]
		id := path(lic, "id").(string)
		if loc := resp.Header.Get("Location"); loc != base+"/licenses/"+id {
			t.Errorf("Location = %q, want %q", loc, base+"/licenses/"+id)
		}
		attrs := path(lic, "attributes")
		wantStop := time.Unix(now, 0).UTC().AddDate(0, 1, 0).Unix()
		for _, c := range []struct {
			got  any
			want any
		}{
			{path(attrs, "status"), "ACTIVE"},
			{num(path(attrs, "start_date")), now},
			{num(path(attrs, "stop_date")), wantStop},
			{path(attrs, "renew_record", "recurring"), true},
			{num(path(attrs, "renew_record", "expiry_date")), wantStop},
			{num(path(attrs, "purchase_record", "price_currency_amount")), int64(1223)},
			{path(attrs, "purchase_record", "price_currency_iso4217"), "EUR"},
			{num(path(attrs, "purchase_record", "purchase_timestamp")), now},
			{path(lic, "relationships", "user", "data", "id"), "41"},
			{path(lic, "relationships", "product", "data", "id"), pid},
		} {
			if c.got != c.want {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		}

		// The array form of a single resource is accepted too.
		arr := map[string]any{"data": []any{licenseObject("41", pid, map[string]any{"order_id": "o-2"})}}
		en.must(201, req{method: "POST", path: base + "/licenses", body: arr, contentType: "application/json"})

		// Read back, alone and with its product included.
		got := en.must(200, req{method: "GET", path: base + "/licenses/" + id + "?include=product", key: en.readKey}).json(t)
		if path(got, "data", "id") != id || path(got, "included", 0, "id") != pid {
			t.Errorf("GetLicenseById with include: %v", got)
		}
		list := en.must(200, req{method: "GET", path: base + "/users/41/licenses?count=true", key: en.readKey}).json(t)
		if n := len(path(list, "data").([]any)); n != 2 || num(path(list, "meta", "total")) != 2 {
			t.Errorf("GetLicensesByUser: %d licenses, total %v; want 2", n, path(list, "meta", "total"))
		}
		empty := en.must(200, req{method: "GET", path: base + "/users/nobody/licenses"}).json(t)
		if n := len(path(empty, "data").([]any)); n != 0 {
			t.Errorf("unknown user: %d licenses, want 0", n)
		}

		// Delete: gone from every read, the order id is free again.
		en.must(204, req{method: "DELETE", path: base + "/licenses/" + id})
		r := en.must(404, req{method: "GET", path: base + "/licenses/" + id})
		if codes := r.errorCodes(t); !slices.Equal(codes, []string{"LICENSE_NOT_FOUND"}) {
			t.Errorf("codes %v", codes)
		}
		en.must(404, req{method: "DELETE", path: base + "/licenses/" + id})
		list = en.must(200, req{method: "GET", path: base + "/licenses?filter[user_id]=41"}).json(t)
		if n := len(path(list, "data").([]any)); n != 1 {
			t.Errorf("after delete: %d licenses, want 1", n)
		}
	})
}

func TestOrderIDConflict(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		pid := en.createProduct(map[string]any{})
		first := en.createLicense("7", pid, map[string]any{"order_id": "ord-1"})
		r := en.must(409, req{method: "POST", path: base + "/licenses", body: licenseBody("8", pid, map[string]any{"order_id": "ord-1"})})
		doc := r.json(t)
		if got := path(doc, "errors", 0, "meta", "existing_id"); got != first["id"] {
			t.Errorf("existing_id = %v, want %v", got, first["id"])
		}
		if got := path(doc, "errors", 0, "source", "pointer"); got != "/data/attributes/order_id" {
			t.Errorf("pointer = %v", got)
		}

		// Concurrent creates of one order id: exactly one wins.
		const n = 20
		var wg sync.WaitGroup
		statuses := make([]int, n)
		bodies := make([]map[string]any, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp := en.do(req{method: "POST", path: base + "/licenses", body: licenseBody("9", pid, map[string]any{"order_id": "race"})})
				statuses[i] = resp.StatusCode
				bodies[i] = resp.json(t)
			}()
		}
		wg.Wait()
		var winner string
		for i, s := range statuses {
			if s == 201 {
				if winner != "" {
					t.Fatalf("two creates of one order_id succeeded")
				}
				winner = path(bodies[i], "data", "id").(string)
			}
		}
		if winner == "" {
			t.Fatalf("no create succeeded: %v", statuses)
		}
		for i, s := range statuses {
			if s == 201 {
				continue
			}
			if s != 409 || path(bodies[i], "errors", 0, "meta", "existing_id") != winner {
				t.Errorf("loser %d: status %d body %v, want 409 naming %s", i, s, bodies[i], winner)
			}
		}
	})
}

func TestBatches(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e, func(o *api.Options) { o.MaxBatch = 5 })
		pid := en.createProduct(map[string]any{})
		en.createLicense("1", pid, map[string]any{"order_id": "taken"})

		items := []any{
			licenseObject("2", pid, map[string]any{"order_id": "a"}),
			licenseObject("3", pid, map[string]any{"order_id": "taken"}),
			licenseObject("4", "999999", nil),
			licenseObject("5", pid, map[string]any{"order_id": "a"}),
		}
		r := en.must(0+400, req{method: "POST", path: base + "/licenses/batch_create", body: map[string]any{"data": items}})
		var pointers []string
		for _, eo := range r.json(t)["errors"].([]any) {
			pointers = append(pointers, path(eo, "source", "pointer").(string))
		}
		// A duplicate within the batch is caught before the store is touched.
		if !slices.Equal(pointers, []string{"/data/3/attributes/order_id"}) {
			t.Errorf("pointers %v", pointers)
		}
		items = items[:3]
		r = en.do(req{method: "POST", path: base + "/licenses/batch_create", body: map[string]any{"data": items}})
		pointers = nil
		for _, eo := range r.json(t)["errors"].([]any) {
			pointers = append(pointers, path(eo, "source", "pointer").(string))
		}
		if !slices.Equal(pointers, []string{"/data/1/attributes/order_id", "/data/2/relationships/product"}) {
			t.Errorf("status %d pointers %v", r.StatusCode, pointers)
		}
		// Nothing of the failed batch was written.
		list := en.must(200, req{method: "GET", path: base + "/licenses?count=true"}).json(t)
		if total := num(path(list, "meta", "total")); total != 1 {
			t.Fatalf("after failed batch: %d licenses, want 1", total)
		}

		// Too large: refused before anything is written.
		big := make([]any, 6)
		for i := range big {
			big[i] = licenseObject("x", pid, nil)
		}
		r = en.must(400, req{method: "POST", path: base + "/licenses/batch_create", body: map[string]any{"data": big}})
		if codes := r.errorCodes(t); !slices.Equal(codes, []string{"BATCH_TOO_LARGE"}) {
			t.Errorf("codes %v", codes)
		}

		ok := en.must(201, req{method: "POST", path: base + "/licenses/batch_create", body: map[string]any{"data": []any{
			licenseObject("2", pid, map[string]any{"order_id": "b1"}),
			licenseObject("3", pid, map[string]any{"order_id": "b2"}),
		}}}).json(t)
		var ids []string
		for i, d := range ok["data"].([]any) {
			ids = append(ids, path(d, "id").(string))
			if want := fmt.Sprintf("b%d", i+1); path(d, "attributes", "order_id") != want {
				t.Errorf("item %d order_id %v, want %s (request order)", i, path(d, "attributes", "order_id"), want)
			}
		}

		del := func(ids ...string) []any {
			var out []any
			for _, id := range ids {
				out = append(out, map[string]any{"type": "License", "id": id})
			}
			return out
		}
		r = en.must(404, req{method: "POST", path: base + "/licenses/batch_delete", body: map[string]any{"data": del(ids[0], "424242")}})
		if p := path(r.json(t), "errors", 0, "source", "pointer"); p != "/data/1/id" {
			t.Errorf("pointer %v", p)
		}
		en.must(200, req{method: "GET", path: base + "/licenses/" + ids[0]}) // still there
		res := en.must(200, req{method: "POST", path: base + "/licenses/batch_delete?allow_missing=true", body: map[string]any{"data": del(ids[0], "424242", ids[1])}}).json(t)
		if got := fmt.Sprint(path(res, "meta", "deleted"), path(res, "meta", "missing")); got != fmt.Sprint([]any{ids[0], ids[1]}, []any{"424242"}) {
			t.Errorf("batch_delete meta: %s", got)
		}
		en.must(404, req{method: "GET", path: base + "/licenses/" + ids[1]})
	})
}

func TestEffectiveStatus(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		pid := en.createProduct(map[string]any{})
		now := en.clock.Now().Unix()
		lic := en.createLicense("u1", pid, map[string]any{"start_date": now - 100, "stop_date": now + 10})
		id := lic["id"].(string)
		en.createLicense("u1", pid, map[string]any{"start_date": now - 100})

		en.clock.Set(time.Unix(now+10, 0)) // the stop date itself: no longer entitled
		got := en.must(200, req{method: "GET", path: base + "/licenses/" + id}).json(t)
		if s := path(got, "data", "attributes", "status"); s != "EXPIRED" {
			t.Errorf("status at stop_date = %v, want EXPIRED", s)
		}
		for status, want := range map[string]int{"EXPIRED": 1, "ACTIVE": 1, "ACTIVE,EXPIRED": 2, "SUSPENDED": 0} {
			list := en.must(200, req{method: "GET", path: base + "/licenses?filter[status]=" + status}).json(t)
			if n := len(list["data"].([]any)); n != want {
				t.Errorf("filter[status]=%s: %d licenses, want %d", status, n, want)
			}
		}
	})
}

func TestPagination(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		pid := en.createProduct(map[string]any{})
		var items []any
		for i := range 7 {
			items = append(items, licenseObject("p", pid, map[string]any{"start_date": 1000 + int64(i%3)}))
		}
		en.must(201, req{method: "POST", path: base + "/licenses/batch_create", body: map[string]any{"data": items}})

		next := base + "/licenses?sort=-start_date&page[size]=3&filter[user_id]=p"
		var seen []string
		pages := 0
		for next != "" {
			doc := en.must(200, req{method: "GET", path: next}).json(t)
			pages++
			var prev int64 = 1 << 62
			for _, d := range doc["data"].([]any) {
				seen = append(seen, path(d, "id").(string))
				sd := num(path(d, "attributes", "start_date"))
				if sd > prev {
					t.Errorf("not sorted descending: %d after %d", sd, prev)
				}
				prev = sd
			}
			n, _ := path(doc, "links", "next").(string)
			if n != "" {
				// links.next is a path with a query; reusing its cursor with other filters fails.
				u, _ := url.Parse(n)
				other := u.Query()
				other.Set("filter[user_id]", "q")
				r := en.must(400, req{method: "GET", path: u.Path + "?" + other.Encode()})
				if codes := r.errorCodes(t); !slices.Equal(codes, []string{"INVALID_CURSOR"}) {
					t.Errorf("reused cursor: %v", codes)
				}
			}
			next = n
		}
		if pages != 3 || len(seen) != 7 {
			t.Errorf("walked %d pages, %d licenses; want 3 and 7", pages, len(seen))
		}
		slices.Sort(seen)
		if len(slices.Compact(seen)) != 7 {
			t.Errorf("a license was seen twice: %v", seen)
		}
	})
}

func TestProducts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		resp := en.must(201, req{method: "POST", path: base + "/products", body: map[string]any{"data": map[string]any{
			"type":       "Product",
			"attributes": map[string]any{"title": "Kids", "is_premium": true},
			"relationships": map[string]any{
				"live": map[string]any{"data": []any{map[string]any{"type": "Channel", "id": "c1"}, map[string]any{"type": "Channel", "id": "c2"}}},
			},
		}}})
		doc := resp.json(t)
		pid := path(doc, "data", "id").(string)
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag on create")
		}
		attrs := path(doc, "data", "attributes")
		if path(attrs, "type") != "CHANNEL_GROUP" || path(attrs, "is_buyable") != true || path(attrs, "is_visible") != true || path(attrs, "recurring") != false {
			t.Errorf("defaults: %v", attrs)
		}
		if ids := path(doc, "data", "relationships", "live", "data"); len(ids.([]any)) != 2 {
			t.Errorf("live channels: %v", ids)
		}

		patch := map[string]any{"data": map[string]any{"type": "Product", "id": pid, "attributes": map[string]any{"title": "Kids+"}}}
		en.must(412, req{method: "PATCH", path: base + "/products/" + pid, body: patch, header: map[string]string{"If-Match": `"nope"`}})
		resp = en.must(200, req{method: "PATCH", path: base + "/products/" + pid, body: patch, header: map[string]string{"If-Match": etag}})
		doc = resp.json(t)
		if path(doc, "data", "attributes", "title") != "Kids+" || path(doc, "data", "attributes", "is_premium") != true {
			t.Errorf("patch: %v", path(doc, "data", "attributes"))
		}
		if len(path(doc, "data", "relationships", "live", "data").([]any)) != 2 {
			t.Errorf("patch without relationships changed channels")
		}
		newTag := resp.Header.Get("ETag")
		if newTag == etag {
			t.Errorf("ETag did not change on update")
		}
		en.must(412, req{method: "DELETE", path: base + "/products/" + pid, header: map[string]string{"If-Match": etag}})

		list := en.must(200, req{method: "GET", path: base + "/products?filter[title]=kids&filter[is_premium]=true"}).json(t)
		if n := len(list["data"].([]any)); n != 1 {
			t.Errorf("filter: %d products, want 1", n)
		}

		// A product in use cannot be deleted, unless the licenses go with it.
		lic := en.createLicense("u", pid, nil)
		r := en.must(409, req{method: "DELETE", path: base + "/products/" + pid})
		if codes := r.errorCodes(t); !slices.Equal(codes, []string{"PRODUCT_IN_USE"}) {
			t.Errorf("codes %v", codes)
		}
		en.must(204, req{method: "DELETE", path: base + "/products/" + pid + "?cascade=true", header: map[string]string{"If-Match": newTag}})
		en.must(404, req{method: "GET", path: base + "/products/" + pid})
		en.must(404, req{method: "GET", path: base + "/licenses/" + lic["id"].(string)})
		r = en.must(404, req{method: "POST", path: base + "/licenses", body: licenseBody("u", pid, nil)})
		if p := path(r.json(t), "errors", 0, "source", "pointer"); p != "/data/relationships/product" {
			t.Errorf("pointer %v", p)
		}
	})
}

func TestAuthentication(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		now := en.clock.Now().Unix()
		past := now - 1
		expired := en.createKey("old", licensor.ScopeWrite, func(k *licensor.APIKey) { k.ExpiresAt = &past })
		revoked := en.createKey("gone", licensor.ScopeWrite, nil)
		if err := en.store.RevokeAPIKey(context.Background(), "gone", licensor.Change{Time: now}); err != nil {
			t.Fatal(err)
		}
		elsewhere := en.createKey("office", licensor.ScopeWrite, func(k *licensor.APIKey) {
			k.Networks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
		})
		local := en.createKey("local", licensor.ScopeRead, func(k *licensor.APIKey) {
			k.Networks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})
		_, fakePrefix, _ := licensor.NewAPIKeySecret()
		for _, c := range []struct {
			name   string
			r      req
			status int
			code   string
		}{
			{"no key", req{method: "GET", path: base + "/licenses", key: "-"}, 401, "API_KEY_MISSING"},
			{"wrong scheme", req{method: "GET", path: base + "/licenses", key: "-", header: map[string]string{"Authorization": "Bearer " + en.writeKey}}, 401, "API_KEY_MISSING"},
			{"garbage", req{method: "GET", path: base + "/licenses", key: "nonsense"}, 401, "API_KEY_INVALID"},
			{"unknown", req{method: "GET", path: base + "/licenses", key: fakePrefix + "_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, 401, "API_KEY_INVALID"},
			{"wrong secret", req{method: "GET", path: base + "/licenses", key: en.writeKey[:11] + "_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, 401, "API_KEY_INVALID"},
			{"expired", req{method: "GET", path: base + "/licenses", key: expired}, 401, "API_KEY_EXPIRED"},
			{"revoked", req{method: "GET", path: base + "/licenses", key: revoked}, 401, "API_KEY_REVOKED"},
			{"other network", req{method: "GET", path: base + "/licenses", key: elsewhere}, 403, "ADDRESS_NOT_ALLOWED"},
			{"read key writes", req{method: "POST", path: base + "/products", key: en.readKey, body: productBody(map[string]any{"title": "x"})}, 403, "INSUFFICIENT_SCOPE"},
			{"read key deletes", req{method: "DELETE", path: base + "/licenses/1", key: en.readKey}, 403, "INSUFFICIENT_SCOPE"},
			{"scheme case-insensitive", req{method: "GET", path: base + "/licenses", key: "-", header: map[string]string{"Authorization": "APIKEY " + en.readKey}}, 200, ""},
			{"allowed network", req{method: "GET", path: base + "/products", key: local}, 200, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := en.must(c.status, c.r)
				if c.code == "" {
					return
				}
				if codes := r.errorCodes(t); !slices.Equal(codes, []string{c.code}) {
					t.Errorf("codes %v, want %s", codes, c.code)
				}
				if c.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Apikey") {
					t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
				}
			})
		}
		// Usage is recorded in memory and written by Flush, not per request.
		en.api.Flush(context.Background())
		keys, err := en.store.FindAPIKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			used := k.LastUsedAt != nil
			if want := k.Name == "reader" || k.Name == "local"; used != want {
				t.Errorf("key %s: last used recorded %v, want %v", k.Name, used, want)
			}
		}
	})
}

func TestTrustedProxy(t *testing.T) {
	e := engines(t)[0]
	en := newEnv(t, e, func(o *api.Options) { o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	office := en.createKey("office", licensor.ScopeRead, func(k *licensor.APIKey) {
		k.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	})
	xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }
	en.must(200, req{method: "GET", path: base + "/products", key: office, header: xff("203.0.113.9")})
	// The right-most untrusted hop counts, not a forged left-most one.
	en.must(403, req{method: "GET", path: base + "/products", key: office, header: xff("203.0.113.9, 198.51.100.1")})
	en.must(200, req{method: "GET", path: base + "/products", key: office, header: xff("198.51.100.1, 203.0.113.9, 127.0.0.5")})
	en.must(403, req{method: "GET", path: base + "/products", key: office})

	// A hop that is not a bare IP address fails closed: the client is
	// unknown, and no network of a key contains an unknown client, not even
	// the proxy's own (falling back to the proxy's address failed open).
	proxyHost := en.createKey("proxy-host", licensor.ScopeRead, func(k *licensor.APIKey) {
		k.Networks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("203.0.113.0/24")}
	})
	for _, h := range []string{
		"203.0.113.7:4711", "[2001:db8::7]", "unknown", "203.0.113.9, unknown",
		"unknown, 127.0.0.5", "203.0.113.9,", ", 127.0.0.5", "fe80::1%eth0", "",
	} {
		for _, key := range []string{office, proxyHost} {
			r := en.must(403, req{method: "GET", path: base + "/products", key: key, header: xff(h)})
			if codes := r.errorCodes(t); !slices.Equal(codes, []string{"ADDRESS_NOT_ALLOWED"}) {
				t.Errorf("X-Forwarded-For %q: codes %v", h, codes)
			}
		}
		// A key without networks does not care where the client is.
		en.must(200, req{method: "GET", path: base + "/products", header: xff(h)})
	}
	// Garbage left of the right-most untrusted hop is never read.
	en.must(200, req{method: "GET", path: base + "/products", key: office, header: xff("unknown, 203.0.113.9")})
	en.must(200, req{method: "GET", path: base + "/products", key: proxyHost, header: xff("unknown, 203.0.113.9, 127.0.0.5")})

	// From a peer that is not a trusted proxy the header changes nothing.
	en2 := newEnv(t, e)
	office2 := en2.createKey("office", licensor.ScopeRead, func(k *licensor.APIKey) {
		k.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	})
	en2.must(403, req{method: "GET", path: base + "/products", key: office2, header: xff("203.0.113.9")})
}

func TestProtocol(t *testing.T) {
	en := newEnv(t, engines(t)[0], func(o *api.Options) { o.MaxBodyBytes = 2048 })
	r := en.must(200, req{method: "GET", path: base + "/licenses", header: map[string]string{"X-Request-Id": "abc-123"}})
	if got := r.Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("X-Request-Id = %q, want the client's", got)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/vnd.api+json" {
		t.Errorf("Content-Type = %q", got)
	}
	r = en.must(200, req{method: "GET", path: base + "/products", header: map[string]string{"X-Request-Id": "bad id with spaces"}})
	if got := r.Header.Get("X-Request-Id"); got == "" || strings.Contains(got, " ") {
		t.Errorf("generated X-Request-Id = %q", got)
	}
	r = en.must(405, req{method: "PUT", path: base + "/licenses/1", body: "{}"})
	if got := r.Header.Get("Allow"); got != "GET, DELETE, HEAD" {
		t.Errorf("Allow = %q", got)
	}
	en.must(405, req{method: "GET", path: base + "/licenses/batch_create"})
	en.must(404, req{method: "GET", path: base + "/nothing"})
	en.must(200, req{method: "GET", path: "/healthz", key: "-"})
	en.must(200, req{method: "GET", path: "/readyz", key: "-"})
	spec := en.must(200, req{method: "GET", path: base + "/openapi.json", key: "-"})
	var m map[string]any
	if err := json.Unmarshal(spec.body, &m); err != nil || m["openapi"] == nil {
		t.Errorf("openapi.json is not an OpenAPI document")
	}
	big := `{"data":{"type":"Product","attributes":{"title":"` + strings.Repeat("x", 4000) + `"}}}`
	r = en.must(413, req{method: "POST", path: base + "/products", body: big})
	if codes := r.errorCodes(t); !slices.Equal(codes, []string{"BODY_TOO_LARGE"}) {
		t.Errorf("codes %v", codes)
	}
}
