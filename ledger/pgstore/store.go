package pgstore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
	// Grace is how long after its end a date closes by itself; 0 means 1 h.
	Grace time.Duration
	// Logger receives the store's few log lines; nil discards them.
	Logger *slog.Logger
	// Poll bounds how long a lost notification can delay a waiter: every
	// Poll, every Changed channel is closed so its waiter re-reads. 0 means
	// 1 s.
	Poll time.Duration
	// MaxConns caps the pool's connections; 0 means pgxpool's default
	// (max(4, cores)).
	MaxConns int32
}

// Store is the ledger store over one PostgreSQL database. It is safe for
// concurrent use, and any number of Stores (processes, nodes) may share the
// database.
type Store struct {
	pool  *pgxpool.Pool
	dsn   string
	now   func() time.Time
	grace time.Duration
	log   *slog.Logger
	poll  time.Duration

	groups    sync.Map     // ledger id → *group: appends waiting to be committed together
	fixed     sync.Map     // ledger id → fixedLedger, once the ledger has entries
	appended  atomic.Int64 // append requests' entries committed since Open
	analyzeAt atomic.Int64 // ANALYZE when appended reaches this
	watch     ledger.Notifier
	ready     atomic.Bool
	stop      context.CancelFunc
	closeOnce sync.Once
	bg        sync.WaitGroup
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string), applies the schema migrations it lacks and starts listening for
// other nodes' commits.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Grace == 0 {
		opts.Grace = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Poll == 0 {
		opts.Poll = time.Second
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, dsn: dsn, now: opts.Now, grace: opts.Grace, log: opts.Logger, poll: opts.Poll}
	s.analyzeAt.Store(1000)
	lctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	listening := make(chan struct{})
	s.bg.Add(2)
	go s.listen(lctx, listening)
	go s.fallbackPoll(lctx)
	select {
	case <-listening:
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	case <-time.After(10 * time.Second):
		// Not fatal: the fallback poll wakes waiters until it connects.
		s.log.Warn("postgres store: LISTEN not established yet; waking waiters by polling meanwhile")
	}
	s.ready.Store(true)
	return s, nil
}

// Ready reports whether the store is open.
func (s *Store) Ready() bool { return s.ready.Load() }

// Close closes the store: waiters are woken (WaitAppend answers
// ledger.ErrClosed) and the connections are closed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.ready.Store(false)
		s.stop()
		s.bg.Wait()
		s.watch.CloseAll()
		s.pool.Close()
	})
	return nil
}

// Pool returns the store's connection pool (tests and tools).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

func (s *Store) checkOpen() error {
	if !s.ready.Load() {
		return ledger.ErrClosed
	}
	return nil
}
