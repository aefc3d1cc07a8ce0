package api

import "net/http"

// Hooks for package api_test: what an Idempotency-Key's stored response is
// filed under, so that a test can read it from the store.

// EndUserScope is the idempotency scope of an end user's requests.
var EndUserScope = endUserScope

// Fingerprint identifies a request to its Idempotency-Key.
func Fingerprint(r *http.Request, body []byte) string { return fingerprint(r, body) }
