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

// TestCrash_AcknowledgedSurvive: writers append while the server is
// crashed (stopped without a checkpoint) and restarted. A call that failed
// may or may not have committed, so writers retry it unchanged until it is
// acknowledged, as a settlement engine would. Afterwards every acknowledged
// entry is stored exactly once, the log is gapless and chained, and a waiter
// on another store — whose LISTEN connection the crash broke — is woken by
// an append made after the restart.
func TestCrash_AcknowledgedSurvive(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	clock := newClock(utc("2026-06-10T12:00:00Z"))
	s := openPG(t, dsn, Options{Now: clock.Now, Poll: 200 * time.Millisecond})
	other := openPG(t, dsn, Options{Now: clock.Now, Poll: 200 * time.Millisecond})
	if _, _, err := s.PutLedger(ctx, ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"}); err != nil {
		t.Fatal(err)
	}
	var acked sync.Map
	var nAcked, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				in := []ledger.EntryInput{capture(fmt.Sprintf("w%d-%d", w, i), int64(w+1), clock.Now().Add(-time.Hour))}
				for attempt := 0; ; attempt++ {
					_, err := s.Append(ctx, "302321", ledger.TopicFunds, in)
					if err == nil {
						break
					}
					failures.Add(1)
					if attempt > 200 {
						t.Errorf("writer %d: still failing: %v", w, err)
						return
					}
					time.Sleep(25 * time.Millisecond)
				}
				acked.Store(in[0].EntryID, in[0].Amount)
				nAcked.Add(1)
			}
		}()
	}
	waitFor := func(n int64) {
		deadline := time.Now().Add(30 * time.Second)
		for nAcked.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d appends acknowledged, want %d", nAcked.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(100)
	pgtest.Crash(t)
	before := nAcked.Load()
	waitFor(before + 100)
	close(stop)
	wg.Wait()
	if failures.Load() == 0 {
		t.Fatal("no append failed: the crash did not happen under load")
	}
	es, err := s.Entries("302321", ledger.TopicFunds, 1, 100000, ledger.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var bal int64
	var prev [32]byte
	for i, e := range es {
		if e.Sequence != uint64(i+1) || e.BalanceBefore != bal || ledger.ChainHash(prev, &e) != e.Hash || seen[e.EntryID] {
			t.Fatalf("entry %d: %+v (balance before want %d, seen before %v)", i, e, bal, seen[e.EntryID])
		}
		seen[e.EntryID] = true
		bal, prev = e.BalanceAfter, e.Hash
	}
	acked.Range(func(k, _ any) bool {
		if !seen[k.(string)] {
			t.Errorf("acknowledged entry %s lost", k)
		}
		return true
	})
	if int64(len(es)) != nAcked.Load() {
		t.Fatalf("%d entries stored, %d acknowledged", len(es), nAcked.Load())
	}
	t.Logf("%d acknowledged, %d failed calls retried across the crash", nAcked.Load(), failures.Load())

	// The other store's waiter wakes for an append after the restart.
	h, _ := other.Head("302321", ledger.TopicFunds)
	got := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err := other.WaitAppend(wctx, "302321", ledger.TopicFunds, h.Sequence)
		got <- err
	}()
	if _, err := s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{capture("after", 1, clock.Now())}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("waiter on the other store after the crash: %v", err)
	}
}
