package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DataFileName is the name of the bbolt file inside the data directory.
const DataFileName = "ledgerfeed.db"

// Options configure a Store. The zero value is usable.
type Options struct {
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
	// Grace is how long after its end a date closes by itself; 0 means 1 h.
	Grace time.Duration
	// Logger receives the store's few log lines; nil discards them.
	Logger *slog.Logger
	// LockTimeout is how long Open waits for another process to release the
	// data directory; 0 means 1 s.
	LockTimeout time.Duration

	// noSync skips every fsync: a crash may lose acknowledged writes. Only
	// tests that check logic, not durability, set it.
	noSync bool
}

// Store is the ledger store over one bbolt file. It is safe for concurrent use.
type Store struct {
	dir   string
	db    *bolt.DB
	keys  *keyFile
	now   func() time.Time
	grace time.Duration
	log   *slog.Logger

	// Decoded ledger and client records, for the reads of every call
	// (readcache.go).
	ledgerRecs decoded[*ledgerRecord]
	clientRecs decoded[Client]

	mu     sync.RWMutex // held for writing only to mark the store closed
	closed bool
	reqs   chan *writeReq
	wdone  chan struct{} // closed when the writer goroutine has stopped
	ready  atomic.Bool

	watch Notifier
}

const (
	maxGroupRequests = 512
	maxGroupEntries  = 20000
)

// Open opens (creating if needed) the store in dir. It refuses a damaged data
// file with an error wrapping ErrDamaged, and a directory that another process
// holds with one wrapping ErrLocked, instead of crashing or waiting.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Grace == 0 {
		opts.Grace = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = time.Second
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, DataFileName)
	if err := checkDataFile(path); err != nil {
		return nil, err
	}
	if err := checkNotLost(path, filepath.Join(dir, keyFileName)); err != nil {
		return nil, err
	}
	db, err := openBolt(path, opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	if err := initSchema(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := checkLedgers(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.NoSync = opts.noSync
	var next uint64
	if err := db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(metaGDPRNext); len(v) == 8 {
			next = btoi(v)
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, err
	}
	keys, err := openKeyFile(filepath.Join(dir, keyFileName), next, opts.noSync)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{
		dir: dir, db: db, keys: keys,
		now: opts.Now, grace: opts.Grace, log: opts.Logger,
		reqs:  make(chan *writeReq, maxGroupRequests),
		wdone: make(chan struct{}),
	}
	go s.writer()
	s.ready.Store(true)
	return s, nil
}

// initSchema creates the buckets and checks the schema version. It reads the
// root and every bucket's root page, so a damaged one is refused here with
// ErrDamaged (bbolt panics on a page it cannot read).
func initSchema(db *bolt.DB) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damagedPanic(r)
		}
	}()
	return db.Update(func(tx *bolt.Tx) error {
		if err := createBuckets(tx); err != nil {
			return err
		}
		// Touch each bucket's root page and both ends of its tree.
		for _, name := range allBuckets {
			c := tx.Bucket(name).Cursor()
			c.First()
			c.Last()
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get([]byte("schema")); v == nil {
			return meta.Put([]byte("schema"), itob(schemaVersion))
		} else if len(v) != 8 || btoi(v) != schemaVersion {
			return fmt.Errorf("%w: schema version %x, this binary knows %d", ErrDamaged, v, schemaVersion)
		}
		return nil
	})
}

// checkLedgers reads every ledger record and walks to the last entry of each
// of its logs, so that a damaged page on the paths every request takes is refused
// at start rather than met by the first request.
func checkLedgers(db *bolt.DB) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damagedPanic(r)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLedgers).ForEach(func(k, v []byte) error {
			rec, err := unmarshalLedger(v)
			if err != nil {
				return err
			}
			for _, t := range Topics {
				// A record that does not decode is left for verify to name;
				// only pages bbolt cannot read stop the start.
				_, _ = readHead(tx, rec.Num, t)
			}
			return nil
		})
	})
}

// damagedPanic turns a panic met inside bbolt (it asserts on pages it cannot
// read) into an ErrDamaged error.
func damagedPanic(r any) error {
	return fmt.Errorf("%w: %v; run ledgerfeed verify, restore from a backup", ErrDamaged, r)
}

// openBolt opens the bbolt file, turning a lock timeout into ErrLocked and a
// memory fault on a damaged file into ErrDamaged.
func openBolt(path string, lockTimeout time.Duration) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %s: %v; restore it from a backup", ErrDamaged, path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         lockTimeout,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 256 << 20, // fewer remaps: a remap waits for every open read tx
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s is locked (is a ledgerfeed server running on it?)", ErrLocked, filepath.Dir(path))
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("%w: %s: %v; restore it from a backup", ErrDamaged, path, err)
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Ready reports whether the store is open and accepting work.
func (s *Store) Ready() bool { return s.ready.Load() }

// Close waits for queued writes to commit, wakes every waiter and closes the
// files. Calls after the first return nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.ready.Store(false)
	close(s.reqs)
	s.mu.Unlock()
	<-s.wdone
	s.watch.CloseAll()
	err := s.db.Close()
	if kerr := s.keys.f.Close(); err == nil {
		err = kerr
	}
	return err
}

// writeReq is one caller's write, run by the writer goroutine inside a shared
// transaction.
type writeReq struct {
	op   func(w *wtx) (any, error)
	res  any
	err  error
	done chan struct{}
}

// dirtyError marks an op error after which the transaction may hold partial
// writes of that op: the whole group is rolled back and rerun one by one.
// An op returns any other error only before it has written anything.
type dirtyError struct{ err error }

func (e *dirtyError) Error() string { return e.err.Error() }
func (e *dirtyError) Unwrap() error { return e.err }

func dirty(err error) error {
	if err == nil {
		return nil
	}
	return &dirtyError{err}
}

// write runs op in the writer goroutine and returns once its transaction has
// committed and been fsynced, or failed. Once submitted, the caller waits for
// the outcome even if ctx ends, so the answer always says what happened.
func (s *Store) write(ctx context.Context, op func(w *wtx) (any, error)) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &writeReq{op: op, done: make(chan struct{})}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		s.mu.RUnlock()
		return nil, ctx.Err()
	}
	s.mu.RUnlock()
	<-r.done
	return r.res, r.err
}

// writer commits the waiting requests in one transaction and one fsync:
// group commit. After a commit it takes every request already queued, and
// while fewer have come than the previous group held it waits for the rest
// up to groupWait: callers answered by one commit send their next request
// at about the same moment, and waiting for them keeps groups full instead
// of alternating between large and small. It waits only when the group's
// first request came within groupWait of the previous commit's end (or
// while it ran): a request that finds the writer idle for longer is not a
// caller coming back from that commit, and the previous group's size (an
// append and an unrelated audit batch, say) says nothing about what else
// will come. A lone caller never waits.
func (s *Store) writer() {
	defer close(s.wdone)
	group := make([]*writeReq, 0, maxGroupRequests)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	last := 1
	var committed time.Time // end of the last commit
	for r := range s.reqs {
		group = append(group[:0], r)
		want := last
		if want > 1 && time.Since(committed) > groupWait {
			want = 1
		}
		open := s.gather(&group, want, timer)
		last = len(group)
		s.commit(group)
		committed = time.Now()
		if !open {
			return
		}
	}
}

const groupWait = 500 * time.Microsecond

// gather adds queued requests to group: all that are there now, then more
// until the group holds want or groupWait has passed. It reports false when
// the queue has been closed.
func (s *Store) gather(group *[]*writeReq, want int, timer *time.Timer) bool {
	for len(*group) < maxGroupRequests {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return false
			}
			*group = append(*group, r)
			continue
		default:
		}
		break
	}
	if len(*group) >= want {
		return true
	}
	timer.Reset(groupWait)
	defer timer.Stop()
	for len(*group) < want && len(*group) < maxGroupRequests {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return false
			}
			*group = append(*group, r)
		case <-timer.C:
			return true
		}
	}
	return true
}

func (s *Store) commit(group []*writeReq) {
	if err := s.tryCommit(group); err != nil {
		if len(group) == 1 {
			group[0].res, group[0].err = nil, err
		} else {
			s.log.Warn("group commit failed; committing one by one", "requests", len(group), "err", err)
			for _, r := range group {
				if err := s.tryCommit([]*writeReq{r}); err != nil {
					r.res, r.err = nil, err
				}
			}
		}
	}
	for _, r := range group {
		close(r.done)
	}
}

func (s *Store) tryCommit(group []*writeReq) (err error) {
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damagedPanic(r)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	setFill(tx)
	w := newWtx(tx, s)
	for _, r := range group {
		r.res, r.err = r.op(w)
		var de *dirtyError
		if errors.As(r.err, &de) {
			return de.err
		}
	}
	if err := w.flush(); err != nil {
		return err
	}
	touched := w.touched
	tx.OnCommit(func() {
		s.keys.committed(&w.keys)
		for _, k := range touched {
			s.watch.Notify(k.ledgerID, k.topic)
		}
	})
	return tx.Commit()
}

// wtx is the shared write transaction of one group, with what its ops
// changed so far. Ops update its caches only once they cannot fail.
type wtx struct {
	*bolt.Tx
	s       *Store
	b       buckets
	ledgers map[string]*ledgerRecord // records read or changed in this tx
	changed []*ledgerRecord          // records to write back at the end
	heads   map[topicKey]head        // heads as of this tx's writes
	dates   map[dateRangeKey]*[2]uint64
	closes  map[closeKey]time.Time // open date moves of this tx (closes.go)
	keys    keyWrites
	touched []watchKey
}

type buckets struct {
	meta, ledgers, entries, ids, dates, refs, psp, times, gdpr *bolt.Bucket
}

type topicKey struct {
	num   uint32
	topic Topic
}

type dateRangeKey struct {
	topicKey
	date Date
}

func newWtx(tx *bolt.Tx, s *Store) *wtx {
	return &wtx{
		Tx: tx, s: s,
		b: buckets{
			meta: tx.Bucket(bucketMeta), ledgers: tx.Bucket(bucketLedgers),
			entries: tx.Bucket(bucketEntries), ids: tx.Bucket(bucketEntryIDs),
			dates: tx.Bucket(bucketDates), refs: tx.Bucket(bucketRefs),
			psp: tx.Bucket(bucketPSPRefs), times: tx.Bucket(bucketTimes),
			gdpr: tx.Bucket(bucketGDPR),
		},
		ledgers: map[string]*ledgerRecord{},
		heads:   map[topicKey]head{},
		dates:   map[dateRangeKey]*[2]uint64{},
		closes:  map[closeKey]time.Time{},
	}
}

// head returns the head of a topic log as of this tx.
func (w *wtx) head(num uint32, t Topic) (head, error) {
	k := topicKey{num, t}
	if h, ok := w.heads[k]; ok {
		return h, nil
	}
	h, err := readHead(w.Tx, num, t)
	if err == nil {
		w.heads[k] = h
	}
	return h, err
}

// flush writes what the group's ops left in the caches, and prepares the
// key file, before the commit.
func (w *wtx) flush() error {
	for _, r := range w.changed {
		if err := w.b.ledgers.Put([]byte(r.ID), r.marshal()); err != nil {
			return err
		}
	}
	for k, r := range w.dates {
		if err := w.b.dates.Put(dateKey(k.num, k.topic, k.date), append(itob(r[0]), itob(r[1])...)); err != nil {
			return err
		}
	}
	if err := w.putCloses(); err != nil {
		return err
	}
	return w.s.keys.prepare(&w.keys, w.b.meta)
}

// extendDate records that seq belongs to date d of a topic log.
func (w *wtx) extendDate(num uint32, t Topic, d Date, seq uint64) {
	k := dateRangeKey{topicKey{num, t}, d}
	if r, ok := w.dates[k]; ok {
		r[1] = seq
		return
	}
	first := seq
	if v := w.b.dates.Get(dateKey(num, t, d)); len(v) == 16 {
		first = btoi(v[:8])
	}
	w.dates[k] = &[2]uint64{first, seq}
}

// ledger returns the ledger record of id as of this tx, or ErrNotFound.
func (w *wtx) ledger(id string) (*ledgerRecord, error) {
	if r, ok := w.ledgers[id]; ok {
		return r, nil
	}
	v := w.b.ledgers.Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("ledger %s: %w", id, ErrNotFound)
	}
	// The readers' decoding of the same bytes (readcache.go), copied: ops
	// change the tx's record, never the shared one.
	shared, err := w.s.ledgerRecs.get(id, v, unmarshalLedger)
	if err != nil {
		return nil, err
	}
	r := shared.clone()
	w.ledgers[id] = r
	return r, nil
}

// markChanged schedules r to be written back before the commit. Several ops
// of one group changing the same ledger write it once.
func (w *wtx) markChanged(r *ledgerRecord) {
	for _, c := range w.changed {
		if c == r {
			return
		}
	}
	w.changed = append(w.changed, r)
}

func btoi(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}
