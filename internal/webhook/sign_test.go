package webhook_test

import (
	"net/http"
	"net/netip"
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

func TestPolicyAllowed(t *testing.T) {
	def := webhook.Policy{}
	for addr, want := range map[string]bool{
		"93.184.215.14":        true,
		"2606:2800:21f:cb07::": true,
		"127.0.0.1":            false,
		"::1":                  false,
		"10.1.2.3":             false,
		"172.16.0.1":           false,
		"192.168.1.1":          false,
		"169.254.169.254":      false, // cloud metadata
		"fe80::1":              false,
		"fd00::1":              false,
		"0.0.0.0":              false,
		"::":                   false,
		"224.0.0.1":            false,
		"ff02::1":              false,
		"100.64.0.1":           false,
		"255.255.255.255":      false,
		"::ffff:127.0.0.1":     false, // IPv4-mapped loopback
		"::ffff:10.0.0.1":      false,
		"64:ff9b::a00:1":       false, // NAT64 of 10.0.0.1
		"2002:a00:1::":         false, // 6to4 of 10.0.0.1
	} {
		if got := def.Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("default policy, %s: allowed %v, want %v", addr, got, want)
		}
	}
	allow := webhook.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
	if !allow.Allowed(netip.MustParseAddr("10.1.2.3")) || allow.Allowed(netip.MustParseAddr("10.2.0.1")) {
		t.Error("allow-list: 10.1.0.0/16 should admit 10.1.2.3 and only it")
	}
	if !(&webhook.Policy{AllowPrivate: true}).Allowed(netip.MustParseAddr("127.0.0.1")) {
		t.Error("AllowPrivate should admit loopback")
	}
}

func TestPolicyCheckURL(t *testing.T) {
	def := webhook.Policy{}
	for raw, ok := range map[string]bool{
		"https://hooks.example.com/licensor":   true,
		"https://hooks.example.com:8443/x?a=b": true,
		"https://93.184.215.14/hook":           true,
		"http://hooks.example.com/licensor":    false, // http not allowed
		"https://127.0.0.1/hook":               false,
		"https://[::1]/hook":                   false,
		"https://169.254.169.254/latest":       false,
		"https://user:pw@hooks.example.com/":   false,
		"https://hooks.example.com/#frag":      false,
		"ftp://hooks.example.com/":             false,
		"/relative":                            false,
		"":                                     false,
		"https://":                             false,
	} {
		err := def.CheckURL(raw)
		if (err == nil) != ok {
			t.Errorf("CheckURL(%q): %v, want ok=%v", raw, err, ok)
		}
		if err != nil && licensor.ErrorCode(err) != licensor.CodeInvalidAttribute {
			t.Errorf("CheckURL(%q): code %s, want INVALID_ATTRIBUTE", raw, licensor.ErrorCode(err))
		}
	}
	lax := webhook.Policy{AllowHTTP: true, AllowPrivate: true}
	if err := lax.CheckURL("http://127.0.0.1:8080/hook"); err != nil {
		t.Errorf("lax policy: %v", err)
	}
}
