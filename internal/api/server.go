// Package api serves the License Management API v4 over HTTP: routing,
// authentication, JSON:API decoding and encoding, and the mapping of domain
// errors to responses. It holds no SQL; every read and write goes through a
// licensor.Store.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/licensor/licensor"
)

// basePath is the prefix of every management route.
const basePath = "/api/license/management/v4"

// Options configure a Server. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger
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
}

// DefaultMaxBodyBytes is the default request body cap.
const DefaultMaxBodyBytes = 4 << 20

// Server is the HTTP face of a licensor.Store.
type Server struct {
	store   licensor.Store
	log     *slog.Logger
	now     func() time.Time
	opts    Options
	keys    *keyring
	handler http.Handler
}

// New returns a Server over store. Call Run to flush key usage in the
// background, and Flush before exiting.
func New(store licensor.Store, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
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
	s := &Server{store: store, log: opts.Logger, now: opts.Now, opts: opts}
	s.keys = newKeyring(store, opts.KeyCacheTTL, opts.Now)
	s.handler = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Run records API key usage every interval until ctx ends, then once more.
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
	if err := s.keys.flush(ctx); err != nil {
		s.log.Warn("record API key use", "err", err)
	}
}

func (s *Server) unix() int64 { return s.now().Unix() }

// change describes the write a request makes.
func (s *Server) change(r *http.Request) licensor.Change {
	info := infoOf(r)
	return licensor.Change{Time: s.unix(), Actor: info.keyName, RequestID: info.requestID}
}
