package feed

import (
	"errors"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// The fan-out shares the waiting of followers (Follow, WaitFeed) at the end
// of a log. Followers waiting for the page at the same position of the same
// log, read the same way (page size, GDPR flag), form a round. Each followed
// log has one dispatcher goroutine, the only waiter on the store's Changed:
// after a commit it reads each open round's page once and hands that same
// Page to every follower of the round, so sixteen followers at one position
// cost one read, one wake-up of the store's notifier and (Page.Memo) one
// encoded message instead of sixteen.
//
// A page is handed only to the followers that were waiting when it was
// read, and only once: it never outlives the commit that produced it, so a
// follower never gets a page older than the one its own read would have
// given it (nothing is cached across commits or GDPR erasures). Followers
// read the same way share nothing with followers read another way: the GDPR
// flag is part of the round, so GDPR fields never reach a follower that did
// not ask for them (and was not allowed to, which the caller checks).
//
// No commit is missed: a round's creator reads once after the round exists
// (covering every commit before), and the dispatcher reads every open round
// after each commit's notification (covering every commit after). The
// creator skips its read when the dispatcher's last read, made in the
// notifier generation still open, found the log ending at or before the
// round's position: any later commit closes that generation and the
// dispatcher reads the round then.

// fanout holds the rounds of every followed log.
type fanout struct {
	store ledger.EntryReader
	mu    sync.Mutex
	logs  map[logKey]*logRounds
}

type logKey struct {
	ledgerID string
	topic    ledger.Topic
}

// logRounds are the open rounds of one log and what its dispatcher knows.
// Guarded by fanout.mu.
type logRounds struct {
	rounds map[roundKey]*round
	// gen is the store's Changed channel the dispatcher took before its
	// last reads; while it is open, the log holds no entry at or after
	// end (math.MaxUint64: not known).
	gen <-chan struct{}
	end uint64
}

// roundKey is a position and how it is read. alone is set for reads whose
// options the fan-out cannot compare (see shareable): such a round is never
// joined by another follower.
type roundKey struct {
	from  uint64
	limit int
	gdpr  bool
	alone *round
}

// round is the followers waiting for the page at one position.
type round struct {
	key  roundKey
	opt  ledger.ReadOptions // Buf nil: a shared page is never in a caller's buffer
	done chan struct{}      // closed once page or err is set
	page Page
	err  error
	// waiters is how many followers wait; guarded by fanout.mu. An
	// unpublished round nobody waits for is dropped.
	waiters   int
	published bool
}

// idleExit is how long a dispatcher stays after its log's last round has
// gone: followers come back within moments of a page, and a dispatcher
// that stays keeps what its last read learnt about the log's end.
const idleExit = 10 * time.Second

func newFanout(store ledger.EntryReader) *fanout {
	return &fanout{store: store, logs: map[logKey]*logRounds{}}
}

// shareable reports whether reads with opt may be shared: opt shapes a
// page by GDPR alone (Buf is where a read goes, not what it reads). A
// ReadOptions field added later makes opt unshareable until roundKey
// carries it.
func shareable(opt ledger.ReadOptions) bool {
	o := opt
	o.Buf = nil
	return reflect.DeepEqual(o, ledger.ReadOptions{GDPR: opt.GDPR})
}

// join adds the caller to the round waiting for the page of (ledgerID,
// topic) at from, read with limit and opt, and returns it. The page may be
// there at once (the round's first read found entries). The caller waits
// for r.done and then takes r.page or r.err (pages are shared: never change
// their Entries), or calls leave.
func (f *fanout) join(ledgerID string, topic ledger.Topic, from uint64, limit int, opt ledger.ReadOptions) *round {
	k := logKey{ledgerID, topic}
	opt.Buf = nil
	rk := roundKey{from: from, limit: limit, gdpr: opt.GDPR}
	share := shareable(opt)
	f.mu.Lock()
	lr := f.logs[k]
	if lr == nil {
		lr = &logRounds{rounds: map[roundKey]*round{}, end: math.MaxUint64}
		f.logs[k] = lr
		go f.dispatch(k, lr)
	}
	var r *round
	if share {
		r = lr.rounds[rk]
	}
	if r != nil {
		r.waiters++
		f.mu.Unlock()
		return r
	}
	r = &round{key: rk, opt: opt, done: make(chan struct{}), waiters: 1}
	if !share {
		r.key.alone = r
	}
	lr.rounds[r.key] = r
	known := from >= lr.end && isOpen(lr.gen)
	f.mu.Unlock()
	if !known {
		// Commits before the round existed: read once. Commits after it
		// are the dispatcher's.
		p, err := f.read(k, r)
		f.publish(lr, r, p, err)
	}
	return r
}

// leave takes the caller out of r's waiters; the last one out drops an
// unpublished round.
func (f *fanout) leave(ledgerID string, topic ledger.Topic, r *round) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.waiters--
	if r.waiters > 0 || r.published {
		return
	}
	if lr := f.logs[logKey{ledgerID, topic}]; lr != nil && lr.rounds[r.key] == r {
		delete(lr.rounds, r.key)
	}
}

// read reads r's page.
func (f *fanout) read(k logKey, r *round) (Page, error) {
	es, err := f.store.Entries(k.ledgerID, k.topic, r.key.from, r.key.limit, r.opt)
	if err != nil || len(es) == 0 {
		return Page{Next: r.key.from, TryLater: true}, err
	}
	return Page{Entries: es, Next: es[len(es)-1].Sequence + 1}, nil
}

// publish hands p (or err) to r's waiters, unless r is published already or
// p is empty (the round waits on). The page is shared (Page.Memo) when more
// than one follower gets it.
func (f *fanout) publish(lr *logRounds, r *round, p Page, err error) {
	if err == nil && len(p.Entries) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.published {
		return
	}
	r.published = true
	if lr.rounds[r.key] == r {
		delete(lr.rounds, r.key)
	}
	if r.waiters > 1 {
		p.memo = &memo{}
	}
	r.page, r.err = p, err
	close(r.done)
}

// dispatch serves the rounds of log k: after every commit it reads each
// open round once. It ends when the store closes (every round gets
// ledger.ErrClosed), or after idleExit without a round.
func (f *fanout) dispatch(k logKey, lr *logRounds) {
	idle := time.NewTimer(idleExit)
	defer idle.Stop()
	var batch []*round
	for {
		ch := f.store.Changed(k.ledgerID, k.topic) // before the reads: no commit is missed
		f.mu.Lock()
		lr.gen, lr.end = ch, math.MaxUint64
		batch = batch[:0]
		for _, r := range lr.rounds {
			batch = append(batch, r)
		}
		f.mu.Unlock()
		for _, r := range batch {
			p, err := f.read(k, r)
			if err == nil && len(p.Entries) < r.key.limit {
				// The log ended at p.Next when this read began (or
				// a later commit closes ch).
				f.mu.Lock()
				if lr.gen == ch {
					lr.end = min(lr.end, p.Next)
				}
				f.mu.Unlock()
			}
			f.publish(lr, r, p, err)
		}
		if len(batch) > 0 {
			idle.Reset(idleExit)
		}
		clear(batch) // hold no round between commits
		select {
		case <-ch:
			if !f.store.Ready() {
				f.close(k, lr)
				return
			}
		case <-idle.C:
			f.mu.Lock()
			if len(lr.rounds) == 0 {
				delete(f.logs, k)
				f.mu.Unlock()
				return
			}
			f.mu.Unlock()
			idle.Reset(idleExit)
		}
	}
}

// close ends log k's rounds with ledger.ErrClosed and forgets the log: the
// store has closed.
func (f *fanout) close(k logKey, lr *logRounds) {
	f.mu.Lock()
	if f.logs[k] == lr {
		delete(f.logs, k)
	}
	rounds := make([]*round, 0, len(lr.rounds))
	for _, r := range lr.rounds {
		rounds = append(rounds, r)
	}
	f.mu.Unlock()
	for _, r := range rounds {
		f.publish(lr, r, Page{}, ledger.ErrClosed)
	}
}

func isOpen(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// memo holds what callers made of one shared page (Page.Memo).
type memo struct {
	mu   sync.Mutex // guards vals; never held while a value is built
	vals []*memoVal
}

type memoVal struct {
	key  any
	done chan struct{} // closed once val and err are set
	val  any
	err  error
}

// errMemoPanic is what the other callers get when build panicked.
var errMemoPanic = errors.New("building a shared page's value panicked")

// Memo returns build(), made once for all the followers a page was handed
// to when the page is shared (the first caller builds, the others wait for
// it and get the same value and error), and made by each caller otherwise.
// key (comparable) names what is made, so that callers making different
// things of one page each get their own; build must depend only on the
// page and key. The followers of a page wake together: those waiting for
// a value are released together when it is made, not one by one.
func (p Page) Memo(key any, build func() (any, error)) (any, error) {
	m := p.memo
	if m == nil {
		return build()
	}
	m.mu.Lock()
	for _, v := range m.vals {
		if v.key == key {
			m.mu.Unlock()
			<-v.done
			return v.val, v.err
		}
	}
	v := &memoVal{key: key, done: make(chan struct{}), err: errMemoPanic}
	m.vals = append(m.vals, v)
	m.mu.Unlock()
	defer close(v.done)
	v.val, v.err = build()
	return v.val, v.err
}

// Shared reports whether p was handed to several followers (Memo keeps
// what is made of it).
func (p Page) Shared() bool { return p.memo != nil }
