package licensor

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Webhook is a subscription: the events of the chosen types are delivered,
// signed with Secret, to URL.
type Webhook struct {
	ID  int64
	URL string
	// EventTypes are the types delivered; empty means every type.
	EventTypes  []EventType
	Description string
	// Secret signs the deliveries ("whsec_" + base64 of 24 to 64 bytes).
	// The API shows it only in the response that creates the webhook.
	Secret    string
	CreatedAt int64
	UpdatedAt int64
	// PausedAt is when the webhook was paused, nil while it is active.
	// The events of a paused webhook are still queued as deliveries, but
	// none is attempted until it is resumed; then its backlog goes out in
	// the usual order.
	PausedAt *int64
}

// Paused reports whether the webhook is paused.
func (w *Webhook) Paused() bool { return w.PausedAt != nil }

// Wants reports whether the webhook subscribes to events of type t.
func (w *Webhook) Wants(t EventType) bool {
	if len(w.EventTypes) == 0 {
		return true
	}
	for _, e := range w.EventTypes {
		if e == t {
			return true
		}
	}
	return false
}

// WebhookPatch is a partial update of a webhook: non-nil fields replace the
// current values.
type WebhookPatch struct {
	URL         *string
	EventTypes  *[]EventType // an empty list means every type
	Description *string
	Secret      *string
	// Paused pauses (true) or resumes (false) the webhook. Pausing a
	// paused webhook keeps the time it was paused.
	Paused *bool
}

// Update returns w changed by the patch at now, as UpdateWebhook stores
// it: valid (Validate), with UpdatedAt now (and PausedAt now when the
// patch pauses it).
func (p *WebhookPatch) Update(w Webhook, now int64) (Webhook, error) {
	w = p.Apply(w, now)
	if err := w.Validate(); err != nil {
		return Webhook{}, err
	}
	w.UpdatedAt = now
	return w, nil
}

// Apply returns w with the patch's fields replaced; now is the time a
// pause starts.
func (p *WebhookPatch) Apply(w Webhook, now int64) Webhook {
	if p.URL != nil {
		w.URL = *p.URL
	}
	if p.EventTypes != nil {
		w.EventTypes = append([]EventType{}, *p.EventTypes...)
	}
	if p.Description != nil {
		w.Description = *p.Description
	}
	if p.Secret != nil {
		w.Secret = *p.Secret
	}
	switch {
	case p.Paused == nil:
	case !*p.Paused:
		w.PausedAt = nil
	case w.PausedAt == nil:
		w.PausedAt = &now
	}
	return w
}

// Limits of webhooks.
const (
	MaxWebhookURLLen         = 2048
	MaxWebhookDescriptionLen = 1024
	webhookSecretPrefix      = "whsec_"
)

// NewWebhookSecret returns a new random signing secret: "whsec_" and the
// standard base64 of 32 random bytes, the form of the Standard Webhooks
// specification.
func NewWebhookSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// WebhookSecretKey returns the HMAC key of a secret ("whsec_<base64>"), or
// false when the secret is not of that form or its key is shorter than 24
// or longer than 64 bytes.
func WebhookSecretKey(secret string) ([]byte, bool) {
	enc, ok := strings.CutPrefix(secret, webhookSecretPrefix)
	if !ok {
		return nil, false
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, false
	}
	return key, true
}

// ParseWebhookURL checks the form of a webhook URL: absolute http or https
// with a host, without credentials or a fragment. Which schemes and
// addresses the deliveries may use is the delivery policy's decision (see
// internal/webhook). Pointers in errors are relative to the resource.
func ParseWebhookURL(raw string) (*url.URL, error) {
	bad := func(format string, args ...any) error {
		return AttrError(CodeInvalidAttribute, "/attributes/url", format, args...)
	}
	if raw == "" || TextLen(raw) > MaxWebhookURLLen {
		return nil, bad("url must be 1 to %d characters", MaxWebhookURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("url is not a valid URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, bad("url must be an http or https URL")
	case u.Host == "" || u.Hostname() == "":
		return nil, bad("url must name a host")
	case u.User != nil:
		return nil, bad("url must not carry credentials; authenticate deliveries by their signature")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, bad("url must not have a fragment")
	}
	return u, nil
}

// Validate checks a whole webhook (after defaults or a patch), except the
// delivery policy of its URL. Pointers are relative to the resource object.
func (w *Webhook) Validate() error {
	var errs Errors
	if _, err := ParseWebhookURL(w.URL); err != nil {
		errs = append(errs, err.(*Error))
	}
	seen := map[EventType]bool{}
	for _, t := range w.EventTypes {
		if !t.Valid() {
			errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/event_types",
				"unknown event type %q", string(t)))
		} else if seen[t] {
			errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/event_types",
				"event type %q is listed twice", string(t)))
		}
		seen[t] = true
	}
	if TextLen(w.Description) > MaxWebhookDescriptionLen {
		errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/description",
			"description must be at most %d characters", MaxWebhookDescriptionLen))
	}
	if _, ok := WebhookSecretKey(w.Secret); !ok {
		errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/secret",
			"secret must be whsec_ followed by the base64 of 24 to 64 random bytes"))
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// DeliveryState is where a webhook delivery stands.
type DeliveryState string

// Delivery states. A pending delivery is retried until it is delivered or
// its maximum age passes, when it fails for good.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryDelivered DeliveryState = "delivered"
	DeliveryFailed    DeliveryState = "failed"
)

// Valid reports whether s is a known state.
func (s DeliveryState) Valid() bool {
	return s == DeliveryPending || s == DeliveryDelivered || s == DeliveryFailed
}

// Delivery is one event on its way to one webhook: its entry in the
// delivery log.
type Delivery struct {
	ID        int64
	WebhookID int64
	EventSeq  int64
	EventType EventType
	State     DeliveryState
	Attempts  int
	// CreatedAt is when the delivery was queued (or queued again by a
	// redelivery); its maximum age counts from there.
	CreatedAt     int64
	NextAttemptAt int64 // for a pending delivery
	LastAttemptAt *int64
	LastStatus    *int   // HTTP status of the last attempt; nil when none came back
	LastError     string // why the last attempt failed
	DeliveredAt   *int64
}

// DeliveryQuery is one page of a webhook's delivery log, newest first.
type DeliveryQuery struct {
	WebhookID int64
	State     *DeliveryState
	EventSeq  *int64
	Before    int64 // a delivery id; 0 starts at the newest
	Limit     int
}

// DeliveryPage is one page of a delivery log.
type DeliveryPage struct {
	Deliveries []Delivery
	Next       int64 // pass as Before for the next page; 0 on the last page
}

// DeliveryJob is a delivery claimed for one attempt, with what it takes to
// send it.
type DeliveryJob struct {
	Delivery
	URL    string
	Secret string
	Event  Event
}

// DeliveryClaim says which deliveries ClaimDeliveries may claim.
type DeliveryClaim struct {
	// Now is the time of the claim and LeaseUntil the end of its lease
	// (unix seconds).
	Now, LeaseUntil int64
	// Limit is how many deliveries to claim at most.
	Limit int
	// PerWebhook, when positive, is how many attempts one webhook may have
	// in flight at once: of webhook id, at most PerWebhook - InFlight[id]
	// deliveries are claimed.
	PerWebhook int
	// InFlight counts the caller's attempts in flight by webhook id.
	InFlight map[int64]int
	// Paused holds the webhooks whose deliveries are not claimed at all.
	// The stores fill it from the webhooks' paused state (callers leave
	// it nil).
	Paused map[int64]bool
}

// Room is how many more deliveries of webhook id c may claim when taken
// are claimed already (0 for a paused webhook), or -1 when there is no
// limit per webhook.
func (c *DeliveryClaim) Room(id int64, taken int) int {
	if c.Paused[id] {
		return 0
	}
	if c.PerWebhook <= 0 {
		return -1
	}
	return max(c.PerWebhook-c.InFlight[id]-taken, 0)
}

// DueDelivery is a delivery that may be claimed, with its place in the
// queue: the oldest (NextAttemptAt, then ID) first.
type DueDelivery struct {
	ID, WebhookID, NextAttemptAt int64
}

// Take returns the deliveries of due (oldest first) that c may claim, up
// to c.Limit in all and the room of each webhook, and counts them in taken
// (by webhook id).
func (c *DeliveryClaim) Take(due []DueDelivery, taken map[int64]int) []DueDelivery {
	var out []DueDelivery
	for _, d := range due {
		if len(out) == c.Limit {
			break
		}
		if c.Room(d.WebhookID, taken[d.WebhookID]) == 0 {
			continue
		}
		taken[d.WebhookID]++
		out = append(out, d)
	}
	return out
}

// Oldest sorts due oldest first and keeps the first c.Limit.
func (c *DeliveryClaim) Oldest(due []DueDelivery) []DueDelivery {
	slices.SortFunc(due, func(a, b DueDelivery) int {
		return cmp.Or(cmp.Compare(a.NextAttemptAt, b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	return due[:min(len(due), c.Limit)]
}

// DeliveryOutcome is the result of one attempt of a claimed delivery.
type DeliveryOutcome struct {
	ID      int64
	Attempt int   // the job's Attempts: the claim this outcome belongs to
	At      int64 // unix seconds of the attempt
	// Status is the HTTP status received, 0 when none (refused, timed out).
	Status    int
	Error     string
	Delivered bool
	// RetryAt schedules the next attempt of an undelivered delivery; 0
	// marks it failed for good.
	RetryAt int64
}
