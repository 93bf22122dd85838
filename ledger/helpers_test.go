package ledger

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testClock is a settable clock for stores under test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openTestStore opens a store in a fresh temp dir and closes it at cleanup.
func openTestStore(tb testing.TB, opts Options) *Store {
	tb.Helper()
	return openTestStoreAt(tb, filepath.Join(tb.TempDir(), "data"), opts)
}

func openTestStoreAt(tb testing.TB, dir string, opts Options) *Store {
	tb.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func mustPutLedger(tb testing.TB, s *Store, id, currency, zone, cutoff string) {
	tb.Helper()
	if _, _, err := s.PutLedger(context.Background(), Ledger{ID: id, Currency: currency, TimeZone: zone, Cutoff: cutoff}); err != nil {
		tb.Fatalf("put ledger %s: %v", id, err)
	}
}

func strp(s string) *string { return &s }

func mustDate(tb testing.TB, s string) Date {
	tb.Helper()
	d, err := ParseDate(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}
