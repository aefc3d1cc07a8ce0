package api_test

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strconv"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
	"github.com/licensor/licensor/internal/jsonapi"
)

// filled is prefix, then item (with %d replaced by a counter) repeated,
// comma-separated, then suffix, the whole at most size bytes.
func filled(prefix, item, suffix string, size int) []byte {
	return repeated(prefix, item, suffix, size, -1)
}

// repeated is filled with at most n items (n < 0: no limit).
func repeated(prefix, item, suffix string, size, n int) []byte {
	b := bytes.NewBufferString(prefix)
	for i := 0; i != n; i++ {
		next := []byte(item)
		if bytes.Contains(next, []byte("%d")) {
			next = bytes.ReplaceAll(next, []byte("%d"), []byte(strconv.Itoa(i)))
		}
		if i > 0 {
			next = append([]byte{','}, next...)
		}
		if b.Len()+len(next)+len(suffix) > size {
			break
		}
		b.Write(next)
	}
	b.WriteString(suffix)
	return b.Bytes()
}

// allocated runs f and returns the bytes allocated meanwhile (by the whole
// process: the server's handling of the request, chiefly).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestAmplificationBounded sends bodies of the full body cap (4 MiB) made
// to turn few bytes into much work: a batch of 1.4 M empty items, an
// object of 349 k unknown members, an array of 2 M numbers, and the worst
// document that passes the shape limits (a batch of 1000 items with 115
// unknown members each: 115 k errors). Each must be refused with its
// code, in a response of at most about MaxErrorObjects objects, while the
// request allocates at most a small multiple of the body cap. (Before the
// limits, the check answered 464 MiB and took 1.6 GiB.)
func TestAmplificationBounded(t *testing.T) {
	en := newEnv(t, engines(t)[0], withTokens)
	product := en.createProduct(map[string]any{"title": "P"})
	tok := en.token("41", nil)
	const size = api.DefaultMaxBodyBytes
	const maxResponse = 160 << 10  // 101 error objects of at most ~1.5 KiB
	const maxAllocated = 16 * size // the body, its copy in the decoder, and what the limits let through, all summed
	unknownMembers := func(prefix, suffix string) []byte { return filled(prefix, `"a%d":1`, suffix, size) }
	for _, c := range []struct {
		name, path, key, user string
		body                  []byte
		code                  licensor.Code
		pointer               string
		omitted               int // > 0: the last error object is ERRORS_OMITTED with this count
	}{
		{name: "check of 1.4M empty items", path: base + "/entitlements/check", key: en.readKey,
			body: filled(`{"data":[`, `{}`, `]}`, size), code: licensor.CodeBatchTooLarge, pointer: "/data"},
		{name: "batch create of 1.4M empty items", path: base + "/licenses/batch_create",
			body: filled(`{"data":[`, `{}`, `]}`, size), code: licensor.CodeBatchTooLarge, pointer: "/data"},
		{name: "batch delete of 1.4M empty items", path: base + "/licenses/batch_delete",
			body: filled(`{"data":[`, `{}`, `]}`, size), code: licensor.CodeBatchTooLarge, pointer: "/data"},
		{name: "product with 349k unknown attributes", path: base + "/products",
			body: unknownMembers(`{"data":{"type":"Product","attributes":{`, `}}}`), code: licensor.CodeInvalidRequest, pointer: "/data/attributes"},
		{name: "license with 2M numbers in meta", path: base + "/licenses",
			body: filled(`{"data":{"type":"License","meta":[`, `1`, `]}}`, size), code: licensor.CodeInvalidRequest, pointer: "/data/meta"},
		{name: "webhook with 349k unknown attributes", path: base + "/webhooks",
			body: unknownMembers(`{"data":{"type":"Webhook","attributes":{`, `}}}`), code: licensor.CodeInvalidRequest, pointer: "/data/attributes"},
		{name: "purchase with 349k unknown attributes", path: userBase + "/users/41/licenses", user: tok,
			body: unknownMembers(`{"data":{"type":"License","attributes":{"purchase_record":{"payment_method":"billing"},`,
				`},"relationships":{"product":{"data":{"type":"Product","id":"`+product+`"}}}}}`),
			code: licensor.CodeInvalidRequest, pointer: "/data/attributes"},
		{name: "check of 1000 questions with 115 unknown members each", path: base + "/entitlements/check", key: en.readKey,
			body: repeated(`{"data":[`, string(filled(`{"type":"EntitlementCheck","attributes":{"user_id":"41","channel_id":"c","service":"live"},`, `"a%d":1`, `}`, 1000)), `]}`, size, licensor.DefaultMaxBatch),
			code: licensor.CodeUnknownAttribute, omitted: -1},
		{name: "batch create of 1000 items with 115 unknown members each", path: base + "/licenses/batch_create",
			body: repeated(`{"data":[`, string(filled(`{"type":"License","attributes":{`, `"a%d":1`, `}}`, 1000)), `]}`, size, licensor.DefaultMaxBatch),
			code: licensor.CodeUnknownAttribute, omitted: -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if len(c.body) > size || (c.omitted == 0 && len(c.body) < size-3000) {
				t.Fatalf("body of %d bytes", len(c.body))
			}
			var resp *response
			r := req{method: "POST", path: c.path, body: c.body, key: c.key, header: map[string]string{"Idempotency-Key": "k-" + c.name}}
			n := allocated(func() {
				if c.user != "" {
					resp = en.user(c.user, r)
				} else {
					resp = en.do(r)
				}
			})
			if resp.StatusCode != 400 {
				t.Fatalf("status %d, want 400: %.500s", resp.StatusCode, resp.body)
			}
			if len(resp.body) > maxResponse {
				t.Errorf("a response of %d bytes, want at most %d", len(resp.body), maxResponse)
			}
			bound := uint64(maxAllocated)
			if raceEnabled {
				bound *= 2
			}
			if n > bound {
				t.Errorf("the request allocated %d MiB, want at most %d MiB (%d× the %d MiB body cap)", n>>20, bound>>20, bound/size, size>>20)
			}
			t.Logf("%d bytes of response, %.1f MiB allocated", len(resp.body), float64(n)/(1<<20))
			var doc struct {
				Errors []struct {
					Status string         `json:"status"`
					Code   licensor.Code  `json:"code"`
					Source map[string]any `json:"source"`
					Meta   map[string]any `json:"meta"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(resp.body, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Errors[0].Code != c.code || (c.pointer != "" && doc.Errors[0].Source["pointer"] != c.pointer) {
				t.Errorf("first error %+v, want %s at %q", doc.Errors[0], c.code, c.pointer)
			}
			if c.omitted == 0 {
				if len(doc.Errors) != 1 {
					t.Errorf("%d errors, want 1", len(doc.Errors))
				}
				return
			}
			if len(doc.Errors) != jsonapi.MaxErrorObjects+1 {
				t.Fatalf("%d error objects, want %d and one saying how many were left out", len(doc.Errors), jsonapi.MaxErrorObjects)
			}
			last := doc.Errors[len(doc.Errors)-1]
			if last.Code != licensor.CodeErrorsOmitted || last.Status != "400" {
				t.Errorf("last error %+v, want ERRORS_OMITTED", last)
			}
			if omitted, _ := last.Meta["omitted"].(float64); omitted < 100_000 {
				t.Errorf("meta.omitted %v, want the ~115,000 errors left out", last.Meta["omitted"])
			}
		})
	}
}
