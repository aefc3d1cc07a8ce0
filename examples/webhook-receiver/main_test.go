package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/webhook"
)

// TestVerifyAgreesWithLicensor signs messages as licensor's dispatcher does
// and checks them with the example's own Verify.
func TestVerifyAgreesWithLicensor(t *testing.T) {
	secret := licensor.NewWebhookSecret()
	body := []byte(`{"type":"license.created","event_id":"7"}`)
	now := time.Now()
	h := http.Header{}
	if err := webhook.Sign(h, secret, "evt_7", now.Unix(), body); err != nil {
		t.Fatal(err)
	}
	if err := Verify(secret, h, body, now); err != nil {
		t.Fatalf("Verify rejected a licensor signature: %v", err)
	}
	if err := Verify(secret, h, append(body, ' '), now); err == nil {
		t.Error("Verify accepted a tampered body")
	}
	if err := Verify(licensor.NewWebhookSecret(), h, body, now); err == nil {
		t.Error("Verify accepted another secret")
	}
	if err := Verify(secret, h, body, now.Add(10*time.Minute)); err == nil {
		t.Error("Verify accepted an old message")
	}
	// The example of the Standard Webhooks specification.
	spec := http.Header{}
	spec.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	spec.Set("webhook-timestamp", "1614265330")
	spec.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	if err := Verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", spec, []byte(`{"test": 2432232314}`), time.Unix(1614265330, 0)); err != nil {
		t.Errorf("the specification's example: %v", err)
	}
}

type recordingDRM struct{ calls []string }

func (d *recordingDRM) Grant(id, user, product string, start int64, stop *int64) error {
	d.calls = append(d.calls, "grant "+id+" "+user+" "+product)
	return nil
}

func (d *recordingDRM) Revoke(id, user, product string) error {
	d.calls = append(d.calls, "revoke "+id)
	return nil
}

// TestHandler feeds the handler licensor's own messages.
func TestHandler(t *testing.T) {
	secret := licensor.NewWebhookSecret()
	drm := &recordingDRM{}
	h := &Handler{Secret: secret, DRM: drm, Log: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(h)
	defer srv.Close()
	l := licensor.License{ID: 5, UserID: "41", ProductID: 3, Status: licensor.StatusActive, StartDate: 100}
	send := func(seq int64, typ licensor.EventType, sign bool) int {
		e := licensor.LicenseEvent(typ, &l, licensor.Change{Time: 100, Actor: "bss"})
		e.Seq = seq
		body, err := webhook.Body(&e)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader(body))
		if sign {
			if err := webhook.Sign(req.Header, secret, webhook.MessageID(&e), time.Now().Unix(), body); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(1, licensor.EventLicenseCreated, false); got != http.StatusUnauthorized {
		t.Errorf("unsigned: %d", got)
	}
	for _, c := range []struct {
		seq int64
		typ licensor.EventType
	}{{1, licensor.EventLicenseCreated}, {1, licensor.EventLicenseCreated}, {2, licensor.EventLicenseDeleted}, {1, licensor.EventLicenseCreated}} {
		if got := send(c.seq, c.typ, true); got != http.StatusNoContent {
			t.Errorf("event %d: %d", c.seq, got)
		}
	}
	// The duplicate and the stale redelivery changed nothing.
	if want := []string{"grant 5 41 3", "revoke 5"}; len(drm.calls) != 2 || drm.calls[0] != want[0] || drm.calls[1] != want[1] {
		t.Errorf("DRM calls: %v, want %v", drm.calls, want)
	}
}
