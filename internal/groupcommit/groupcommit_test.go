package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
)

// fakeTx is a transaction of fakeEngine: the keys written, and the
// savepoint's length.
type fakeTx struct {
	writes []string
	sp     int  // -1: no savepoint
	broken bool // a unit left the transaction in error: Release fails
}

// write records key in the transaction (what a unit does).
func (tx *fakeTx) write(key string) { tx.writes = append(tx.writes, key) }

// fakeEngine keeps the committed keys and logs every hook call. Its fields
// set before New inject failures; gate, when set, holds Commit until it is
// closed or receives.
type fakeEngine struct {
	mu        sync.Mutex
	committed []string
	log       []string
	open      bool // a transaction is open

	beginErr, commitErr, savepointErr, rollbackToErr error
	gate                                             chan struct{}
}

func (e *fakeEngine) record(op string) {
	e.mu.Lock()
	e.log = append(e.log, op)
	e.mu.Unlock()
}

func (e *fakeEngine) Begin(ctx context.Context) (*fakeTx, error) {
	e.record("begin")
	if e.beginErr != nil {
		return nil, e.beginErr
	}
	if e.open {
		panic("fake: nested transaction")
	}
	e.open = true
	return &fakeTx{sp: -1}, nil
}

func (e *fakeEngine) Savepoint(ctx context.Context, tx *fakeTx) error {
	e.record("savepoint")
	if e.savepointErr != nil {
		return e.savepointErr
	}
	if tx.sp != -1 {
		panic("fake: nested savepoint")
	}
	tx.sp = len(tx.writes)
	return nil
}

func (e *fakeEngine) Release(ctx context.Context, tx *fakeTx) error {
	e.record("release")
	if tx.sp == -1 {
		panic("fake: no savepoint")
	}
	if tx.broken {
		return errInError
	}
	tx.sp = -1
	return nil
}

func (e *fakeEngine) RollbackTo(ctx context.Context, tx *fakeTx) error {
	e.record("rollback to")
	if e.rollbackToErr != nil {
		return e.rollbackToErr
	}
	if tx.sp == -1 {
		panic("fake: no savepoint")
	}
	tx.writes = tx.writes[:tx.sp]
	tx.sp, tx.broken = -1, false
	return nil
}

func (e *fakeEngine) Commit(ctx context.Context, tx *fakeTx) error {
	e.record("commit")
	if e.gate != nil {
		<-e.gate
	}
	e.open = false
	if e.commitErr != nil {
		return e.commitErr
	}
	e.mu.Lock()
	e.committed = append(e.committed, tx.writes...)
	e.mu.Unlock()
	return nil
}

func (e *fakeEngine) Rollback(ctx context.Context, tx *fakeTx) error {
	e.record("rollback")
	e.open = false
	return nil
}

func (e *fakeEngine) Committed() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := slices.Clone(e.committed)
	slices.Sort(c)
	return c
}

func (e *fakeEngine) Log() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.log, ", ")
}

// writeUnit writes key and succeeds.
func writeUnit(key string) func(context.Context, *fakeTx) error {
	return func(_ context.Context, tx *fakeTx) error {
		tx.write(key)
		return nil
	}
}

// errInError is the fake's refusal to release the savepoint of a unit
// that left the transaction in error.
var errInError = errors.New("fake: transaction in error")

// swallowUnit writes key, breaks the transaction (a statement error it
// does not report) and returns nil.
func swallowUnit(key string) func(context.Context, *fakeTx) error {
	return func(_ context.Context, tx *fakeTx) error {
		tx.write(key)
		tx.broken = true
		return nil
	}
}

// failUnit writes key, then fails with err: the write must be undone.
func failUnit(key string, err error) func(context.Context, *fakeTx) error {
	return func(_ context.Context, tx *fakeTx) error {
		tx.write(key)
		return err
	}
}

// group submits fns while the lane is held in the commit of a first unit,
// so that they form one group, and returns their errors in order. It
// runs inside a synctest bubble.
func group(t *testing.T, l *Lane[*fakeTx], e *fakeEngine, fns ...func(context.Context, *fakeTx) error) []error {
	t.Helper()
	e.gate = make(chan struct{})
	first := make(chan error, 1)
	go func() { first <- l.Do(t.Context(), writeUnit("first")) }()
	synctest.Wait() // the lane is in Commit, held by the gate
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = l.Do(t.Context(), fn) })
		synctest.Wait() // queued in order
	}
	close(e.gate)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatalf("first unit: %v", err)
	}
	e.gate = nil
	return errs
}

func TestLoneUnitRunsWithoutSavepoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{}
		l := New(e, Options{})
		defer l.Close()
		if err := l.Do(t.Context(), writeUnit("a")); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		if err := l.Do(t.Context(), failUnit("b", boom)); err != boom {
			t.Fatalf("failing unit: got %v, want its own error", err)
		}
		if got, want := e.Log(), "begin, commit, begin, rollback"; got != want {
			t.Errorf("hooks: %s, want %s", got, want)
		}
		if got := e.Committed(); !slices.Equal(got, []string{"a"}) {
			t.Errorf("committed %v, want [a]", got)
		}
	})
}

func TestGroupSharesOneCommitAndFailingUnitsRollBackAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{}
		var mu sync.Mutex
		var infos []GroupInfo
		l := New(e, Options{OnGroup: func(g GroupInfo) { mu.Lock(); infos = append(infos, g); mu.Unlock() }})
		defer l.Close()
		boom := errors.New("boom")
		errs := group(t, l, e, writeUnit("a"), failUnit("b", boom), writeUnit("c"), failUnit("d", boom), writeUnit("e"))
		want := []error{nil, boom, nil, boom, nil}
		for i := range want {
			if errs[i] != want[i] {
				t.Errorf("unit %d: got %v, want %v", i, errs[i], want[i])
			}
		}
		if got, want := e.Committed(), []string{"a", "c", "e", "first"}; !slices.Equal(got, want) {
			t.Errorf("committed %v, want %v", got, want)
		}
		s := l.Stats()
		if s.Groups != 2 || s.Commits != 2 || s.Units != 6 || s.Succeeded != 4 || s.MaxGroup != 5 {
			t.Errorf("stats %+v, want 2 groups, 2 commits, 6 units, 4 succeeded, max 5", s)
		}
		synctest.Wait() // OnGroup runs after the answers
		mu.Lock()
		defer mu.Unlock()
		if len(infos) != 2 || infos[1] != (GroupInfo{Size: 5, Succeeded: 3, Committed: true}) {
			t.Errorf("group infos %+v", infos)
		}
		if got, want := e.Log(), "begin, commit, begin, "+
			"savepoint, release, savepoint, rollback to, savepoint, release, savepoint, rollback to, savepoint, release, commit"; got != want {
			t.Errorf("hooks:\n%s\nwant\n%s", got, want)
		}
	})
}

// A unit that returns nil but leaves the transaction in error (its
// savepoint cannot be released) fails alone; its neighbours commit.
func TestUnitThatCannotBeReleasedFailsAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{}
		l := New(e, Options{})
		defer l.Close()
		errs := group(t, l, e, writeUnit("a"), swallowUnit("b"), writeUnit("c"))
		if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], errInError) {
			t.Errorf("errors %v, want [nil, the release error, nil]", errs)
		}
		if got, want := e.Committed(), []string{"a", "c", "first"}; !slices.Equal(got, want) {
			t.Errorf("committed %v, want %v", got, want)
		}
	})
}

func TestMaxGroupBoundsAGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{}
		l := New(e, Options{MaxGroup: 3})
		defer l.Close()
		var fns []func(context.Context, *fakeTx) error
		for i := range 7 {
			fns = append(fns, writeUnit(fmt.Sprint(i)))
		}
		for i, err := range group(t, l, e, fns...) {
			if err != nil {
				t.Errorf("unit %d: %v", i, err)
			}
		}
		if s := l.Stats(); s.Groups != 1+3 || s.MaxGroup != 3 || s.Succeeded != 8 {
			t.Errorf("stats %+v, want 4 groups of at most 3 and 8 units committed", s)
		}
	})
}

func TestCommitFailureFailsEveryUnitThatDependsOnIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{}
		l := New(e, Options{})
		defer l.Close()
		boom, full := errors.New("boom"), errors.New("disk full")
		e.gate = make(chan struct{})
		first := make(chan error, 1)
		go func() { first <- l.Do(t.Context(), writeUnit("first")) }()
		synctest.Wait()
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i, fn := range []func(context.Context, *fakeTx) error{failUnit("x", boom), writeUnit("a"), failUnit("b", boom), writeUnit("c")} {
			wg.Go(func() { errs[i] = l.Do(t.Context(), fn) })
			synctest.Wait()
		}
		e.commitErr = full // the second group's commit fails
		e.gate <- struct{}{}
		if err := <-first; err != full {
			// The first commit reads commitErr after the gate: both fail.
			t.Logf("first: %v", err)
		}
		close(e.gate)
		wg.Wait()
		// x failed on committed data alone: its own error. b failed after
		// a had written: its failure holds only if a commits.
		if errs[0] != boom || errs[1] != full || errs[2] != full || errs[3] != full {
			t.Errorf("got %v, want [boom disk full disk full disk full]", errs)
		}
		if got := e.Committed(); len(got) != 0 {
			t.Errorf("committed %v, want nothing", got)
		}
		if s := l.Stats(); s.Commits != 0 || s.Succeeded != 0 {
			t.Errorf("stats %+v, want no commit", s)
		}
	})
}

func TestBeginFailureFailsEveryUnit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		busy := errors.New("busy")
		e := &fakeEngine{beginErr: busy}
		l := New(e, Options{})
		defer l.Close()
		ran := false
		if err := l.Do(t.Context(), func(context.Context, *fakeTx) error { ran = true; return nil }); err != busy {
			t.Errorf("got %v, want the Begin error", err)
		}
		if ran {
			t.Error("the unit ran without a transaction")
		}
	})
}

func TestUnitThatCannotBeUndoneAloneFailsTheGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{}
		l := New(e, Options{})
		defer l.Close()
		ioerr, rerr := errors.New("I/O error"), errors.New("no such savepoint")
		e.gate = make(chan struct{})
		first := make(chan error, 1)
		go func() { first <- l.Do(t.Context(), writeUnit("first")) }()
		synctest.Wait()
		e.rollbackToErr = rerr
		ranC := false
		fns := []func(context.Context, *fakeTx) error{
			writeUnit("a"), failUnit("b", ioerr),
			func(context.Context, *fakeTx) error { ranC = true; return nil },
		}
		errs := make([]error, len(fns))
		var wg sync.WaitGroup
		for i, fn := range fns {
			wg.Go(func() { errs[i] = l.Do(t.Context(), fn) })
			synctest.Wait()
		}
		close(e.gate)
		wg.Wait()
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if errs[1] != ioerr {
			t.Errorf("the failed unit: %v, want its own error", errs[1])
		}
		for _, i := range []int{0, 2} {
			if !errors.Is(errs[i], ioerr) || !errors.Is(errs[i], rerr) {
				t.Errorf("unit %d: %v, want the failed unit's and the rollback's errors", i, errs[i])
			}
		}
		if ranC {
			t.Error("a unit ran after the transaction broke")
		}
		if got := e.Committed(); !slices.Equal(got, []string{"first"}) {
			t.Errorf("committed %v, want [first]", got)
		}
	})
}

func TestSavepointFailureFailsTheGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{}
		l := New(e, Options{})
		defer l.Close()
		e.gate = make(chan struct{})
		first := make(chan error, 1)
		go func() { first <- l.Do(t.Context(), writeUnit("first")) }()
		synctest.Wait()
		spErr := errors.New("savepoint failed")
		e.savepointErr = spErr
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { errs[i] = l.Do(t.Context(), writeUnit(fmt.Sprint(i))) })
			synctest.Wait()
		}
		close(e.gate)
		wg.Wait()
		<-first
		for i, err := range errs {
			if !errors.Is(err, spErr) {
				t.Errorf("unit %d: %v, want the savepoint error", i, err)
			}
		}
		if got := e.Committed(); !slices.Equal(got, []string{"first"}) {
			t.Errorf("committed %v, want [first]", got)
		}
	})
}

func TestCallerGivingUpWhileQueuedIsNotRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{gate: make(chan struct{})}
		l := New(e, Options{})
		defer l.Close()
		first := make(chan error, 1)
		go func() { first <- l.Do(t.Context(), writeUnit("first")) }()
		synctest.Wait()
		ctx, cancel := context.WithCancel(t.Context())
		got := make(chan error, 1)
		go func() { got <- l.Do(ctx, writeUnit("given up")) }()
		synctest.Wait()
		cancel()
		if err := <-got; err != context.Canceled {
			t.Errorf("got %v, want context.Canceled at once, while the lane is busy", err)
		}
		close(e.gate)
		<-first
		if err := l.Do(t.Context(), writeUnit("after")); err != nil {
			t.Fatal(err)
		}
		if got := e.Committed(); !slices.Equal(got, []string{"after", "first"}) {
			t.Errorf("committed %v: the abandoned unit ran", got)
		}
	})
}

func TestUnitWhoseCallerGaveUpBeforeItsTurnIsNotRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{}
		l := New(e, Options{})
		defer l.Close()
		hold := make(chan struct{})
		started := make(chan struct{})
		blocking := func(_ context.Context, tx *fakeTx) error {
			close(started)
			<-hold
			tx.write("blocking")
			return nil
		}
		e.gate = make(chan struct{})
		first := make(chan error, 1)
		go func() { first <- l.Do(t.Context(), writeUnit("first")) }()
		synctest.Wait()
		errs := make([]error, 2)
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { errs[0] = l.Do(t.Context(), blocking) })
		synctest.Wait()
		wg.Go(func() { errs[1] = l.Do(ctx, writeUnit("late")) })
		synctest.Wait()
		close(e.gate) // the group [blocking, late] starts
		<-started
		cancel() // late is taken: its caller waits for the outcome
		synctest.Wait()
		close(hold)
		wg.Wait()
		<-first
		if errs[0] != nil || errs[1] != context.Canceled {
			t.Errorf("got %v, want [nil, context.Canceled]", errs)
		}
		if got := e.Committed(); !slices.Equal(got, []string{"blocking", "first"}) {
			t.Errorf("committed %v, want [blocking first]", got)
		}
	})
}

type ctxKey struct{}

func TestUnitContextKeepsValuesNotCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{}
		l := New(e, Options{})
		defer l.Close()
		ctx, cancel := context.WithCancel(context.WithValue(t.Context(), ctxKey{}, "request-7"))
		err := l.Do(ctx, func(uctx context.Context, tx *fakeTx) error {
			cancel() // the caller gives up while its unit runs
			if uctx.Err() != nil {
				return errors.New("the unit's context is cancelled with its caller's")
			}
			if uctx.Value(ctxKey{}) != "request-7" {
				return errors.New("the unit's context lost its caller's values")
			}
			tx.write("a")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Committed(); !slices.Equal(got, []string{"a"}) {
			t.Errorf("committed %v, want [a]", got)
		}
	})
}

func TestPanicReachesItsCallerAndSparesTheGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{}
		l := New(e, Options{})
		defer l.Close()
		panicky := func(_ context.Context, tx *fakeTx) error {
			tx.write("panicky")
			panic("bug")
		}
		e.gate = make(chan struct{})
		first := make(chan error, 1)
		go func() { first <- l.Do(t.Context(), writeUnit("first")) }()
		synctest.Wait()
		var pv any
		var wg sync.WaitGroup
		wg.Go(func() {
			defer func() { pv = recover() }()
			l.Do(t.Context(), panicky)
		})
		synctest.Wait()
		var err error
		wg.Go(func() { err = l.Do(t.Context(), writeUnit("b")) })
		synctest.Wait()
		close(e.gate)
		wg.Wait()
		<-first
		pe, ok := pv.(*PanicError)
		if !ok || pe.Value != "bug" || !strings.Contains(string(pe.Stack), "groupcommit") {
			t.Errorf("caller recovered %#v, want a *PanicError with the value and the stack", pv)
		}
		if err != nil {
			t.Errorf("neighbour: %v", err)
		}
		if got := e.Committed(); !slices.Equal(got, []string{"b", "first"}) {
			t.Errorf("committed %v, want [b first]", got)
		}
		// The lane is alive.
		if err := l.Do(t.Context(), writeUnit("c")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCloseFailsQueuedUnitsAndStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{gate: make(chan struct{})}
		l := New(e, Options{})
		first := make(chan error, 1)
		go func() { first <- l.Do(t.Context(), writeUnit("first")) }()
		synctest.Wait()
		queued := make(chan error, 1)
		go func() { queued <- l.Do(t.Context(), writeUnit("queued")) }()
		synctest.Wait()
		closed := make(chan struct{})
		go func() { l.Close(); close(closed) }()
		if err := <-queued; err != ErrClosed {
			t.Errorf("queued unit: %v, want ErrClosed", err)
		}
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a group was running")
		default:
		}
		close(e.gate)
		if err := <-first; err != nil {
			t.Errorf("the running group: %v, want it to finish", err)
		}
		<-closed
		if err := l.Do(t.Context(), writeUnit("late")); err != ErrClosed {
			t.Errorf("Do after Close: %v, want ErrClosed", err)
		}
		l.Close() // twice is fine
		if got := e.Committed(); !slices.Equal(got, []string{"first"}) {
			t.Errorf("committed %v, want [first]", got)
		}
		// synctest.Test fails if the lane goroutine is still blocked.
	})
}

// TestManyConcurrentWriters runs without synctest, with the race detector
// in mind: every unit's write is committed exactly once.
func TestManyConcurrentWriters(t *testing.T) {
	e := &fakeEngine{}
	l := New(e, Options{MaxGroup: 16})
	defer l.Close()
	var wg sync.WaitGroup
	var want []string
	for i := range 400 {
		key := fmt.Sprintf("%03d", i)
		if i%7 != 0 {
			want = append(want, key)
		}
		wg.Go(func() {
			fn := writeUnit(key)
			if i%7 == 0 {
				fn = failUnit(key, errors.New("no"))
			}
			err := l.Do(context.Background(), fn)
			if (err == nil) != (i%7 != 0) {
				t.Errorf("unit %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := e.Committed(); !slices.Equal(got, want) {
		t.Errorf("committed %d keys, want %d", len(got), len(want))
	}
	s := l.Stats()
	t.Logf("stats %+v", s)
	if s.Units != 400 || s.Succeeded != uint64(len(want)) || s.MaxGroup > 16 {
		t.Errorf("stats %+v", s)
	}
}

// BenchmarkLane measures the lane's own cost per unit with a free engine.
func BenchmarkLane(b *testing.B) {
	for _, par := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", par), func(b *testing.B) {
			l := New[*fakeTx](nopEngine{}, Options{})
			defer l.Close()
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Do(context.Background(), func(context.Context, *fakeTx) error { return nil }); err != nil {
						b.Error(err)
					}
				}
			})
			s := l.Stats()
			b.ReportMetric(float64(s.Units)/float64(max(s.Groups, 1)), "units/group")
		})
	}
}

type nopEngine struct{}

func (nopEngine) Begin(context.Context) (*fakeTx, error)    { return &fakeTx{}, nil }
func (nopEngine) Savepoint(context.Context, *fakeTx) error  { return nil }
func (nopEngine) Release(context.Context, *fakeTx) error    { return nil }
func (nopEngine) RollbackTo(context.Context, *fakeTx) error { return nil }
func (nopEngine) Commit(context.Context, *fakeTx) error     { return nil }
func (nopEngine) Rollback(context.Context, *fakeTx) error   { return nil }

func TestFailureAfterOthersWroteWaitsForTheCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{gate: make(chan struct{})}
		l := New(e, Options{})
		defer l.Close()
		first := make(chan error, 1)
		go func() { first <- l.Do(t.Context(), writeUnit("first")) }()
		synctest.Wait()
		boom := errors.New("order id taken")
		a, b := make(chan error, 1), make(chan error, 1)
		go func() { a <- l.Do(t.Context(), writeUnit("a")) }()
		synctest.Wait()
		go func() { b <- l.Do(t.Context(), failUnit("b", boom)) }()
		synctest.Wait()
		e.gate <- struct{}{} // the first group commits; [a, b] runs and waits in Commit
		<-first
		synctest.Wait()
		select {
		case err := <-b:
			t.Fatalf("b answered %v before a's commit", err)
		default:
		}
		close(e.gate)
		if err := <-a; err != nil {
			t.Error(err)
		}
		if err := <-b; err != boom {
			t.Errorf("b: %v, want its own error once a is committed", err)
		}
	})
}

func TestAloneUnitRunsInAGroupOfItsOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &fakeEngine{gate: make(chan struct{})}
		var mu sync.Mutex
		var sizes []int
		l := New(e, Options{OnGroup: func(g GroupInfo) { mu.Lock(); sizes = append(sizes, g.Size); mu.Unlock() }})
		defer l.Close()
		first := make(chan error, 1)
		go func() { first <- l.Do(t.Context(), writeUnit("first")) }()
		synctest.Wait()
		errs := make([]error, 5)
		var wg sync.WaitGroup
		for i, alone := range []bool{false, true, false, false, true} {
			wg.Go(func() {
				if alone {
					errs[i] = l.DoAlone(t.Context(), writeUnit(fmt.Sprint("alone", i)))
				} else {
					errs[i] = l.Do(t.Context(), writeUnit(fmt.Sprint(i)))
				}
			})
			synctest.Wait()
		}
		close(e.gate)
		wg.Wait()
		<-first
		for i, err := range errs {
			if err != nil {
				t.Errorf("unit %d: %v", i, err)
			}
		}
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if got := fmt.Sprint(sizes); got != "[1 1 1 2 1]" {
			t.Errorf("group sizes %s, want [1 1 1 2 1]", got)
		}
		if got := e.Committed(); len(got) != 6 {
			t.Errorf("committed %v", got)
		}
	})
}
