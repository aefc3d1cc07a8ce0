package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
)

// unknownAttributesBody is a purchase of product whose attributes are as
// many unknown members with 600-byte names as fit in size bytes: the
// largest error document a request can get (every error object at its
// caps), for a disk-filling attack on the idempotency store.
func unknownAttributesBody(product string, size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"data":{"type":"License","relationships":{"product":{"data":{"type":"Product","id":"` + product + `"}}},"attributes":{`)
	for i := 0; ; i++ {
		member := fmt.Sprintf(`"x%05d%s":0`, i, strings.Repeat("a", 594))
		if b.Len()+len(member)+4 > size {
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(member)
	}
	b.WriteString(`}}}`)
	return b.Bytes()
}

type errorDoc struct {
	Errors []struct {
		Status string `json:"status"`
		Code   string `json:"code"`
		Detail string `json:"detail"`
		Source *struct {
			Pointer   string `json:"pointer"`
			Parameter string `json:"parameter"`
		} `json:"source"`
		Meta map[string]any `json:"meta"`
	} `json:"errors"`
}

// summary is an error document as status, pointer and code of each
// object, and the number of errors it stands for (ERRORS_OMITTED counted
// by its meta.omitted).
func summary(t *testing.T, body []byte) (objs []string, total int) {
	t.Helper()
	var doc errorDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("not an error document: %v", err)
	}
	for _, e := range doc.Errors {
		if e.Code == string(licensor.CodeErrorsOmitted) {
			total += int(e.Meta["omitted"].(float64))
			continue
		}
		src := ""
		if e.Source != nil {
			src = e.Source.Pointer + e.Source.Parameter
		}
		objs = append(objs, e.Status+" "+e.Code+" "+src)
		total++
	}
	return objs, total
}

// TestIdempotencyStoredErrorBounded: what an Idempotency-Key keeps of a
// failed request is at most licensor.MaxStoredErrorBytes, and its replay
// answers the same status, codes and pointers. Before, an end user's
// purchase with a 4 MiB body of unknown attributes kept its whole 113 KB
// 400 for 24 h (three such requests grew a SQLite file by 328 KiB, a
// hundred by 11 MB).
func TestIdempotencyStoredErrorBounded(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e, withTokens)
		pid := en.createProduct(map[string]any{})
		tok := en.token("41", nil)
		attack := unknownAttributesBody(pid, 4<<20-1024)
		for _, c := range []struct {
			name   string
			status int
			r      req
			user   bool
		}{
			{"purchase of unknown attributes", 400, req{method: "POST", path: userBase + "/users/41/licenses", body: attack}, true},
			{"batch of bad items", 400, req{method: "POST", path: base + "/licenses/batch_create", body: badBatch(pid, 300)}, false},
			{"license of a missing product", 404, req{method: "POST", path: base + "/licenses", body: licenseBody("u1", "999999", nil)}, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				send := func() *response {
					r := c.r
					r.header = idem("k-" + c.name)
					if c.user {
						return en.userMust(c.status, tok, r)
					}
					return en.must(c.status, r)
				}
				first := send()
				again := send()
				if again.Header.Get("Idempotent-Replayed") != "true" {
					t.Fatalf("not replayed")
				}
				if n := len(again.body); n > licensor.MaxStoredErrorBytes {
					t.Errorf("replayed (stored) body of %d bytes, want at most %d (first answer: %d bytes)", n, licensor.MaxStoredErrorBytes, len(first.body))
				}
				want, wantTotal := summary(t, first.body)
				got, gotTotal := summary(t, again.body)
				if len(got) == 0 || !slices.Equal(got, want[:len(got)]) {
					t.Errorf("replay's errors %q, want a prefix of %q", got, want)
				}
				if gotTotal != wantTotal {
					t.Errorf("replay stands for %d errors, the first answer for %d", gotTotal, wantTotal)
				}
				if first.Header.Get("Content-Type") != again.Header.Get("Content-Type") {
					t.Errorf("Content-Type %q, then %q", first.Header.Get("Content-Type"), again.Header.Get("Content-Type"))
				}
			})
		}
	})
}

// badBatch is a batch of n licenses with two bad attributes each.
func badBatch(product string, n int) map[string]any {
	items := make([]any, n)
	for i := range items {
		items[i] = licenseObject(fmt.Sprintf("u%d", i), product, map[string]any{"status": "NOPE", "stop_date": "soon"})
	}
	return map[string]any{"data": items}
}

// TestPurchaseOfLargeProductKeptSmall: a purchase's kept response leaves out
// a product too large to keep with every purchase of it (4 × 10000 channels:
// 3.7 MB), and its replay includes the product again, the same bytes as the
// first answer. Before, each purchase of it kept 3.67 MB for 24 h.
func TestPurchaseOfLargeProductKeptSmall(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e, withTokens)
		ids := func(s string) []any {
			out := make([]any, licensor.MaxChannelsPerService)
			for i := range out {
				out[i] = map[string]any{"type": "Channel", "id": fmt.Sprintf("%s%06d%s", s, i, strings.Repeat("c", 48))}
			}
			return out
		}
		rel := map[string]any{}
		for _, s := range []string{"live", "catchup", "npvr", "startover"} {
			rel[s] = map[string]any{"data": ids(s)}
		}
		big := en.must(201, req{method: "POST", path: base + "/products", body: map[string]any{"data": map[string]any{
			"type": "Product", "attributes": map[string]any{"title": "All of it"}, "relationships": rel}}}).json(t)
		pid := path(big, "data", "id").(string)
		small := en.createProduct(map[string]any{"title": "Small"})
		tok := en.token("41", nil)
		for _, c := range []struct {
			product string
			maxKept int
		}{
			{pid, 2 << 10},
			{small, 2 << 10},
		} {
			body, _ := json.Marshal(purchaseBody(c.product))
			p := userBase + "/users/41/licenses"
			first := en.userMust(201, tok, req{method: "POST", path: p, body: body, header: idem("k-" + c.product)})
			again := en.userMust(201, tok, req{method: "POST", path: p, body: body, header: idem("k-" + c.product)})
			if again.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.body, first.body) {
				t.Errorf("product %s: replay of %d bytes differs from the first answer of %d", c.product, len(again.body), len(first.body))
			}
			if again.Header.Get("Licensor-Include-Product") != "" {
				t.Errorf("product %s: the kept header was sent", c.product)
			}
			// What the store keeps, read as a third request would.
			hr := httptest.NewRequest("POST", p, nil)
			claim := &licensor.IdempotencyClaim{APIKeyID: api.EndUserScope("41"), Key: "k-" + c.product,
				Fingerprint: api.Fingerprint(hr, body), ExpiresAt: en.clock.Now().Unix() + 3600}
			kept, err := en.store.ClaimIdempotencyKey(context.Background(), claim, en.clock.Now().Unix(), 0)
			if err != nil || kept == nil {
				t.Fatalf("product %s: no kept response (%v)", c.product, err)
			}
			if len(kept.Body) > c.maxKept {
				t.Errorf("product %s: kept %d bytes for a %d-byte answer, want at most %d", c.product, len(kept.Body), len(first.body), c.maxKept)
			}
		}
	})
}
