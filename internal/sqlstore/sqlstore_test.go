package sqlstore

import (
	"testing"
	"testing/fstest"

	"github.com/licensor/licensor"
)

func TestMigrations(t *testing.T) {
	ok := fstest.MapFS{
		"migrations/0002_b.sql": {Data: []byte("B")},
		"migrations/0001_a.sql": {Data: []byte("A")},
	}
	ms, err := Migrations(ok)
	if err != nil || len(ms) != 2 || ms[0].Name != "0001_a.sql" || ms[1].SQL != "B" {
		t.Fatalf("Migrations = %+v, %v", ms, err)
	}
	if got := Pending(ms, 1); len(got) != 1 || got[0] != "0002_b.sql" {
		t.Errorf("Pending(1) = %v", got)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"gap":      {"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}},
		"unnamed":  {"migrations/a.sql": {}},
		"not .sql": {"migrations/0001_a.txt": {}},
	} {
		if _, err := Migrations(fsys); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The decision a claim makes on an existing key, case by case.
func TestIdempotencyClaim(t *testing.T) {
	const now, stale = 100, 40
	claim := &licensor.IdempotencyClaim{Fingerprint: "f"}
	done, status, headers := int64(90), int64(201), `{"Location":"/x"}`
	for _, c := range []struct {
		name       string
		row        IdempotencyRow
		take       bool
		replay     bool
		code       licensor.Code
		wantHeader string
	}{
		{name: "expired", row: IdempotencyRow{Fingerprint: "other", ExpiresAt: now - 1}, take: true},
		{name: "another request", row: IdempotencyRow{Fingerprint: "other", ExpiresAt: now}, code: licensor.CodeIdempotencyKeyReused},
		{name: "completed", row: IdempotencyRow{Fingerprint: "f", ExpiresAt: now, CompletedAt: &done, Status: &status, Headers: &headers, Body: []byte("{}")},
			replay: true, wantHeader: "/x"},
		{name: "in flight", row: IdempotencyRow{Fingerprint: "f", ExpiresAt: now, StartedAt: stale + 1}, code: licensor.CodeIdempotencyKeyInFlight},
		{name: "stale holder", row: IdempotencyRow{Fingerprint: "f", ExpiresAt: now, StartedAt: stale}, take: true},
	} {
		replay, take, err := c.row.Claim(claim, now, stale)
		if take != c.take || (replay != nil) != c.replay || licensor.ErrorCode(err) != c.code {
			t.Errorf("%s: replay %+v, take %v, err %v", c.name, replay, take, err)
		}
		if replay != nil && (replay.Status != 201 || replay.Headers["Location"] != c.wantHeader || string(replay.Body) != "{}") {
			t.Errorf("%s: replay %+v", c.name, replay)
		}
	}
}

func TestOutcomeValues(t *testing.T) {
	for _, c := range []struct {
		o           licensor.DeliveryOutcome
		state       string
		next        int64
		status      bool
		deliveredAt bool
	}{
		{licensor.DeliveryOutcome{At: 5, Status: 200, Delivered: true}, "delivered", 5, true, true},
		{licensor.DeliveryOutcome{At: 5, RetryAt: 9}, "pending", 9, false, false},
		{licensor.DeliveryOutcome{At: 5, Status: 500}, "failed", 5, true, false},
	} {
		state, next, status, deliveredAt := OutcomeValues(c.o)
		if state != c.state || next != c.next || (status != nil) != c.status || (deliveredAt != nil) != c.deliveredAt ||
			(status != nil && *status != int64(c.o.Status)) || (deliveredAt != nil && *deliveredAt != c.o.At) {
			t.Errorf("OutcomeValues(%+v) = %s, %d, %v, %v", c.o, state, next, status, deliveredAt)
		}
	}
}
