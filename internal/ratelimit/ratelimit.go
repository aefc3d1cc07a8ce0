// Package ratelimit keeps the token buckets of the per-client rate limits
// (an API key's, an end user's) in this instance's memory, bounded however
// many clients there are, and answers a limited request with the
// RateLimit headers and a RATE_LIMITED error.
package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/licensor/licensor"
)

// Keyed keeps one token bucket per K (an API key's id, an end user's id),
// in this instance's memory: with N instances behind a balancer a client
// may get up to N times the rate.
//
// Buckets live in two generations that turn over every refill (the time
// an empty bucket takes to fill, at least a second): a bucket untouched
// for a whole generation is full, the same as a new one, so dropping the
// older generation forgets nothing, and memory holds only the clients of
// the last two refills, however many users there are.
type Keyed[K comparable] struct {
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

// New returns the buckets of perSecond requests with bursts of burst (by
// default one second's), nil when perSecond is not positive (no limit);
// whose names what is limited in the error ("the API key's").
func New[K comparable](perSecond float64, burst int, now func() time.Time, whose string) *Keyed[K] {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	refill := max(time.Second, time.Duration(float64(burst)/perSecond*float64(time.Second)))
	return &Keyed[K]{rate: rate.Limit(perSecond), burst: burst, refill: refill, now: now, whose: whose,
		buckets: map[K]*rate.Limiter{}, old: map[K]*rate.Limiter{}, turned: now()}
}

// bucket is k's bucket at now.
func (l *Keyed[K]) bucket(k K, now time.Time) *rate.Limiter {
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

// Size is the number of buckets held.
func (l *Keyed[K]) Size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets) + len(l.old)
}

// Spend takes one token of k's bucket, answering 429 RATE_LIMITED with
// Retry-After when the bucket is empty. Every response of a limited client
// carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset.
func (l *Keyed[K]) Spend(w http.ResponseWriter, k K) error {
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
