package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
)

// writeChange is the Change of a writing request whose response rend
// builds (the Render of its write); with an Idempotency-Key the store keeps
// that response with the write, so that the live response and the kept one
// are equal.
func (s *Server) writeChange(r *http.Request, rend licensor.Renders) licensor.Change {
	c := s.change(r)
	if claim := infoOf(r).claim; claim != nil {
		claim.Render = rend
		c.Idempotency = claim
	}
	return c
}

// requireIdempotencyKey refuses a request without an Idempotency-Key (a
// purchase: a retry must never buy twice).
func (s *Server) requireIdempotencyKey(next http.Handler) http.Handler {
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		if r.Header.Get("Idempotency-Key") == "" {
			return licensor.Errorf(licensor.CodeIdempotencyKeyRequired, "this operation needs an Idempotency-Key header: a random value unique to this request, sent again on retries (a retry then never does it twice)")
		}
		next.ServeHTTP(w, r)
		return nil
	})
}

// idempotent honours the Idempotency-Key header on a POST route: the first
// response to a key is kept and replayed to repeats of the same request
// (with Idempotent-Replayed: true); the same key with another request gets
// 422, and a repeat while the first still runs gets 409. Keys are scoped to
// the API key that sent them.
func (s *Server) idempotent(next http.Handler) http.Handler {
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			next.ServeHTTP(w, r)
			return nil
		}
		if !validIdempotencyKey(key) {
			return licensor.Errorf(licensor.CodeInvalidRequest, "Idempotency-Key must be 1 to %d printable ASCII characters", licensor.MaxIdempotencyKeyLen)
		}
		body, err := jsonapi.ReadBody(r)
		if err != nil {
			return jsonapi.BodyReadError(err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		info := infoOf(r)
		now := s.unix()
		claim := &licensor.IdempotencyClaim{
			APIKeyID:    info.keyID,
			Key:         key,
			Fingerprint: fingerprint(r, body),
			ExpiresAt:   now + int64(s.opts.IdempotencyTTL.Seconds()),
		}
		stored, err := s.store.ClaimIdempotencyKey(r.Context(), claim, now, now-int64(s.opts.IdempotencyStaleAfter.Seconds()))
		if err != nil {
			return err
		}
		if stored != nil {
			replay, err := s.replayedPurchase(r.Context(), *stored)
			if err != nil {
				return err
			}
			stored = &replay
			s.metrics.Replayed()
			w.Header().Set("Idempotent-Replayed", "true")
			return jsonapi.WriteResponse(w, *stored)
		}
		info.claim = claim
		rec := &teeWriter{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if claim.Stored {
			return nil // kept with the write, in its transaction
		}
		// The client may be gone (a crash, a timeout): the key is released
		// or completed all the same, under a context of its own, so that a
		// retry replays the answer or runs afresh at once instead of
		// finding the key in flight until it goes stale.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), keyWriteTimeout)
		defer cancel()
		if rec.status >= 500 || rec.status == 0 {
			if err := s.store.ReleaseIdempotencyKey(ctx, claim); err != nil {
				s.log.Warn("release idempotency key", "err", err, "request_id", info.requestID)
			}
			return nil
		}
		resp := licensor.StoredResponse{Status: rec.status, Body: rec.body.Bytes()}
		for _, h := range []string{"Location", "ETag", "Allow", "WWW-Authenticate"} {
			if v := w.Header().Get(h); v != "" {
				if resp.Headers == nil {
					resp.Headers = map[string]string{}
				}
				resp.Headers[h] = v
			}
		}
		if err := s.store.CompleteIdempotencyKey(ctx, claim, storedForm(resp)); err != nil {
			s.log.Warn("store idempotent response", "err", err, "request_id", info.requestID)
		}
		return nil
	})
}

// storedForm is what is kept for replay of resp, a response that wrote
// nothing: a success whole, anything else (a 4xx) reduced to at most
// licensor.MaxStoredErrorBytes (jsonapi.CompactErrors).
func storedForm(resp licensor.StoredResponse) licensor.StoredResponse {
	if resp.Status < 300 {
		return resp
	}
	resp.Body = jsonapi.CompactErrors(resp.Status, resp.Body)
	return resp
}

// keyWriteTimeout bounds the release or completion of an Idempotency-Key
// after the request's own context is done.
const keyWriteTimeout = 10 * time.Second

func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > licensor.MaxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// fingerprint identifies a request: method, path, query and body.
func fingerprint(r *http.Request, body []byte) string {
	h := sha256.New()
	for _, part := range []string{r.Method, r.URL.Path, r.URL.RawQuery} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// teeWriter passes a response through and keeps a copy of it.
type teeWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *teeWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
