package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/licensor/licensor"
)

// limiter keeps one token bucket per API key, in this instance's memory:
// with N instances behind a balancer a key may get up to N times the rate.
type limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[int64]*rate.Limiter
}

func newLimiter(perSecond float64, burst int, now func() time.Time) *limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &limiter{rate: rate.Limit(perSecond), burst: burst, now: now, buckets: map[int64]*rate.Limiter{}}
}

func (l *limiter) bucket(keyID int64) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[keyID]
	if !ok {
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[keyID] = b
	}
	return b
}

// limitRate spends one token of the key's bucket per request, answering 429
// with Retry-After when the bucket is empty. Every response of a limited
// key carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset.
func (s *Server) limitRate(next http.Handler) http.Handler {
	if s.limiter == nil {
		return next
	}
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		l := s.limiter
		b := l.bucket(infoOf(r).keyID)
		now := l.now()
		res := b.ReserveN(now, 1)
		delay := res.DelayFrom(now)
		h := w.Header()
		h.Set("RateLimit-Limit", strconv.Itoa(l.burst))
		if delay > 0 {
			res.CancelAt(now)
			wait := int(math.Ceil(delay.Seconds()))
			h.Set("RateLimit-Remaining", "0")
			h.Set("RateLimit-Reset", strconv.Itoa(wait))
			h.Set("Retry-After", strconv.Itoa(wait))
			return licensor.Errorf(licensor.CodeRateLimited, "the API key's rate of %g requests per second (burst %d) is exceeded; retry in %d s", float64(l.rate), l.burst, wait)
		}
		remaining := int(b.TokensAt(now))
		h.Set("RateLimit-Remaining", strconv.Itoa(max(0, remaining)))
		// Seconds until the bucket is full again.
		h.Set("RateLimit-Reset", strconv.Itoa(int(math.Ceil(float64(l.burst-remaining)/float64(l.rate)))))
		next.ServeHTTP(w, r)
		return nil
	})
}
