package ratelimit

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// TestLimiterForgetsOnlyFullBuckets: the per-user buckets are bounded by the
// users of the last two refills, and a bucket is forgotten only once it is
// full again, so turning generations over never gives a client tokens back.
func TestLimiterForgetsOnlyFullBuckets(t *testing.T) {
	now := time.Unix(1_750_000_000, 0)
	l := New[string](1, 4, func() time.Time { return now }, "the user's")
	if l.refill != 4*time.Second {
		t.Fatalf("refill %v, want 4s", l.refill)
	}
	spend := func(k string) bool { return l.Spend(httptest.NewRecorder(), k) == nil }
	for i := range 4 {
		if !spend("hot") {
			t.Fatalf("request %d of a burst of 4 refused", i)
		}
	}
	if spend("hot") {
		t.Fatal("fifth request of a burst of 4 allowed")
	}
	for i := range 10000 {
		spend("user" + strconv.Itoa(i))
	}
	if n := l.Size(); n != 10001 {
		t.Fatalf("%d buckets, want 10001", n)
	}
	// Half a refill later "hot" has two tokens, and the generations turn
	// over twice at refill intervals: the 10000 idle users are forgotten,
	// "hot", touched all along, is not.
	for step := range 3 {
		now = now.Add(2 * time.Second)
		if !spend("hot") {
			t.Fatalf("step %d: hot refused", step)
		}
	}
	now = now.Add(l.refill)
	spend("hot")
	if n := l.Size(); n > 2 {
		t.Fatalf("%d buckets after two refills of one user's traffic, want at most 2", n)
	}
	// An emptied bucket survives a turnover: still empty.
	empty := New[string](1, 2, func() time.Time { return now }, "the user's")
	spend2 := func() bool { return empty.Spend(httptest.NewRecorder(), "u") == nil }
	now = now.Add(empty.refill - time.Nanosecond) // just before the turnover
	for i, want := range []bool{true, true, false} {
		if spend2() != want {
			t.Fatalf("request %d of a burst of 2: allowed %v", i, !want)
		}
	}
	now = now.Add(time.Nanosecond) // the turnover: "u" moves to old
	empty.bucket("other", now)
	if empty.turnovers != 1 {
		t.Fatalf("%d turnovers, want 1", empty.turnovers)
	}
	if spend2() {
		t.Fatal("a bucket emptied just before a turnover was forgotten (refilled)")
	}
}
