// Package groupcommit runs concurrent units of write work in shared
// transactions, so that they share one commit (and one fsync).
//
// Callers submit units with [Lane.Do]. One goroutine, the lane, takes every
// unit queued when it starts a group (up to [Options.MaxGroup]), runs them
// one after the other in ONE transaction through the engine's [Engine]
// hooks, commits once, and answers each caller. There is no artificial
// delay: a group is whatever queued while the previous group ran and
// committed, so a lone caller pays nothing but a goroutine hand-off.
//
// Semantics:
//
//   - A group of one unit runs without savepoints. In a larger group every
//     unit runs under its own savepoint: a unit that fails is rolled back to
//     its savepoint alone, its caller gets its own error, and the other
//     units still commit.
//   - A unit sees what the units before it in its group wrote, as it would
//     had they committed before it ran alone. So a unit that fails after
//     others succeeded may have failed because of their writes (an order
//     id they took): it gets its own error only once they are committed.
//   - A unit fails alone whatever the class of its failure (its own error,
//     a statement the database refused, a constraint, a timeout, a
//     deadlock, a panic, or a savepoint that cannot be released because
//     the unit left the transaction in error), as long as the engine can
//     roll the transaction back to the unit's savepoint.
//   - A nil from Do means the unit's work is committed. If Begin, Commit or
//     a savepoint operation fails, nothing of the group is committed and
//     every unit of the group still waiting for its answer gets that error
//     (a unit that failed before any other succeeded keeps its own error).
//   - A unit whose caller's context is done when its turn comes is not run;
//     its caller gets the context's error. A caller that gives up while its
//     unit is still queued gets the context's error at once and the unit is
//     never run. Once the unit has been taken into a group, Do waits for its
//     outcome: returning earlier would leave the caller unable to tell
//     whether its work was committed.
//   - A unit's function receives context.WithoutCancel of its caller's
//     context: the values (request id, logger) are kept, the cancellation
//     is not. The unit's statements run on the group's connection, and a
//     statement cancelled mid-way can abort the whole transaction (SQLite
//     rolls back the transaction on an interrupted write; pgx closes the
//     connection), which would fail the neighbours. The group's transaction
//     itself (Begin, Commit, savepoints) runs under a context of its own,
//     tied to no caller.
//   - A unit that panics is rolled back to its savepoint like a failed unit,
//     the lane carries on, and the panic is raised again in the caller's
//     goroutine by Do (wrapped in a [*PanicError] that carries the stack),
//     where the caller's own recovery (an HTTP server's) handles it.
//   - Close fails the queued units with [ErrClosed], waits for the running
//     group to finish, and stops the lane goroutine. Do after Close returns
//     ErrClosed.
//
// [Lane.DoAlone] submits a unit that runs in a group of its own, without a
// savepoint (a large batch, for which the savepoint costs more than the
// shared commit saves); it keeps its place in the queue.
//
// A unit may run again (a caller that retries after a failed group does),
// and must be safe to run inside a savepoint: it must not commit, roll back
// or use a second connection that could wait for the group's.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Engine runs a group's transaction. Tx is the engine's transaction
// handle (e.g. *sql.Tx). Every method is called from the lane goroutine
// only, one at a time.
type Engine[Tx any] interface {
	// Begin starts the group's transaction.
	Begin(ctx context.Context) (Tx, error)
	// Savepoint sets a savepoint before a unit (groups of more than one
	// unit only). The lane never nests savepoints: each is released or
	// rolled back before the next one is set, so one name does.
	Savepoint(ctx context.Context, tx Tx) error
	// Release releases the savepoint after a unit that succeeded.
	Release(ctx context.Context, tx Tx) error
	// RollbackTo undoes the unit since its savepoint, after a unit that
	// failed, and leaves the transaction open without that savepoint
	// (SQLite: ROLLBACK TO then RELEASE).
	RollbackTo(ctx context.Context, tx Tx) error
	// Commit commits the group's transaction.
	Commit(ctx context.Context, tx Tx) error
	// Rollback abandons the group's transaction (after a failure; it may
	// be called on a transaction that a failed Commit already ended).
	Rollback(ctx context.Context, tx Tx) error
}

// Options configure a Lane.
type Options struct {
	// MaxGroup bounds the units in one group; 0 means 64.
	MaxGroup int
	// OnGroup, if set, is called by the lane goroutine after each group
	// (for metrics: a histogram of group sizes, commit durations). It must
	// not block and must not call Do.
	OnGroup func(GroupInfo)
}

// GroupInfo describes one finished group.
type GroupInfo struct {
	// Size is the number of units taken into the group (including the
	// ones that were not run because their caller had given up).
	Size int
	// Succeeded is the number of units whose work was committed.
	Succeeded int
	// Committed reports whether the transaction committed.
	Committed bool
	// Duration is the time from Begin to the end of Commit or Rollback.
	Duration time.Duration
}

// Stats are a lane's cumulative counters.
type Stats struct {
	Groups    uint64 // groups run (transactions begun or attempted)
	Commits   uint64 // transactions committed
	Units     uint64 // units taken into groups
	Succeeded uint64 // units answered with nil (committed)
	MaxGroup  int    // the largest group so far
	Queued    int    // units waiting now for a group (not cumulative)
}

// ErrClosed is returned by Do when the lane is closed.
var ErrClosed = errors.New("groupcommit: lane closed")

// PanicError is the value Do panics with when its unit panicked in the
// lane goroutine.
type PanicError struct {
	Value any    // the value the unit panicked with
	Stack []byte // the lane goroutine's stack at the panic
}

func (p *PanicError) Error() string {
	return fmt.Sprintf("groupcommit: unit panicked: %v\n\n%s", p.Value, p.Stack)
}

// Unwrap returns the panic value if it is an error.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// Lane runs submitted units in groups. Its zero value is not usable: make
// one with New.
type Lane[Tx any] struct {
	engine  Engine[Tx]
	max     int
	onGroup func(GroupInfo)

	mu     sync.Mutex
	queue  []*unit[Tx]
	closed bool
	wake   chan struct{} // capacity 1: something queued, or closed
	done   chan struct{} // closed when the lane goroutine exits

	groups, commits, units, succeeded atomic.Uint64
	maxSeen                           atomic.Int64
}

// unit states
const (
	queued int32 = iota
	taken
	abandoned
)

type unit[Tx any] struct {
	ctx    context.Context
	fn     func(ctx context.Context, tx Tx) error
	alone  bool // runs in a group of its own (DoAlone)
	state  atomic.Int32
	result chan outcome // capacity 1
}

// answer delivers the unit's outcome to its caller.
func (u *unit[Tx]) answer(err error, pv *PanicError) {
	u.result <- outcome{err: err, pv: pv}
}

type outcome struct {
	err error
	pv  *PanicError
}

// New starts a lane running groups on e. Close it to stop its goroutine.
func New[Tx any](e Engine[Tx], opts Options) *Lane[Tx] {
	l := &Lane[Tx]{
		engine:  e,
		max:     opts.MaxGroup,
		onGroup: opts.OnGroup,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if l.max <= 0 {
		l.max = 64
	}
	go l.run()
	return l
}

// Do runs fn in a group's transaction and returns fn's error, or the
// group's if the group could not commit. See the package documentation
// for the exact semantics.
func (l *Lane[Tx]) Do(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	return l.do(ctx, fn, false)
}

// DoAlone is Do for a unit that runs in a transaction of its own, without
// a savepoint: a large unit (a batch of a thousand rows) for which the
// savepoint would cost more than the shared commit saves. In SQLite, say,
// a savepoint journals every page the unit changes and every statement of
// the unit then pays for the size of that journal. It still waits for its
// turn in the queue.
func (l *Lane[Tx]) DoAlone(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	return l.do(ctx, fn, true)
}

func (l *Lane[Tx]) do(ctx context.Context, fn func(ctx context.Context, tx Tx) error, alone bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u := &unit[Tx]{ctx: ctx, fn: fn, alone: alone, result: make(chan outcome, 1)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.queue = append(l.queue, u)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}

	var o outcome
	select {
	case o = <-u.result:
	case <-ctx.Done():
		if u.state.CompareAndSwap(queued, abandoned) {
			// The lane will drop it; nothing of it ran.
			return ctx.Err()
		}
		o = <-u.result
	}
	if o.pv != nil {
		panic(o.pv)
	}
	return o.err
}

// Close fails the queued units with ErrClosed, waits for the running group
// to finish and stops the lane. It is safe to call more than once.
func (l *Lane[Tx]) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return
	}
	l.closed = true
	pending := l.queue
	l.queue = nil
	l.mu.Unlock()
	for _, u := range pending {
		if u.state.CompareAndSwap(queued, taken) {
			u.result <- outcome{err: ErrClosed}
		}
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.done
}

// Stats returns the lane's cumulative counters.
func (l *Lane[Tx]) Stats() Stats {
	l.mu.Lock()
	queued := len(l.queue)
	l.mu.Unlock()
	return Stats{
		Queued:    queued,
		Groups:    l.groups.Load(),
		Commits:   l.commits.Load(),
		Units:     l.units.Load(),
		Succeeded: l.succeeded.Load(),
		MaxGroup:  int(l.maxSeen.Load()),
	}
}

// run is the lane goroutine.
func (l *Lane[Tx]) run() {
	defer close(l.done)
	var group []*unit[Tx]
	for {
		l.mu.Lock()
		for len(l.queue) == 0 && !l.closed {
			l.mu.Unlock()
			<-l.wake
			l.mu.Lock()
		}
		if l.closed {
			// Close took the queue; nothing more will be queued.
			l.mu.Unlock()
			return
		}
		// Up to max units, and a unit that runs alone only alone.
		n := 1
		if !l.queue[0].alone {
			for n < min(len(l.queue), l.max) && !l.queue[n].alone {
				n++
			}
		}
		group = append(group[:0], l.queue[:n]...)
		rest := copy(l.queue, l.queue[n:])
		clear(l.queue[rest:])
		l.queue = l.queue[:rest]
		l.mu.Unlock()

		// Claim the units whose callers have not given up.
		live := group[:0]
		for _, u := range group {
			if u.state.CompareAndSwap(queued, taken) {
				live = append(live, u)
			}
		}
		clear(group[len(live):])
		if len(live) > 0 {
			l.runGroup(live)
		}
		clear(live)
	}
}

// runGroup runs the claimed units in one transaction and answers each.
func (l *Lane[Tx]) runGroup(group []*unit[Tx]) {
	start := time.Now()
	ctx := context.Background()
	l.groups.Add(1)
	l.units.Add(uint64(len(group)))
	if int64(len(group)) > l.maxSeen.Load() {
		l.maxSeen.Store(int64(len(group)))
	}
	info := GroupInfo{Size: len(group)}
	defer func() {
		info.Duration = time.Since(start)
		if l.onGroup != nil {
			l.onGroup(info)
		}
	}()

	tx, err := l.engine.Begin(ctx)
	if err != nil {
		for _, u := range group {
			u.answer(err, nil)
		}
		return
	}
	multi := len(group) > 1
	var (
		fatal   error         // the transaction cannot commit
		pending []*unit[Tx]   // ran and succeeded: answered after the commit
		rest    []*unit[Tx]   // not run because of fatal
		failed  []failure[Tx] // failed after others succeeded: answered after the commit
	)
	for i, u := range group {
		if err := u.ctx.Err(); err != nil {
			u.answer(err, nil)
			continue
		}
		if multi {
			if err := l.engine.Savepoint(ctx, tx); err != nil {
				fatal = fmt.Errorf("groupcommit: savepoint: %w", err)
				rest = group[i:]
				break
			}
		}
		pv, err := call(u, tx)
		if err == nil && multi {
			if rerr := l.engine.Release(ctx, tx); rerr != nil {
				// The unit returned nil but its savepoint cannot be
				// released (it left the transaction in error): it
				// failed, and is undone alone like any failed unit.
				err = fmt.Errorf("groupcommit: release savepoint: %w", rerr)
			}
		}
		if err == nil {
			pending = append(pending, u)
			continue
		}
		if !multi {
			_ = l.engine.Rollback(ctx, tx)
			u.answer(err, pv)
			return
		}
		if rerr := l.engine.RollbackTo(ctx, tx); rerr != nil {
			// The failed unit may have broken the transaction (a full
			// disk, a lost connection): its error is what the others
			// must see.
			fatal = fmt.Errorf("groupcommit: a unit failed and could not be undone alone: %w",
				errors.Join(err, rerr))
			u.answer(err, pv)
			rest = group[i+1:]
			break
		}
		if len(pending) == 0 || pv != nil {
			// It saw only committed data: its outcome is final.
			u.answer(err, pv)
			continue
		}
		// It may have failed because of what the units before it wrote
		// (an order id they took): that holds only if they commit.
		failed = append(failed, failure[Tx]{u, err})
	}

	if fatal == nil && len(pending) > 0 {
		if err := l.engine.Commit(ctx, tx); err != nil {
			fatal = err
			_ = l.engine.Rollback(ctx, tx)
		} else {
			info.Committed = true
			info.Succeeded = len(pending)
			l.commits.Add(1)
			l.succeeded.Add(uint64(len(pending)))
		}
	} else {
		_ = l.engine.Rollback(ctx, tx)
	}
	for _, u := range pending {
		u.answer(fatal, nil)
	}
	for _, f := range failed {
		if fatal != nil {
			f.u.answer(fatal, nil)
		} else {
			f.u.answer(f.err, nil)
		}
	}
	for _, u := range rest {
		u.answer(fatal, nil)
	}
}

// failure is a unit's own error, held until the group's outcome is known.
type failure[Tx any] struct {
	u   *unit[Tx]
	err error
}

// call runs u's function with its caller's context values but not its
// cancellation, turning a panic into a *PanicError.
func call[Tx any](u *unit[Tx], tx Tx) (pv *PanicError, err error) {
	defer func() {
		if v := recover(); v != nil {
			pv = &PanicError{Value: v, Stack: debug.Stack()}
			err = pv
		}
	}()
	return nil, u.fn(context.WithoutCancel(u.ctx), tx)
}
