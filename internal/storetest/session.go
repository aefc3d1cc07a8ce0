package storetest

import (
	"testing"

	"github.com/licensor/licensor"
)

func newSession(t *testing.T, s licensor.Store, id string, seen, expires int64) licensor.ConsoleSession {
	t.Helper()
	k := createKey(t, s, newKey("console-"+id, licensor.ScopeWrite))
	cs := licensor.ConsoleSession{ID: id, KeyID: k.ID, KeyPrefix: k.Prefix, CSRF: "csrf-" + id,
		CreatedAt: seen, SeenAt: seen, ExpiresAt: expires}
	if err := s.CreateConsoleSession(t.Context(), &cs); err != nil {
		t.Fatalf("CreateConsoleSession(%q): %v", id, err)
	}
	return cs
}

func findSession(t *testing.T, s licensor.Store, id string) licensor.ConsoleSession {
	t.Helper()
	got, err := s.FindConsoleSession(t.Context(), id)
	if err != nil {
		t.Fatalf("FindConsoleSession(%q): %v", id, err)
	}
	if got == nil {
		t.Fatalf("FindConsoleSession(%q): nil, nil", id)
	}
	return *got
}

func testConsoleSessionRoundTrip(t *testing.T, s licensor.Store) {
	want := newSession(t, s, "aa01", 1000, 5000)
	if got := findSession(t, s, "aa01"); got != want {
		t.Fatalf("FindConsoleSession:\n got %+v\nwant %+v", got, want)
	}
	_, err := s.FindConsoleSession(t.Context(), "bb02")
	wantCode(t, err, licensor.CodeNotFound)
	dup := want
	if err := s.CreateConsoleSession(t.Context(), &dup); err == nil {
		t.Fatal("CreateConsoleSession with a taken id: no error")
	}
}

func testConsoleSessionTouch(t *testing.T, s licensor.Store) {
	newSession(t, s, "aa01", 1000, 5000)
	if err := s.TouchConsoleSession(t.Context(), "aa01", 1500); err != nil {
		t.Fatalf("TouchConsoleSession: %v", err)
	}
	if err := s.TouchConsoleSession(t.Context(), "aa01", 1200); err != nil { // older: ignored
		t.Fatalf("TouchConsoleSession: %v", err)
	}
	if err := s.TouchConsoleSession(t.Context(), "unknown", 1200); err != nil {
		t.Fatalf("TouchConsoleSession(unknown): %v", err)
	}
	if got := findSession(t, s, "aa01"); got.SeenAt != 1500 || got.CreatedAt != 1000 {
		t.Fatalf("after touches: SeenAt %d CreatedAt %d, want 1500 1000", got.SeenAt, got.CreatedAt)
	}
}

func testConsoleSessionDeleteAndPrune(t *testing.T, s licensor.Store) {
	newSession(t, s, "aa01", 1000, 5000) // deleted
	newSession(t, s, "aa02", 1000, 2000) // past its absolute expiry at 3000
	newSession(t, s, "aa03", 1000, 9000) // idle since 1000
	newSession(t, s, "aa04", 2900, 9000) // alive
	if err := s.DeleteConsoleSession(t.Context(), "aa01"); err != nil {
		t.Fatalf("DeleteConsoleSession: %v", err)
	}
	if err := s.DeleteConsoleSession(t.Context(), "aa01"); err != nil {
		t.Fatalf("DeleteConsoleSession again: %v", err)
	}
	_, err := s.FindConsoleSession(t.Context(), "aa01")
	wantCode(t, err, licensor.CodeNotFound)
	n, err := s.PruneConsoleSessions(t.Context(), 3000, 1500)
	if err != nil || n != 2 {
		t.Fatalf("PruneConsoleSessions = %d, %v; want 2, nil", n, err)
	}
	for _, id := range []string{"aa02", "aa03"} {
		_, err := s.FindConsoleSession(t.Context(), id)
		wantCode(t, err, licensor.CodeNotFound)
	}
	findSession(t, s, "aa04")
}
