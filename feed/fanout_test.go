package feed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// countingStore is a real store that counts its Entries reads.
type countingStore struct {
	*ledger.Store
	reads atomic.Int64
}

func (c *countingStore) Entries(ledgerID string, topic ledger.Topic, from uint64, limit int, opt ledger.ReadOptions) ([]ledger.Entry, error) {
	c.reads.Add(1)
	return c.Store.Entries(ledgerID, topic, from, limit, opt)
}

// appendGDPR appends n captures with GDPR fields on date 2024-01-01.
func appendGDPR(tb testing.TB, s *ledger.Store, id string, n int) {
	tb.Helper()
	in := make([]ledger.EntryInput, n)
	for i := range in {
		k := time.Now().UnixNano() + int64(i)
		in[i] = ledger.EntryInput{
			EntryID: fmt.Sprintf("g-%d", k), PSPReference: fmt.Sprint(k), Time: time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC),
			LedgerDate: mustDate(tb, "2024-01-01"), EntryType: "capture", Amount: 100,
			Name: "Ola Nordmann", PhoneNumber: "+4712345678", Message: "takk",
		}
	}
	if _, err := s.Append(context.Background(), id, ledger.TopicFunds, in); err != nil {
		tb.Fatal(err)
	}
}

// waiting returns how many followers wait in the round of ("1", funds) at
// from read with limit and gdpr.
func waiting(r *Reader, from uint64, limit int, gdpr bool) int {
	r.fan.mu.Lock()
	defer r.fan.mu.Unlock()
	lr := r.fan.logs[logKey{"1", ledger.TopicFunds}]
	if lr == nil {
		return 0
	}
	if rd := lr.rounds[roundKey{from: from, limit: limit, gdpr: gdpr}]; rd != nil {
		return rd.waiters
	}
	return 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
	}
}

// TestFanout_OneReadPerPosition: followers (Follow and WaitFeed) waiting at
// one position of one log, read the same way, get one page from one read
// after a commit; followers read another way (GDPR) get their own.
func TestFanout_OneReadPerPosition(t *testing.T) {
	st := openTestStore(t)
	mustPutLedger(t, st, "1")
	appendGDPR(t, st, "1", 3)
	cs := &countingStore{Store: st}
	r := NewReader(cs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const follows, waits = 6, 4
	type got struct {
		p    Page
		gdpr bool
	}
	pages := make(chan got, 4*(follows+waits))
	var wg sync.WaitGroup
	for i := range follows {
		gdpr := i%2 == 1
		wg.Go(func() {
			r.Follow(ctx, "1", ledger.TopicFunds, 4, 10, ledger.ReadOptions{GDPR: gdpr}, time.Hour, nil,
				func(p Page) error { pages <- got{p, gdpr}; return nil }, func(uint64) error { return nil })
		})
	}
	for i := range waits {
		gdpr := i%2 == 1
		wg.Go(func() {
			buf := make([]ledger.Entry, 0, 10)
			p, err := r.WaitFeed(ctx, "1", ledger.TopicFunds, 4, 10, ledger.ReadOptions{GDPR: gdpr, Buf: buf}, time.Minute, nil)
			if err != nil {
				t.Error(err)
			}
			if len(p.Entries) > 0 && &p.Entries[0] == &buf[:1][0] {
				t.Error("a shared page was read into a caller's buffer")
			}
			pages <- got{p, gdpr}
		})
	}
	waitFor(t, "the followers to park", func() bool {
		return waiting(r, 4, 10, false) == (follows+waits)/2 && waiting(r, 4, 10, true) == (follows+waits)/2
	})
	appendGDPR(t, st, "1", 2)
	first := map[bool]*ledger.Entry{}
	for range follows + waits {
		g := <-pages
		if len(g.p.Entries) != 2 || g.p.Entries[0].Sequence != 4 || g.p.Next != 6 || !g.p.Shared() {
			t.Fatalf("page %+v (shared %v)", g.p, g.p.Shared())
		}
		for _, e := range g.p.Entries {
			if (e.GDPR != nil) != g.gdpr {
				t.Fatalf("gdpr %v follower got entry %d with GDPR %v", g.gdpr, e.Sequence, e.GDPR)
			}
		}
		if f := first[g.gdpr]; f == nil {
			first[g.gdpr] = &g.p.Entries[0]
		} else if f != &g.p.Entries[0] {
			t.Fatalf("gdpr %v: two reads of one position", g.gdpr)
		}
	}
	if first[true] == first[false] {
		t.Fatal("GDPR and non-GDPR followers share a page")
	}
	// The followers that go on (Follow) wait at 6 without a read of their
	// own: the dispatcher's read found the end there, and no commit since.
	before := cs.reads.Load()
	waitFor(t, "the followers to park again", func() bool {
		return waiting(r, 6, 10, false) == follows/2 && waiting(r, 6, 10, true) == follows/2
	})
	if n := cs.reads.Load() - before; n != 0 {
		t.Errorf("%d reads to wait at the end of the log the dispatcher read", n)
	}
	// The next commit: one read per round again.
	appendGDPR(t, st, "1", 1)
	for range follows {
		if g := <-pages; len(g.p.Entries) != 1 || g.p.Entries[0].Sequence != 6 {
			t.Fatalf("second page %+v", g.p)
		}
	}
	if n := cs.reads.Load() - before; n != 2 {
		t.Errorf("%d reads for a commit to 2 rounds, want 2", n)
	}
	cancel()
	wg.Wait()
	waitFor(t, "the rounds to go", func() bool { return waiting(r, 6, 10, false)+waiting(r, 6, 10, true) == 0 })
}

// TestFanout_Memo: a shared page's Memo builds once per key, an unshared
// page's on every call.
func TestFanout_Memo(t *testing.T) {
	var builds atomic.Int64
	build := func() (any, error) { return builds.Add(1), nil }
	shared := Page{memo: &memo{}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if v, err := shared.Memo("a", build); v != int64(1) || err != nil {
				t.Errorf("shared Memo(a) = %v, %v", v, err)
			}
		})
	}
	wg.Wait()
	if v, _ := shared.Memo("b", build); v != int64(2) {
		t.Errorf("Memo(b) = %v, want a build of its own", v)
	}
	var alone Page
	alone.Memo("a", build)
	alone.Memo("a", build)
	if builds.Load() != 4 {
		t.Errorf("%d builds, want 4", builds.Load())
	}
}

// TestFanout_Close: followers waiting when the store closes end with
// ledger.ErrClosed, and so does a wait begun after.
func TestFanout_Close(t *testing.T) {
	st := openTestStore(t)
	mustPutLedger(t, st, "1")
	r := NewReader(st)
	errs := make(chan error, 2)
	go func() {
		errs <- r.Follow(context.Background(), "1", ledger.TopicFunds, 1, 10, ledger.ReadOptions{}, time.Hour, nil,
			func(Page) error { return errors.New("no page expected") }, func(uint64) error { return nil })
	}()
	go func() {
		_, err := r.WaitFeed(context.Background(), "1", ledger.TopicFunds, 1, 10, ledger.ReadOptions{}, time.Hour, nil)
		errs <- err
	}()
	waitFor(t, "the followers to park", func() bool { return waiting(r, 1, 10, false) == 2 })
	st.Close()
	for range 2 {
		if err := <-errs; !errors.Is(err, ledger.ErrClosed) {
			t.Errorf("wait across close: %v", err)
		}
	}
	if _, err := r.WaitFeed(context.Background(), "1", ledger.TopicFunds, 1, 10, ledger.ReadOptions{}, time.Hour, nil); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("wait after close: %v", err)
	}
}

// TestFanout_Shareable: GDPR and Buf alone leave reads shareable.
func TestFanout_Shareable(t *testing.T) {
	if !shareable(ledger.ReadOptions{GDPR: true, Buf: make([]ledger.Entry, 3)}) || !shareable(ledger.ReadOptions{}) {
		t.Error("GDPR and Buf alone are shareable")
	}
}
