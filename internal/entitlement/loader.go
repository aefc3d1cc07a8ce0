package entitlement

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/licensor/licensor"
)

// LoadQueries is how many queries the user loads of one cache keep in
// flight at most. A load that finds none running sends its own query
// (Store.FindGrants) at once; otherwise it queues, and each query that
// ends hands its place to one query for every load queued meanwhile
// (Store.FindUsersGrants, up to LoadBatch users). A queue that reaches
// LoadBatch sends its query at once if fewer than LoadQueries run. A lone
// miss waits for nothing, two at once for at most one query more, and a
// burst of misses (an instance restarted under load, users drawn from
// millions) costs the database a query a batch, not a query a user: the
// rate of queries stays about what one query back to back makes while the
// misses fit in a batch, and at most what LoadQueries make, whatever the
// rate of misses.
const LoadQueries = 4

// LoadBatch is how many users one query of the loads asks for at most: a
// batch's misses wait for all of its rows.
const LoadBatch = 128

// grantLoader runs the user cache's loads (see LoadQueries).
type grantLoader struct {
	store   licensor.Store
	limit   int            // queries in flight at most (LoadQueries; tests: others)
	queries *atomic.Uint64 // counts every query sent

	mu      sync.Mutex
	running int          // queries in flight
	queue   []*grantLoad // loads waiting for the next batch
	batches atomic.Uint64
	batched atomic.Uint64 // loads answered by a batch
}

// grantLoad is one queued load, answered by a batch.
type grantLoad struct {
	user   string
	done   chan struct{}
	grants []licensor.Grant
	err    error
}

// load returns the grants of user's live ACTIVE licenses (see
// loadUserLicenses). ctx bounds the wait, not a batch's query, which
// answers other loads too.
func (l *grantLoader) load(ctx context.Context, user string) ([]licensor.Grant, error) {
	l.mu.Lock()
	if l.running == 0 {
		l.running++
		l.mu.Unlock()
		gs, err := loadUserLicenses(ctx, l.store, user)
		l.queries.Add(1)
		l.release()
		return gs, err
	}
	w := &grantLoad{user: user, done: make(chan struct{})}
	l.queue = append(l.queue, w)
	if len(l.queue) >= LoadBatch && l.running < l.limit {
		l.running++
		batch := l.take()
		l.mu.Unlock()
		go l.runBatch(batch)
	} else {
		l.mu.Unlock()
	}
	select {
	case <-w.done:
		return w.grants, w.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// release ends a query: its place goes to a batch of the loads queued, if
// any, run by a goroutine of its own (the caller has its answer to give).
func (l *grantLoader) release() {
	l.mu.Lock()
	if len(l.queue) == 0 {
		l.running--
		l.mu.Unlock()
		return
	}
	batch := l.take()
	l.mu.Unlock()
	go l.runBatch(batch)
}

// take removes the first loads of the queue, up to LoadBatch,
// for a batch. l.mu is held.
func (l *grantLoader) take() []*grantLoad {
	n := min(len(l.queue), LoadBatch)
	batch := slices.Clone(l.queue[:n])
	l.queue = slices.Delete(l.queue, 0, n)
	if len(l.queue) == 0 {
		l.queue = nil // let a burst's backing array go
	}
	return batch
}

// runBatch answers the loads of batch with one query, then releases its
// place. Users may repeat (a load queued again after an invalidation);
// each is asked for once.
func (l *grantLoader) runBatch(batch []*grantLoad) {
	defer l.release()
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	users := make([]string, 0, len(batch))
	for _, w := range batch {
		users = append(users, w.user)
	}
	slices.Sort(users)
	users = slices.Compact(users)
	rows, err := l.store.FindUsersGrants(ctx, users)
	l.queries.Add(1)
	l.batches.Add(1)
	l.batched.Add(uint64(len(batch)))
	if err != nil {
		err = fmt.Errorf("load licenses of %d users: %w", len(users), err)
	}
	byUser := grantsByUser(rows, len(users))
	for _, w := range batch {
		w.grants, w.err = byUser[w.user], err
		close(w.done)
	}
}

// grantsByUser groups the rows of Store.FindUsersGrants, which are in user
// order (each user's grants one run of them), by user; n is a size hint.
func grantsByUser(rows []licensor.UserGrant, n int) map[string][]licensor.Grant {
	byUser := make(map[string][]licensor.Grant, n)
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].User == rows[i].User {
			j++
		}
		gs := make([]licensor.Grant, j-i) // exactly: entries live long
		for k := i; k < j; k++ {
			gs[k-i] = rows[k].Grant
		}
		byUser[rows[i].User] = gs
		i = j
	}
	return byUser
}
