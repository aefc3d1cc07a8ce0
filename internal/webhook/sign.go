package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/licensor/licensor"
)

// The headers of the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Signature is the Standard Webhooks signature of a message: "v1," and the
// base64 of HMAC-SHA256(key, id + "." + timestamp + "." + body), key being
// the decoded part of the secret after "whsec_".
func Signature(secret, id string, timestamp int64, body []byte) (string, error) {
	key, ok := licensor.WebhookSecretKey(secret)
	if !ok {
		return "", errors.New("webhook: the secret is not whsec_<base64>")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Sign sets the three signature headers of a message on h.
func Sign(h http.Header, secret, id string, timestamp int64, body []byte) error {
	sig, err := Signature(secret, id, timestamp, body)
	if err != nil {
		return err
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(timestamp, 10))
	h.Set(HeaderSignature, sig)
	return nil
}

// Tolerance is how far a message's timestamp may be from the receiver's
// clock: older (or newer) messages are refused as possible replays.
const Tolerance = 5 * time.Minute

// Verify checks the signature headers of a received message against
// secret at time now: the timestamp must be within Tolerance and one of
// the space-separated v1 signatures must match, compared in constant time.
// examples/webhook-receiver has the same function written for receivers,
// with the standard library only.
func Verify(h http.Header, body []byte, secret string, now time.Time) error {
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return errors.New("webhook: missing signature headers")
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("webhook: malformed timestamp")
	}
	if d := now.Sub(time.Unix(t, 0)); d > Tolerance || d < -Tolerance {
		return errors.New("webhook: timestamp outside the tolerance")
	}
	want, err := Signature(secret, id, t, body)
	if err != nil {
		return err
	}
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("webhook: no matching signature")
}

// Message is the body of a delivery: the Standard Webhooks envelope
// (type, timestamp, data) around an event of the change feed.
type Message struct {
	Type      licensor.EventType `json:"type"`
	Timestamp string             `json:"timestamp"` // RFC 3339, UTC: the time of the change
	// EventID is the event's position in the feed (Event.Seq): a receiver
	// that keeps the last one it applied per license can drop stale
	// redeliveries.
	EventID   string          `json:"event_id"`
	Actor     string          `json:"actor"`
	RequestID string          `json:"request_id"`
	Data      json.RawMessage `json:"data"` // the License or Product resource
}

// MessageID is the webhook-id of an event's deliveries: the same for
// every attempt and redelivery, so receivers can drop duplicates.
func MessageID(e *licensor.Event) string { return "evt_" + strconv.FormatInt(e.Seq, 10) }

// Body renders the message of an event.
func Body(e *licensor.Event) ([]byte, error) {
	return json.Marshal(Message{
		Type:      e.Type,
		Timestamp: time.Unix(e.Time, 0).UTC().Format(time.RFC3339),
		EventID:   strconv.FormatInt(e.Seq, 10),
		Actor:     e.Actor,
		RequestID: e.RequestID,
		Data:      e.Data,
	})
}
