package webhook_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/webhook"
)

// The example of the Standard Webhooks specification.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignatureMatchesTheSpecification(t *testing.T) {
	got, err := webhook.Signature(specSecret, specID, specTimestamp, []byte(specBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != specSignature {
		t.Errorf("Signature: got %s, want %s", got, specSignature)
	}
}

func TestVerify(t *testing.T) {
	at := time.Unix(specTimestamp, 0)
	signed := func() http.Header {
		h := http.Header{}
		if err := webhook.Sign(h, specSecret, specID, specTimestamp, []byte(specBody)); err != nil {
			t.Fatal(err)
		}
		return h
	}
	if err := webhook.Verify(signed(), []byte(specBody), specSecret, at.Add(time.Minute)); err != nil {
		t.Errorf("Verify of a good message: %v", err)
	}
	// Several signatures (during a secret rotation): any may match.
	h := signed()
	h.Set(webhook.HeaderSignature, "v1,bm90IGl0 "+h.Get(webhook.HeaderSignature))
	if err := webhook.Verify(h, []byte(specBody), specSecret, at); err != nil {
		t.Errorf("Verify with two signatures: %v", err)
	}
	other := licensor.NewWebhookSecret()
	for name, c := range map[string]struct {
		h      http.Header
		body   string
		secret string
		now    time.Time
	}{
		"tampered body":   {signed(), specBody + " ", specSecret, at},
		"other secret":    {signed(), specBody, other, at},
		"too old":         {signed(), specBody, specSecret, at.Add(webhook.Tolerance + time.Second)},
		"from the future": {signed(), specBody, specSecret, at.Add(-webhook.Tolerance - time.Second)},
		"no headers":      {http.Header{}, specBody, specSecret, at},
		"other id": {func() http.Header {
			h := signed()
			h.Set(webhook.HeaderID, "msg_other")
			return h
		}(), specBody, specSecret, at},
	} {
		if err := webhook.Verify(c.h, []byte(c.body), c.secret, c.now); err == nil {
			t.Errorf("%s: Verify accepted it", name)
		}
	}
}

func TestNewWebhookSecret(t *testing.T) {
	s := licensor.NewWebhookSecret()
	key, ok := licensor.WebhookSecretKey(s)
	if !strings.HasPrefix(s, "whsec_") || !ok || len(key) != 32 {
		t.Errorf("NewWebhookSecret: %q (key %d bytes, ok %v)", s, len(key), ok)
	}
	if s == licensor.NewWebhookSecret() {
		t.Error("two secrets are equal")
	}
	for _, bad := range []string{"", "whsec_", "whsec_!!!", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2hvcnQ="} {
		if _, ok := licensor.WebhookSecretKey(bad); ok {
			t.Errorf("WebhookSecretKey(%q) accepted it", bad)
		}
	}
}
