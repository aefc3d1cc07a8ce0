package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
	"github.com/licensor/licensor/internal/bearer"
	"github.com/licensor/licensor/internal/entitlement"
)

// endUserConfig is what serve is told about end-user tokens and the
// entitlement cache.
type endUserConfig struct {
	secretFile, jwksFile string
	issuer, audience     string
	leeway               time.Duration
	ttl                  time.Duration
	users                int
	cacheBytes           int
	feedPoll             time.Duration
	warmTimeout          time.Duration

	options api.EndUserOptions // set by load
}

// register adds the end-user flags to fs; defaults come from the
// environment.
func (c *endUserConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.secretFile, "jwt-hs256-secret-file", "",
		"file holding the HS256 secret of end-user tokens, at least 32 bytes (env LICENSOR_JWT_HS256_SECRET_FILE, or the secret itself in LICENSOR_JWT_HS256_SECRET)")
	fs.StringVar(&c.jwksFile, "jwt-jwks-file", "",
		"JWKS file of the RS256/ES256 public keys of end-user tokens (env LICENSOR_JWT_JWKS_FILE)")
	fs.StringVar(&c.issuer, "jwt-issuer", "", "required iss of end-user tokens (env LICENSOR_JWT_ISSUER)")
	fs.StringVar(&c.audience, "jwt-audience", "", "required aud of end-user tokens (env LICENSOR_JWT_AUDIENCE)")
	fs.DurationVar(&c.leeway, "jwt-leeway", 0, "clock skew tolerated on the exp, nbf and iat of end-user tokens")
	fs.DurationVar(&c.ttl, "entitlement-ttl", entitlement.DefaultTTL,
		"longest time an entitlement answer may miss a change made through another instance (keep it at most 1s)")
	fs.IntVar(&c.users, "entitlement-cache-users", entitlement.DefaultUsers, "most users whose licenses are kept in memory")
	fs.IntVar(&c.cacheBytes, "entitlement-cache-bytes", entitlement.DefaultCacheBytes,
		"estimated memory of the cached users' licenses in bytes (least recently used out first; products may take an eighth more)")
	fs.DurationVar(&c.feedPoll, "entitlement-feed-poll", 100*time.Millisecond,
		"how often the entitlement cache reads the change feed for other instances' writes (0: rely on --entitlement-ttl alone)")
	fs.DurationVar(&c.warmTimeout, "entitlement-warm-timeout", 10*time.Second,
		"at start, longest time spent loading users into the entitlement cache while /readyz answers 503: those the last instance to stop was answering for (saved at its SIGTERM), else every user of a live license, a few thousand licenses a query (0: no warm-up, every user loaded by their first check; none without the change feed)")
}

// load reads the key files and checks the configuration.
func (c *endUserConfig) load(getenv func(string) string) error {
	o := bearer.Options{Issuer: c.issuer, Audience: c.audience, Leeway: c.leeway}
	switch {
	case c.secretFile != "":
		b, err := os.ReadFile(c.secretFile)
		if err != nil {
			return fmt.Errorf("read --jwt-hs256-secret-file: %w", err)
		}
		o.HS256Secret = bytes.TrimRight(b, "\r\n") // a file written by echo ends in a newline
		if len(o.HS256Secret) == 0 {
			return fmt.Errorf("--jwt-hs256-secret-file %s is empty", c.secretFile)
		}
	case getenv("LICENSOR_JWT_HS256_SECRET") != "":
		o.HS256Secret = []byte(getenv("LICENSOR_JWT_HS256_SECRET"))
	}
	if c.jwksFile != "" {
		b, err := os.ReadFile(c.jwksFile)
		if err != nil {
			return fmt.Errorf("read --jwt-jwks-file: %w", err)
		}
		o.JWKS = b
	}
	if err := bearer.Check(o); err != nil {
		return fmt.Errorf("end-user tokens: %w", err)
	}
	if c.leeway < 0 || c.ttl <= 0 || c.users <= 0 || c.cacheBytes <= 0 || c.feedPoll < 0 || c.warmTimeout < 0 {
		return usageError{"--jwt-leeway, --entitlement-feed-poll and --entitlement-warm-timeout must not be negative; --entitlement-ttl, --entitlement-cache-users and --entitlement-cache-bytes must be positive"}
	}
	c.options = api.EndUserOptions{Tokens: o, Cache: entitlement.Options{TTL: c.ttl, MaxUsers: c.users, MaxBytes: c.cacheBytes}}
	return nil
}

// follow keeps srv's entitlement cache true towards other instances'
// writes by following the change feed of store until ctx ends; the
// returned function waits for it to stop.
func (c *endUserConfig) follow(ctx context.Context, srv *api.Server, store licensor.Store, logger *slog.Logger) (wait func()) {
	if c.feedPoll <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := entitlement.FeedWatcher{Store: store, Poll: c.feedPoll, Log: logger}
		if err := srv.WatchChanges(ctx, w); err != nil {
			logger.Error("follow the change feed", "err", err)
		}
	}()
	return func() { <-done }
}

// warm fills srv's entitlement cache at start (Server.WarmEntitlements),
// when the change feed is followed (else entries would age out by the TTL
// at once); the returned function waits for it to end.
func (c *endUserConfig) warm(ctx context.Context, srv *api.Server) (wait func()) {
	if c.feedPoll <= 0 || c.warmTimeout <= 0 {
		return func() {}
	}
	return srv.WarmEntitlements(ctx, c.warmTimeout)
}

// saveHot saves srv's hot set at a graceful stop (Server.SaveHotEntitlements),
// where the next instance's warm-up starts from; a failure costs that
// warm-up only, and is logged.
func (c *endUserConfig) saveHot(ctx context.Context, srv *api.Server, logger *slog.Logger) {
	start := time.Now()
	n, err := srv.SaveHotEntitlements(ctx)
	if err != nil {
		logger.Warn("the entitlement cache's hot users were not saved: the next instance warms up with every user by id", "err", err)
		return
	}
	if n > 0 {
		logger.Info("entitlement cache: hot users saved for the next instance's warm-up", "users", n, "seconds", time.Since(start).Seconds())
	}
}
