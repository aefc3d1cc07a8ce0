package lifecycle_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/lifecycle"
)

// endlessBacklog is a store whose renewal passes always find a full
// batch (a backlog that never ends): a third renewed, a third sent their
// notice, a third lapsed, so that all three count against the throttle.
// It records when each pass started and how many licenses it handled.
type endlessBacklog struct {
	licensor.Store // nil: only the renewer's methods are called

	mu     sync.Mutex
	starts []time.Time
	counts []int
	limits []int
}

func (s *endlessBacklog) RenewLicenses(ctx context.Context, c licensor.Change, p licensor.RenewalPass) (licensor.RenewalResult, error) {
	start := time.Now()
	var res licensor.RenewalResult
	exp := c.Time - 1
	for i := range p.Limit {
		l := licensor.License{ID: int64(i + 1), ExpiryDate: &exp}
		switch i % 3 {
		case 0:
			res.Renewed = append(res.Renewed, licensor.Renewal{Predecessor: l, Successor: l})
		case 1:
			res.Due = append(res.Due, l)
		default:
			res.Lapsed = append(res.Lapsed, l)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starts, s.counts, s.limits = append(s.starts, start), append(s.counts, res.Len()), append(s.limits, p.Limit)
	return res, nil
}

func (s *endlessBacklog) NextRenewal(context.Context, licensor.RenewalMode) (int64, bool, error) {
	return time.Now().Unix() - 1, true, nil
}

// renewFor runs Renew against an endless backlog for d and returns it,
// with the time Renew was started.
func renewFor(t *testing.T, d time.Duration, opts lifecycle.Options) (*endlessBacklog, time.Time) {
	t.Helper()
	s := &endlessBacklog{}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	t0 := time.Now()
	lifecycle.Renew(ctx, s, opts)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s, t0
}

// TestRenewalRate checks the throttle of the renewer: however fast the
// store, the licenses handled by the passes started by any time t are at
// most burst + one batch + rate × (t − start), where the burst is one
// batch. The bound uses the elapsed time measured, so a slow machine
// widens it rather than failing the test; unthrottled, the same store
// goes far past it (so the bound can fail).
func TestRenewalRate(t *testing.T) {
	const rate, batch = 200.0, 20
	window := 600 * time.Millisecond
	s, t0 := renewFor(t, window, lifecycle.Options{RenewalRate: rate, RenewalBatch: batch})
	if len(s.starts) < 3 {
		t.Fatalf("%d passes in %v: the throttled renewer hardly ran", len(s.starts), window)
	}
	total := 0
	for i, start := range s.starts {
		total += s.counts[i] // licenses of the passes 0..i, all started by start
		bound := 2*batch + int(rate*start.Sub(t0).Seconds())
		if total > bound {
			t.Fatalf("pass %d started %v after Renew: %d licenses handled, want at most %d at %v/s",
				i, start.Sub(t0), total, bound, rate)
		}
		if s.limits[i] != batch {
			t.Fatalf("pass %d: limit %d, want %d", i, s.limits[i], batch)
		}
	}
	t.Logf("throttled at %v/s: %d passes, %d licenses in %v", rate, len(s.starts), total, window)

	// Unthrottled, the same store and window: far past the bound.
	u, _ := renewFor(t, window, lifecycle.Options{RenewalRate: -1, RenewalBatch: batch})
	all := 0
	for _, n := range u.counts {
		all += n
	}
	if limit := 2*batch + int(rate*window.Seconds()); all <= 2*limit {
		t.Errorf("unthrottled: %d licenses in %v, want well over %d (the test's bound could not fail)", all, window, limit)
	}
	t.Logf("unthrottled: %d passes, %d licenses in %v", len(u.starts), all, window)
}

// TestRenewalRateCapsBatch checks that a pass is no bigger than a
// second's worth of the rate (as bulk jobs cap their chunk), so that the
// pause between two passes stays under a second.
func TestRenewalRateCapsBatch(t *testing.T) {
	for _, c := range []struct {
		rate  float64
		batch int
		want  int
	}{
		{5, 0, 5},                                          // the default batch, capped
		{0.5, 10, 1},                                       // at least one
		{1e9, 0, lifecycle.DefaultRenewalBatch},            // a rate above the batch leaves it
		{-1, 0, lifecycle.DefaultRenewalBatch},             // unthrottled
		{0, 1000, min(1000, lifecycle.DefaultRenewalRate)}, // the default rate caps a batch of 1000
	} {
		s, _ := renewFor(t, 50*time.Millisecond, lifecycle.Options{RenewalRate: c.rate, RenewalBatch: c.batch})
		if len(s.limits) == 0 || s.limits[0] != c.want {
			t.Errorf("rate %v, batch %d: limits %v, want %d", c.rate, c.batch, s.limits[:min(len(s.limits), 3)], c.want)
		}
	}
}
