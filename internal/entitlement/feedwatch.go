package entitlement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/licensor/licensor"
)

// FeedWatcher is the ChangeWatcher of the change feed: it follows
// licensor.Store.Events from the feed's head and invalidates, for each
// license event, the license's user, and for each product event, the
// product. It polls (one indexed query per Poll on each instance, on
// either engine) and also wakes when this process commits events.
//
// Each read that reaches the feed's head reports the instant it started
// (Invalidator.FeedRead): the feed lists events in commit order, so that
// read saw every write committed before it started, and once its events
// are applied the cache holds nothing older than that instant. The cache
// keeps its entries for as long as such reads keep coming within its TTL;
// while the watcher cannot read the feed (or lags behind it), entries age
// out by the TTL, which then bounds staleness alone.
type FeedWatcher struct {
	Store licensor.Store
	// Poll is how often the feed is read; default 100 ms. It bounds how
	// long another instance's write takes to reach this instance's cache.
	// Keep it well under the cache's TTL, or entries age out between
	// reads.
	Poll time.Duration
	Log  *slog.Logger
}

// feedPage is how many events one read takes.
const feedPage = licensor.MaxPageSize

// Watch implements ChangeWatcher. It returns when ctx ends.
func (f FeedWatcher) Watch(ctx context.Context, inv Invalidator) error {
	if f.Poll <= 0 {
		f.Poll = 100 * time.Millisecond
	}
	if f.Log == nil {
		f.Log = slog.New(slog.DiscardHandler)
	}
	tick := time.NewTicker(f.Poll)
	defer tick.Stop()
	pos, started := int64(0), false
	failing := false
	for {
		if !started {
			head, err := f.head(ctx)
			if err == nil {
				// Whatever was cached before now may predate events
				// before the head, which this watcher will never see.
				inv.InvalidateAll()
				pos, started = head, true
			}
			failing = f.report(err, failing)
		}
		if started {
			caughtUp := inv.FeedRead()
			page, err := f.Store.Events(ctx, licensor.EventQuery{After: pos, Limit: feedPage})
			if licensor.ErrorCode(err) == licensor.CodeInvalidCursor {
				started = false // pruned past us, or another database: start again at the head
				continue
			}
			failing = f.report(err, failing)
			if err == nil {
				for i := range page.Events {
					ev := &page.Events[i]
					if strings.HasPrefix(string(ev.Type), "product.") {
						inv.InvalidateProduct(ev.ProductID)
					} else if ev.UserID != "" {
						inv.InvalidateUser(ev.UserID)
					}
				}
				pos = page.Next
				if len(page.Events) == feedPage {
					continue // more to read at once
				}
				caughtUp() // a page short of full ends at the head
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-f.Store.EventsCommitted():
		}
	}
}

// head returns the feed's current position: a read that matches nothing
// (an impossible license id, through its index) ends at the head.
func (f FeedWatcher) head(ctx context.Context) (int64, error) {
	none := int64(-1)
	page, err := f.Store.Events(ctx, licensor.EventQuery{Filter: licensor.EventFilter{LicenseID: &none}, Limit: 1})
	if err != nil {
		return 0, fmt.Errorf("read the head of the change feed: %w", err)
	}
	return page.Next, nil
}

// report logs the start and the end of a run of failures.
func (f FeedWatcher) report(err error, failing bool) bool {
	switch {
	case err != nil && !failing && !isCanceled(err):
		f.Log.Warn("the entitlement cache cannot follow the change feed; its entries age out by its TTL, which alone bounds how late other instances' writes reach it", "err", err)
		return true
	case err == nil && failing:
		f.Log.Info("the entitlement cache follows the change feed again")
		return false
	}
	return failing || err != nil
}

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }
