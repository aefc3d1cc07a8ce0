package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensor/licensor"
)

// heldStore is a real store whose license creates, while hold is set,
// wait until their caller's context is done (the client has gone, as
// with a write queued behind others) and then reach the store: with the
// cancelled context, as a queued write whose caller gave up (the group
// commit does not run it), or, with goAhead, without the cancellation, as
// a write already taken into a group (it commits).
type heldStore struct {
	licensor.Store
	hold, goAhead atomic.Bool
	reached       chan struct{}
}

func (s *heldStore) CreateLicenses(ctx context.Context, ds []licensor.LicenseDraft, c licensor.Change) ([]licensor.License, error) {
	if s.hold.Load() {
		s.reached <- struct{}{}
		<-ctx.Done()
		if s.goAhead.Load() {
			ctx = context.WithoutCancel(ctx)
		}
	}
	return s.Store.CreateLicenses(ctx, ds, c)
}

// TestIdempotencyKeyAfterClientCrash: a client that disconnects while its
// write is queued (or running) and retries at once gets the write run
// afresh (it never ran) or the stored answer replayed (it committed) —
// never 409 IDEMPOTENCY_KEY_IN_FLIGHT for the minutes until the key goes
// stale.
func TestIdempotencyKeyAfterClientCrash(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		held := &heldStore{reached: make(chan struct{}, 1)}
		open := e.Open
		e.Open = func(t testing.TB) licensor.Store { held.Store = open(t); return held }
		en := newEnv(t, e)
		pid := en.createProduct(map[string]any{})
		for _, goAhead := range []bool{false, true} {
			key := "crash-" + map[bool]string{false: "queued", true: "taken"}[goAhead]
			b, _ := json.Marshal(licenseBody("u1", pid, map[string]any{"order_id": key}))
			body := string(b)
			held.goAhead.Store(goAhead)
			held.hold.Store(true)
			ctx, cancel := context.WithCancel(t.Context())
			hr, _ := http.NewRequestWithContext(ctx, "POST", en.srv.URL+base+"/licenses", strings.NewReader(body))
			hr.Header.Set("Authorization", "Apikey "+en.writeKey)
			hr.Header.Set("Content-Type", "application/vnd.api+json")
			hr.Header.Set("Idempotency-Key", key)
			done := make(chan error, 1)
			go func() {
				resp, err := en.srv.Client().Do(hr)
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			<-held.reached
			held.hold.Store(false)
			cancel() // the client crashes
			if err := <-done; err == nil {
				t.Fatalf("%s: the cancelled request got an answer", key)
			}
			// Retry at once; give the server the moment it needs to see
			// the disconnect and answer the dead client (milliseconds), far
			// below the two minutes after which a held key goes stale.
			var resp *response
			deadline := time.Now().Add(2 * time.Second)
			for {
				resp = en.do(req{method: "POST", path: base + "/licenses", body: body, header: map[string]string{"Idempotency-Key": key}})
				if resp.StatusCode != http.StatusConflict || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("%s: the retry got %d: %s", key, resp.StatusCode, resp.body)
			}
			if replayed := resp.Header.Get("Idempotent-Replayed") == "true"; replayed != goAhead {
				t.Errorf("%s: replayed %v, want %v (the first write committed: %v)", key, replayed, goAhead, goAhead)
			}
			list := en.must(200, req{method: "GET", path: base + "/licenses?count=true&filter[order_id]=" + key}).json(t)
			if n := num(path(list, "meta", "total")); n != 1 {
				t.Errorf("%s: %v licenses, want 1", key, n)
			}
		}
	})
}
