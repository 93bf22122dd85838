package pgstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// TestAppend_ReadersSeeNoGap: 8 writers over 3 stores (3 pools, as 3 nodes)
// append to one ledger and topic while a reader on a 4th store follows the
// log. Every entry is stored exactly once, sequences are gapless, balances
// and the chain are right, and the reader — which fails on the first page
// that does not start exactly where it left off — never meets a sequence
// before the one before it.
func TestAppend_ReadersSeeNoGap(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	clock := newClock(utc("2026-06-10T12:00:00Z"))
	var nodes []*Store
	for range 3 {
		nodes = append(nodes, openPG(t, dsn, Options{Now: clock.Now, MaxConns: 4}))
	}
	reader := openPG(t, dsn, Options{Now: clock.Now})
	if _, _, err := nodes[0].PutLedger(ctx, ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"}); err != nil {
		t.Fatal(err)
	}
	const writers, batches = 8, 25
	var done atomic.Bool
	var read atomic.Uint64
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var next uint64 = 1
		var bal int64
		var prev [32]byte
		for {
			finished := done.Load() // read after the writers stopped: one last pass
			es, err := reader.Entries("302321", ledger.TopicFunds, next, 50, ledger.ReadOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			for _, e := range es {
				if e.Sequence != next || e.BalanceBefore != bal || ledger.ChainHash(prev, &e) != e.Hash {
					t.Errorf("reader at %d: got sequence %d (balance before %d, want %d)", next, e.Sequence, e.BalanceBefore, bal)
					return
				}
				next, bal, prev = next+1, e.BalanceAfter, e.Hash
			}
			read.Store(next - 1)
			if finished && len(es) == 0 {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	var want atomic.Int64
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := nodes[w%len(nodes)]
			for b := range batches {
				n := 1 + (w+b)%3
				in := make([]ledger.EntryInput, n)
				for i := range in {
					in[i] = capture(fmt.Sprintf("w%d-b%d-%d", w, b, i), int64(w*100+i+1), clock.Now().Add(-time.Hour))
				}
				res, err := s.Append(ctx, "302321", ledger.TopicFunds, in)
				if err == nil && b%5 == 0 { // a retry, sometimes through another node: duplicates only
					res, err = nodes[(w+1)%len(nodes)].Append(ctx, "302321", ledger.TopicFunds, in)
					if err == nil && res.Duplicates != n {
						err = fmt.Errorf("retry: %v", res)
					}
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				for _, e := range in {
					want.Add(e.Amount)
				}
			}
		}()
	}
	wg.Wait()
	done.Store(true)
	<-readerDone
	es, err := reader.Entries("302321", ledger.TopicFunds, 1, 10000, ledger.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, e := range es {
		if ids[e.EntryID] {
			t.Fatalf("entry %s stored twice", e.EntryID)
		}
		ids[e.EntryID] = true
	}
	total := 0
	for w := range writers {
		for b := range batches {
			total += 1 + (w+b)%3
		}
	}
	h, _ := reader.Head("302321", ledger.TopicFunds)
	if len(es) != total || h.Sequence != uint64(total) || read.Load() != uint64(total) || h.Balance != want.Load() {
		t.Fatalf("%d entries, head %d, reader reached %d, want %d; balance %d, want %d", len(es), h.Sequence, read.Load(), total, h.Balance, want.Load())
	}
}

// TestWaitAppend_AcrossNodes: a commit through one store wakes WaitAppend on
// another through LISTEN/NOTIFY. The waiting store's fallback poll is set to
// an hour, so only the notification can wake it before the test's deadline.
func TestWaitAppend_AcrossNodes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	clock := newClock(utc("2026-06-10T12:00:00Z"))
	a := openPG(t, dsn, Options{Now: clock.Now})
	b := openPG(t, dsn, Options{Now: clock.Now, Poll: time.Hour})
	if _, _, err := a.PutLedger(ctx, ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"}); err != nil {
		t.Fatal(err)
	}
	for round := uint64(0); round < 3; round++ {
		got := make(chan error, 1)
		ch := b.Changed("302321", ledger.TopicFees)
		go func() {
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			h, err := b.WaitAppend(wctx, "302321", ledger.TopicFunds, round)
			if err == nil && h.Sequence != round+1 {
				err = fmt.Errorf("woke at head %d, want %d", h.Sequence, round+1)
			}
			got <- err
		}()
		time.Sleep(50 * time.Millisecond) // let the waiter read the head and wait (it works either way)
		if _, err := a.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{capture(fmt.Sprint("n", round), 5, clock.Now())}); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if round > 0 { // the first append also opened the ledger's first date: that wakes both
			select {
			case <-ch:
				t.Fatal("an append to funds woke a fees waiter")
			default:
			}
		}
	}
	// Closing a date wakes both topics' waiters on the other node.
	ch := b.Changed("302321", ledger.TopicFees)
	if _, err := a.CloseDate(ctx, "302321", mustDate(t, "2026-06-10")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatal("closing a date on node A did not wake a fees waiter on node B")
	}
	// Close wakes waiters with ErrClosed.
	errc := make(chan error, 1)
	go func() {
		_, err := b.WaitAppend(ctx, "302321", ledger.TopicFunds, 100)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	b.Close()
	if err := <-errc; err != ledger.ErrClosed {
		t.Fatalf("WaitAppend after Close: %v", err)
	}
}
