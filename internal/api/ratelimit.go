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

// limiter keeps one token bucket per K (an API key's id, an end user's id),
// in this instance's memory: with N instances behind a balancer a client
// may get up to N times the rate.
//
// Buckets live in two generations that turn over every refill (the time
// an empty bucket takes to fill, at least a second): a bucket untouched
// for a whole generation is full, the same as a new one, so dropping the
// older generation forgets nothing, and memory holds only the clients of
// the last two refills, however many users there are.
type limiter[K comparable] struct {
	rate   rate.Limit
	burst  int
	refill time.Duration
	now    func() time.Time
	// what is limited, for the 429's detail: "the API key's", "the user's"
	whose string

	mu        sync.Mutex
	buckets   map[K]*rate.Limiter // touched since turned
	old       map[K]*rate.Limiter // touched in the generation before
	turned    time.Time
	turnovers int
}

func newLimiter[K comparable](perSecond float64, burst int, now func() time.Time, whose string) *limiter[K] {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	refill := max(time.Second, time.Duration(float64(burst)/perSecond*float64(time.Second)))
	return &limiter[K]{rate: rate.Limit(perSecond), burst: burst, refill: refill, now: now, whose: whose,
		buckets: map[K]*rate.Limiter{}, old: map[K]*rate.Limiter{}, turned: now()}
}

// bucket is k's bucket at now.
func (l *limiter[K]) bucket(k K, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.turned) >= l.refill {
		// Every bucket of old was last touched before l.turned, at least
		// a refill ago: full, so forgotten without loss.
		l.old, l.buckets = l.buckets, make(map[K]*rate.Limiter, len(l.buckets))
		l.turned = now
		l.turnovers++
	}
	b, ok := l.buckets[k]
	if !ok {
		if b, ok = l.old[k]; ok {
			delete(l.old, k)
		} else {
			b = rate.NewLimiter(l.rate, l.burst)
		}
		l.buckets[k] = b
	}
	return b
}

// size is the number of buckets held.
func (l *limiter[K]) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets) + len(l.old)
}

// spend takes one token of k's bucket, answering 429 RATE_LIMITED with
// Retry-After when the bucket is empty. Every response of a limited client
// carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset.
func (l *limiter[K]) spend(w http.ResponseWriter, k K) error {
	now := l.now()
	b := l.bucket(k, now)
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
		return licensor.Errorf(licensor.CodeRateLimited, "%s rate of %g requests per second (burst %d) is exceeded; retry in %d s", l.whose, float64(l.rate), l.burst, wait)
	}
	remaining := int(b.TokensAt(now))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(0, remaining)))
	// Seconds until the bucket is full again.
	h.Set("RateLimit-Reset", strconv.Itoa(int(math.Ceil(float64(l.burst-remaining)/float64(l.rate)))))
	return nil
}

// limitRate spends one token of the API key's bucket per request
// (Options.RateLimit).
func (s *Server) limitRate(next http.Handler) http.Handler {
	if s.limiter == nil {
		return next
	}
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		if err := s.limiter.spend(w, infoOf(r).keyID); err != nil {
			return err
		}
		next.ServeHTTP(w, r)
		return nil
	})
}

// limitUserRate spends one token of the end user's bucket (the token's
// subject) per request (Options.UserRateLimit), before the body is read.
func (s *Server) limitUserRate(next http.Handler) http.Handler {
	if s.userLimiter == nil {
		return next
	}
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		if err := s.userLimiter.spend(w, claimsOf(r).Subject); err != nil {
			return err
		}
		next.ServeHTTP(w, r)
		return nil
	})
}
