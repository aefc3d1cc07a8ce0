// Package api serves the License Management API v4 and the End-user
// License API v4 over HTTP: the route table (routes.go), authentication,
// rate limits, idempotency, the handlers and the wire forms of licensor's
// resources. The JSON:API protocol itself (reading documents and query
// parameters, writing documents, error documents and the one mapping of
// error codes to statuses) is internal/jsonapi's. It holds no SQL; every
// read and write goes through a licensor.Store.
package api

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/apikey"
	"github.com/licensor/licensor/internal/metrics"
	"github.com/licensor/licensor/internal/ratelimit"
)

// basePath is the prefix of every management route.
const basePath = "/api/license/management/v4"

// Options configure a Server. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// AccessLog receives the line of every request (middleware.go); Logger
	// when nil. licensor serve gives it a buffered output.
	AccessLog *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxBodyBytes caps request bodies (413 beyond); default 4 MiB.
	MaxBodyBytes int64
	// MaxBatch caps batch items (400 beyond); default licensor.DefaultMaxBatch.
	MaxBatch int
	// TrustedProxies are the peers whose X-Forwarded-For is honoured.
	TrustedProxies []netip.Prefix
	// KeyCacheTTL bounds how long a key lookup is reused (and so how long
	// a revocation takes to reach this instance); default 1s.
	KeyCacheTTL time.Duration
	// IdempotencyTTL is how long a response to an Idempotency-Key is kept;
	// default 24h.
	IdempotencyTTL time.Duration
	// IdempotencyStaleAfter is how long a key may stay claimed by a request
	// that never finished (its process died) before a retry takes it over;
	// default 2 minutes, more than any request may run.
	IdempotencyStaleAfter time.Duration
	// RateLimit is the sustained requests per second allowed per API key
	// on this instance; 0 disables rate limiting. RateBurst is the bucket
	// size (default: the rate, rounded up).
	RateLimit float64
	RateBurst int
	// UserRateLimit is the sustained requests per second allowed per end
	// user (the subject of the bearer token) on the end-user API, on this
	// instance; 0 disables it (licensor serve's default is
	// DefaultUserRateLimit). UserRateBurst is the bucket size (default:
	// twice the rate, rounded up).
	UserRateLimit float64
	UserRateBurst int
	// MetricsOnAPI serves GET /metrics on the API handler (without an API
	// key). Otherwise serve MetricsHandler on a listener of its own.
	MetricsOnAPI bool
	// EndUser configures the end-user API's bearer tokens and the
	// entitlement cache (enduser.go).
	EndUser EndUserOptions
	// Engine is what the store's engine offers beyond licensor.Store:
	// the mapping of its errors to 503 and its pool and group-commit
	// metrics (e.g. sqlite.DB.Engine); the zero value has none.
	Engine licensor.Engine
	// CheckWebhookURL vets the URL of a webhook being created or changed
	// (internal/webhook's Policy.CheckURL: scheme, internal addresses);
	// nil accepts any well-formed http or https URL.
	CheckWebhookURL func(rawURL string) error
	// CORSOrigins are the origins (https://app.example.com) whose web apps
	// may call the end-user API from a browser (cors.go); none: CORS is off.
	// Each must pass ParseOrigin; one that does not is ignored.
	CORSOrigins []string
}

// DefaultMaxBodyBytes is the default request body cap.
const DefaultMaxBodyBytes = 4 << 20

// DefaultUserRateLimit and DefaultUserRateBurst are licensor serve's
// per-user rate limit of the end-user API: a viewer app makes a few
// requests when it starts (storefront, licenses, entitlements) and one
// now and then after; a user sending more is a script.
const (
	DefaultUserRateLimit = 5
	DefaultUserRateBurst = 20
)

// Server is the HTTP face of a licensor.Store.
type Server struct {
	store   licensor.Store
	log     *slog.Logger
	access  *slog.Logger
	now     func() time.Time
	opts    Options
	keys    *apikey.Ring
	limiter *ratelimit.Keyed[int64] // per API key; nil: no rate limit
	// userLimiter is per end user (token subject); nil: no rate limit.
	userLimiter *ratelimit.Keyed[string]
	metrics     *metrics.Metrics
	endUser     *endUser
	handler     http.Handler
	// classify is the engine's Unavailable: it turns driver errors that
	// mean "the database cannot be used now" into CodeUnavailable (503).
	classify func(error) error
	// corsOrigins are the allowed CORS origins of the end-user API; nil: off.
	corsOrigins map[string]bool
	// warming is set while the entitlement cache warms up
	// (WarmEntitlements): /readyz answers 503 meanwhile.
	warming atomic.Bool
}

// MetricsHandler serves the Prometheus metrics.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.Handler() }

// New returns a Server over store. Call Run to flush key usage in the
// background, and Flush before exiting.
func New(store licensor.Store, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AccessLog == nil {
		opts.AccessLog = opts.Logger
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = licensor.DefaultMaxBatch
	}
	if opts.KeyCacheTTL <= 0 {
		opts.KeyCacheTTL = time.Second
	}
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = licensor.DefaultIdempotencyTTL * time.Second
	}
	if opts.IdempotencyStaleAfter <= 0 {
		opts.IdempotencyStaleAfter = 2 * time.Minute
	}
	if opts.UserRateBurst <= 0 {
		opts.UserRateBurst = int(math.Ceil(2 * opts.UserRateLimit))
	}
	s := &Server{store: store, log: opts.Logger, access: opts.AccessLog, now: opts.Now, opts: opts}
	s.classify = opts.Engine.Unavailable
	s.keys = apikey.NewRing(store, opts.KeyCacheTTL, opts.Now)
	s.limiter = ratelimit.New[int64](opts.RateLimit, opts.RateBurst, opts.Now, "the API key's")
	s.userLimiter = ratelimit.New[string](opts.UserRateLimit, opts.UserRateBurst, opts.Now, "the user's")
	s.metrics = metrics.New(opts.Engine)
	s.initEndUser(store) // wraps s.store to keep the entitlement cache true
	s.corsOrigins = corsOrigins(opts.CORSOrigins)
	s.handler = s.routes()
	return s
}

// Store is the store as the handlers use it: writes through it keep this
// instance's entitlement cache true at once. Background work whose writes
// users may notice (bulk jobs) goes through it too.
func (s *Server) Store() licensor.Store { return s.store }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Run records API key usage every interval, and once more when ctx ends.
// (Expired idempotency keys are pruned by lifecycle.PruneIdempotencyKeys.)
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			s.Flush(ctx)
		}
	}
}

// Flush writes the last-use times of API keys gathered since the last flush.
func (s *Server) Flush(ctx context.Context) {
	if err := s.keys.Flush(ctx); err != nil {
		s.log.Warn("record API key use", "err", err)
	}
}

func (s *Server) unix() int64 { return s.now().Unix() }

// change describes the write a request makes.
func (s *Server) change(r *http.Request) licensor.Change {
	info := infoOf(r)
	return licensor.Change{Time: s.unix(), Actor: info.keyName, RequestID: info.requestID}
}
