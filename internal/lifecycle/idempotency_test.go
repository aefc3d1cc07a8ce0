package lifecycle_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/lifecycle"
)

// prunes is a store that tells what each PruneIdempotencyKeys deleted.
type prunes struct {
	licensor.Store
	deleted chan int64
}

func (s prunes) PruneIdempotencyKeys(ctx context.Context, now int64) (int64, error) {
	n, err := s.Store.PruneIdempotencyKeys(ctx, now)
	if err == nil {
		s.deleted <- n
	}
	return n, err
}

// syncBuffer is a log output the loop and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestPruneIdempotencyKeys: the loop deletes the keys whose response has
// expired, once an interval has passed, and logs how many at debug level.
func TestPruneIdempotencyKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, open func(t *testing.T) licensor.Store) {
		t.Parallel()
		s := prunes{Store: open(t), deleted: make(chan int64, 100)}
		ctx := context.Background()
		for i, expires := range []int64{50, 150} {
			c := &licensor.IdempotencyClaim{APIKeyID: 1, Key: string(rune('a' + i)), Fingerprint: "fp", ExpiresAt: expires}
			if _, err := s.ClaimIdempotencyKey(ctx, c, 10, 0); err != nil {
				t.Fatal(err)
			}
			if err := s.CompleteIdempotencyKey(ctx, c, licensor.StoredResponse{Status: 201}); err != nil {
				t.Fatal(err)
			}
		}
		var logs syncBuffer
		opts := lifecycle.Options{
			Logger:           slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Now:              func() time.Time { return time.Unix(100, 0) },
			KeyPruneInterval: 20 * time.Millisecond,
		}
		loop, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		start := time.Now()
		go func() {
			defer close(done)
			lifecycle.PruneIdempotencyKeys(loop, s, opts)
		}()
		if n := <-s.deleted; n != 1 {
			t.Errorf("the first prune deleted %d keys, want 1 (the one expired at 50)", n)
		}
		if waited := time.Since(start); waited < opts.KeyPruneInterval {
			t.Errorf("the first prune came after %v, before the interval", waited)
		}
		if n := <-s.deleted; n != 0 {
			t.Errorf("the second prune deleted %d keys, want 0", n)
		}
		stop()
		<-done
		if out := logs.String(); strings.Count(out, "pruned idempotency keys") != 1 || !strings.Contains(out, "count=1") {
			t.Errorf("log: %s", out)
		}
	})
}
