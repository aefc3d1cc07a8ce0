package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/licensor/licensor"
)

// TestBadText sends a NUL, invalid UTF-8, a lone surrogate or an invalid
// member name in every kind of string a request carries (attributes of
// every resource, batch items, relationships, entitlement checks, the
// end-user purchase, query parameter values and names) and checks the one
// rule on both engines: 400 INVALID_ATTRIBUTE with the string's pointer,
// or 400 INVALID_PARAMETER naming the parameter; never a 500, never a
// stored byte.
func TestBadText(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e, withTokens)
		pid := en.createProduct(map[string]any{"title": "Sports", "price_currency_amount": 100, "price_currency_iso4217": "EUR"})
		tok := en.token("41", nil)
		// lic is a license create whose order_id is the raw JSON string s.
		rel := `"relationships":{"user":{"data":{"type":"User","id":"u1"}},"product":{"data":{"type":"Product","id":"` + pid + `"}}}`
		lic := func(attrs string) string { return `{"type":"License","attributes":{` + attrs + `},` + rel + `}` }
		one := func(item string) string { return `{"data":` + item + `}` }
		many := func(items ...string) string { return `{"data":[` + strings.Join(items, ",") + `]}` }
		check := func(s string) string {
			return `{"type":"EntitlementCheck","attributes":{"user_id":"u1","channel_id":"espn","service":"live"` + s + `}}`
		}
		webhook := func(desc string) string {
			return `{"data":{"type":"Webhook","attributes":{"url":"https://hooks.example.com/x","description":` + desc + `}}}`
		}
		const (
			nul       = `"o-\u0000"`
			raw       = "\"o-\xff\""
			overlong  = "\"o-\xc0\xaf\"" // an overlong '/'
			surrogate = `"o-\ud800"`
			lowAlone  = `"o-\udc00x"`
		)
		cases := []struct {
			name    string
			r       req
			user    bool // an end-user request
			pointer string
		}{
			{"order_id NUL", req{method: "POST", path: base + "/licenses", body: one(lic(`"order_id":` + nul))}, false, "/data/attributes/order_id"},
			{"order_id invalid UTF-8", req{method: "POST", path: base + "/licenses", body: one(lic(`"order_id":` + raw))}, false, "/data/attributes/order_id"},
			{"order_id overlong UTF-8", req{method: "POST", path: base + "/licenses", body: one(lic(`"order_id":` + overlong))}, false, "/data/attributes/order_id"},
			{"order_id lone surrogate", req{method: "POST", path: base + "/licenses", body: one(lic(`"order_id":` + surrogate))}, false, "/data/attributes/order_id"},
			{"order_id low surrogate", req{method: "POST", path: base + "/licenses", body: one(lic(`"order_id":` + lowAlone))}, false, "/data/attributes/order_id"},
			{"payment_method NUL", req{method: "POST", path: base + "/licenses", body: one(lic(`"purchase_record":{"payment_method":` + nul + `}`))}, false, "/data/attributes/purchase_record/payment_method"},
			{"member name NUL", req{method: "POST", path: base + "/licenses", body: one(lic(`"or\u0000der":1`))}, false, "/data/attributes/or\uFFFDder"},
			{"member name invalid UTF-8", req{method: "POST", path: base + "/licenses", body: one(lic("\"or\xffder\":1"))}, false, "/data/attributes/or\uFFFDder"},
			{"meta string", req{method: "POST", path: base + "/licenses", body: `{"meta":{"note":` + raw + `},"data":` + lic(``) + `}`}, false, "/meta/note"},
			{"user id NUL", req{method: "POST", path: base + "/licenses", body: one(strings.Replace(lic(``), `"u1"`, nul, 1))}, false, "/data/relationships/user/data/id"},
			{"batch item", req{method: "POST", path: base + "/licenses/batch_create", body: many(lic(`"order_id":"a"`), lic(`"order_id":`+nul))}, false, "/data/1/attributes/order_id"},
			{"batch delete id", req{method: "POST", path: base + "/licenses/batch_delete", body: many(`{"type":"License","id":` + raw + `}`)}, false, "/data/0/id"},
			{"product title", req{method: "POST", path: base + "/products", body: `{"data":{"type":"Product","attributes":{"title":` + raw + `}}}`}, false, "/data/attributes/title"},
			{"product description", req{method: "PATCH", path: base + "/products/" + pid, body: `{"data":{"type":"Product","attributes":{"description":` + nul + `}}}`}, false, "/data/attributes/description"},
			{"product channel", req{method: "POST", path: base + "/products", body: `{"data":{"type":"Product","attributes":{"title":"x"},"relationships":{"live":{"data":[{"type":"Channel","id":` + surrogate + `}]}}}}`}, false, "/data/relationships/live/data/0/id"},
			{"webhook description", req{method: "POST", path: base + "/webhooks", body: webhook(nul)}, false, "/data/attributes/description"},
			{"webhook description invalid UTF-8", req{method: "POST", path: base + "/webhooks", body: webhook(raw)}, false, "/data/attributes/description"},
			{"entitlement check", req{method: "POST", path: base + "/entitlements/check", body: many(check(``), check(`,"x":`+raw))}, false, "/data/1/attributes/x"},
			{"entitlement check meta", req{method: "POST", path: base + "/entitlements/check", body: `{"meta":` + nul + `,"data":[` + check(``) + `]}`}, false, "/meta"},
			{"purchase", req{method: "POST", path: userBase + "/users/41/licenses", header: map[string]string{"Idempotency-Key": "k1"},
				body: `{"data":{"type":"License","attributes":{"purchase_record":{"payment_method":` + nul + `}},"relationships":{"product":{"data":{"type":"Product","id":"` + pid + `"}}}}}`}, true, "/data/attributes/purchase_record/payment_method"},
			{"filter order_id NUL", req{method: "GET", path: base + "/licenses?filter[order_id]=%00"}, false, "?filter[order_id]"},
			{"filter order_id invalid UTF-8", req{method: "GET", path: base + "/licenses?filter[order_id]=a%FFb"}, false, "?filter[order_id]"},
			{"filter title", req{method: "GET", path: base + "/products?filter[title]=%FF"}, false, "?filter[title]"},
			{"filter title NUL", req{method: "GET", path: base + "/products?filter[title]=sp%00rt"}, false, "?filter[title]"},
			{"user licenses filter", req{method: "GET", path: base + "/users/u1/licenses?filter[order_id]=%C0%AF"}, false, "?filter[order_id]"},
			{"parameter name", req{method: "GET", path: base + "/licenses?filter%FF=1"}, false, "?filter\uFFFD"},
			{"storefront filter", req{method: "GET", path: userBase + "/products?filter[title]=%00"}, true, "?filter[title]"},
			{"end-user licenses filter", req{method: "GET", path: userBase + "/users/41/licenses?filter[status]=%FF"}, true, "?filter[status]"},
			{"events", req{method: "GET", path: base + "/events?page[after]=%00"}, false, "?page[after]"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var resp *response
				if c.user {
					resp = en.user(tok, c.r)
				} else {
					resp = en.do(c.r)
				}
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d, want 400: %s", resp.StatusCode, resp.body)
				}
				doc := resp.json(t)
				errs, _ := doc["errors"].([]any)
				if len(errs) != 1 {
					t.Fatalf("want one error: %s", resp.body)
				}
				if p, ok := strings.CutPrefix(c.pointer, "?"); ok {
					if path(errs[0], "code") != "INVALID_PARAMETER" || path(errs[0], "source", "parameter") != p {
						t.Errorf("want INVALID_PARAMETER at %s: %s", p, resp.body)
					}
					return
				}
				if path(errs[0], "code") != "INVALID_ATTRIBUTE" || path(errs[0], "source", "pointer") != c.pointer {
					t.Errorf("want INVALID_ATTRIBUTE at %s: %s", c.pointer, resp.body)
				}
			})
		}
		// Nothing was written; a valid U+FFFD, escaped or not, and a
		// surrogate pair are ordinary text.
		list := en.must(200, req{method: "GET", path: base + "/licenses?count=true"}).json(t)
		if total := num(path(list, "meta", "total")); total != 0 {
			t.Errorf("bad text wrote %d licenses", total)
		}
		for i, s := range []string{"\"o-\uFFFD\"", `"o-\ufffd1"`, `"o-\ud83d\ude00"`, `"o-\\u0000"`} {
			resp := en.must(201, req{method: "POST", path: base + "/licenses", body: one(lic(`"order_id":` + s))})
			if i == 3 && path(resp.json(t), "data", "attributes", "order_id") != `o-\u0000` {
				t.Errorf("an escaped backslash before u0000: %s", resp.body)
			}
		}
	})
}

// TestBadTextRace is the repro: creates with a NUL (single, with
// and without an Idempotency-Key, and in a batch) raced against valid
// creates, round after round: every poison is a 400, every valid create
// a 201.
func TestBadTextRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		pid := en.createProduct(map[string]any{})
		item := func(order string) string {
			return `{"type":"License","attributes":{"order_id":"` + order + `"},"relationships":{"user":{"data":{"type":"User","id":"u1"}},"product":{"data":{"type":"Product","id":"` + pid + `"}}}}`
		}
		const rounds, valid = 10, 30
		var failedValid, failedPoison atomic.Int32
		for round := range rounds {
			var wg sync.WaitGroup
			for i := range valid + 3 {
				wg.Go(func() {
					r := req{method: "POST", path: base + "/licenses"}
					id := fmt.Sprintf("r%d-%d", round, i)
					if i%2 == 0 {
						r.header = map[string]string{"Idempotency-Key": id}
					}
					want := http.StatusCreated
					switch i {
					case valid:
						r.body, want = `{"data":`+item(`nul\u0000`+id)+`}`, http.StatusBadRequest
					case valid + 1:
						r.header = map[string]string{"Idempotency-Key": id}
						r.body, want = `{"data":`+item(`nul\u0000`+id)+`}`, http.StatusBadRequest
					case valid + 2:
						r.path = base + "/licenses/batch_create"
						r.body, want = `{"data":[`+item(id)+`,`+item(`nul\u0000`+id)+`]}`, http.StatusBadRequest
					default:
						r.body = `{"data":` + item(id) + `}`
					}
					if resp := en.do(r); resp.StatusCode != want {
						if want == http.StatusCreated {
							failedValid.Add(1)
						} else {
							failedPoison.Add(1)
						}
						t.Errorf("round %d, request %d: %d, want %d: %s", round, i, resp.StatusCode, want, resp.body)
					}
				})
			}
			wg.Wait()
		}
		t.Logf("%d rounds: %d of %d valid creates failed, %d of %d poison creates not 400",
			rounds, failedValid.Load(), rounds*valid, failedPoison.Load(), rounds*3)
		list := en.must(200, req{method: "GET", path: base + "/licenses?count=true&page[size]=1"}).json(t)
		if total := num(path(list, "meta", "total")); total != rounds*valid {
			t.Errorf("%v licenses stored, want %d", total, rounds*valid)
		}
	})
}

// TestTextLengthOneRule: a length limit counts characters, never bytes, in
// an attribute and in the filter on it alike: an order_id of 128
// two-byte characters is created, found by filter[order_id] and its
// product by filter[title]; one character more is refused by both.
func TestTextLengthOneRule(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		title := strings.Repeat("é", licensor.MaxTitleLen)
		pid := en.createProduct(map[string]any{"title": title})
		order := strings.Repeat("é", licensor.MaxOrderIDLen) // 256 bytes
		en.createLicense("u1", pid, map[string]any{"order_id": order})

		resp := en.must(200, req{method: "GET", path: base + "/licenses?filter[order_id]=" + url.QueryEscape(order)})
		if n := len(resp.json(t)["data"].([]any)); n != 1 {
			t.Errorf("filter[order_id] of %d characters: %d licenses, want 1", licensor.MaxOrderIDLen, n)
		}
		resp = en.must(200, req{method: "GET", path: base + "/products?filter[title]=" + url.QueryEscape(title)})
		if n := len(resp.json(t)["data"].([]any)); n != 1 {
			t.Errorf("filter[title] of %d characters: %d products, want 1", licensor.MaxTitleLen, n)
		}

		longer := order + "é"
		resp = en.do(req{method: "POST", path: base + "/licenses", body: licenseBody("u1", pid, map[string]any{"order_id": longer})})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(resp.body), "/data/attributes/order_id") {
			t.Errorf("order_id of %d characters: %d %s", licensor.MaxOrderIDLen+1, resp.StatusCode, resp.body)
		}
		resp = en.do(req{method: "GET", path: base + "/licenses?filter[order_id]=" + url.QueryEscape(longer)})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(resp.body), "filter[order_id]") {
			t.Errorf("filter[order_id] of %d characters: %d %s", licensor.MaxOrderIDLen+1, resp.StatusCode, resp.body)
		}
	})
}
