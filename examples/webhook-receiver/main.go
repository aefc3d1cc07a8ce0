// Command webhook-receiver is an example licensor webhook subscriber: the
// shape of a DRM or CAS integration (the "Irdeto hook" of the Amino docs).
// It verifies each delivery's Standard Webhooks signature, drops
// duplicates and stale redeliveries, and turns license events into calls
// to an entitlement system, answering 2xx only once the change is applied
// (anything else makes licensor retry, later, in the same order).
//
// It uses the standard library only, so that it can be copied out of this
// repository as a starting point:
//
//	WEBHOOK_SECRET=whsec_... LISTEN=:9000 go run ./examples/webhook-receiver
//
// and subscribed with
//
//	licensor webhooks create --url https://drm-bridge.example.net/licensor \
//	    --event license.created,license.deleted,license.expired,license.suspended,license.reinstated,product.updated
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	secret := os.Getenv("WEBHOOK_SECRET")
	if _, err := secretKey(secret); err != nil {
		fmt.Fprintln(os.Stderr, "webhook-receiver: set WEBHOOK_SECRET to the secret licensor printed (whsec_...)")
		os.Exit(2)
	}
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":9000"
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	h := &Handler{Secret: secret, DRM: logDRM{log}, Log: log}
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	log.Info("listening", "addr", addr)
	if err := srv.ListenAndServe(); err != nil {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}

// Tolerance is how far a delivery's timestamp may be from our clock; older
// deliveries are refused as possible replays.
const Tolerance = 5 * time.Minute

// Verify checks the Standard Webhooks signature of a delivery: the
// webhook-signature header holds one or more "v1,<base64>" values, each an
// HMAC-SHA256, keyed with the base64-decoded part of the secret after
// "whsec_", of "<webhook-id>.<webhook-timestamp>.<body>". The timestamp
// must be within Tolerance of now. Signatures are compared in constant
// time.
func Verify(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("malformed webhook-timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
		return errors.New("webhook-timestamp too far from now")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no valid signature")
}

func secretKey(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, errors.New("the secret must start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) == 0 {
		return nil, errors.New("the secret must be whsec_ followed by base64")
	}
	return key, nil
}

// Message is the body of a delivery.
type Message struct {
	Type      string          `json:"type"`      // license.created, .deleted, .expired, .suspended, .reinstated, .renewed, .renewal_due, .renewal_cancelled, product.*
	Timestamp string          `json:"timestamp"` // RFC 3339: when the change was made
	EventID   string          `json:"event_id"`  // position in licensor's change feed
	Actor     string          `json:"actor"`
	RequestID string          `json:"request_id"`
	Data      json.RawMessage `json:"data"` // the License or Product, as licensor's API shows it
}

// License is what a DRM needs of a license resource.
type License struct {
	ID         string `json:"id"`
	Attributes struct {
		Status    string `json:"status"`
		StartDate int64  `json:"start_date"`
		StopDate  *int64 `json:"stop_date"`
	} `json:"attributes"`
	Relationships struct {
		User    struct{ Data struct{ ID string } } `json:"user"`
		Product struct{ Data struct{ ID string } } `json:"product"`
	} `json:"relationships"`
}

// DRM is the entitlement system the events are applied to: Irdeto, a CAS,
// a CDN token service. Its calls must be idempotent: a delivery may come
// twice.
type DRM interface {
	// Grant entitles user to product from start until stop (nil: no end).
	Grant(licenseID, user, product string, start int64, stop *int64) error
	// Revoke ends the entitlement of a license.
	Revoke(licenseID, user, product string) error
}

// Handler receives deliveries.
type Handler struct {
	Secret string
	DRM    DRM
	Log    *slog.Logger
	Now    func() time.Time // time.Now when nil

	mu sync.Mutex
	// applied is the last event applied per license. Licensor delivers a
	// license's events in order, but a redelivery (asked for through its
	// API) can bring an old one again: it must not undo a newer change.
	// A real bridge keeps this in its own database.
	applied map[string]int64
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	if err := Verify(h.Secret, r.Header, body, now()); err != nil {
		h.Log.Warn("refused a delivery", "err", err)
		w.WriteHeader(http.StatusUnauthorized) // licensor retries; a forger gets nothing
		return
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := h.apply(m); err != nil {
		// A 5xx makes licensor retry this event (and hold back the
		// license's later ones) with exponential backoff.
		h.Log.Error("apply", "event", m.EventID, "type", m.Type, "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apply turns one event into DRM calls.
func (h *Handler) apply(m Message) error {
	if !strings.HasPrefix(m.Type, "license.") {
		// product.updated: a DRM that maps products to channel packages
		// updates the package here. Nothing to do in this example.
		return nil
	}
	var l License
	if err := json.Unmarshal(m.Data, &l); err != nil {
		return fmt.Errorf("license data: %w", err)
	}
	seq, _ := strconv.ParseInt(m.EventID, 10, 64)
	h.mu.Lock()
	if h.applied == nil {
		h.applied = map[string]int64{}
	}
	stale := seq <= h.applied[l.ID]
	h.mu.Unlock()
	if stale {
		return nil // a duplicate or an old redelivery: already applied
	}
	user, product := l.Relationships.User.Data.ID, l.Relationships.Product.Data.ID
	var err error
	switch {
	case (m.Type == "license.created" || m.Type == "license.reinstated") && l.Attributes.Status == "ACTIVE":
		err = h.DRM.Grant(l.ID, user, product, l.Attributes.StartDate, l.Attributes.StopDate)
	case m.Type == "license.deleted", m.Type == "license.expired", m.Type == "license.suspended":
		err = h.DRM.Revoke(l.ID, user, product)
	}
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.applied[l.ID] = max(h.applied[l.ID], seq)
	h.mu.Unlock()
	return nil
}

// logDRM stands in for a real DRM: it logs the calls.
type logDRM struct{ log *slog.Logger }

func (d logDRM) Grant(licenseID, user, product string, start int64, stop *int64) error {
	d.log.Info("grant", "license", licenseID, "user", user, "product", product, "start", start, "stop", stop)
	return nil
}

func (d logDRM) Revoke(licenseID, user, product string) error {
	d.log.Info("revoke", "license", licenseID, "user", user, "product", product)
	return nil
}
