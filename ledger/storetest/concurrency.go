package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// testConcurrentAppend runs 16 goroutines appending to one shared ledger
// and to ledgers of their own (run it under -race), some batches posted
// twice, then checks every log holds every entry once, gapless and chained,
// with the right balance (and, for a store with files, that Verify passes).
// Readers beside the writers fail on the first entry that does not follow
// the one before.
func testConcurrentAppend(t *testing.T, h Harness) {
	s, clock := openAt(t, h, utc("2026-05-01T12:00:00Z"))
	ctx := context.Background()
	mustPutLedger(t, s, "shared", "NOK", "Europe/Oslo", "")
	const workers, batches, perBatch = 16, 40, 5
	for w := 0; w < workers; w++ {
		mustPutLedger(t, s, fmt.Sprintf("own-%d", w), "EUR", "Europe/Helsinki", "")
	}
	// Readers run beside the writers: they must never see a gap or a
	// balance that does not chain.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var next uint64 = 1
			var bal int64
			var prev [32]byte
			for {
				select {
				case <-stop:
					return
				default:
				}
				es, err := s.Entries("shared", ledger.TopicFunds, next, 100, ledger.ReadOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				for _, e := range es {
					if e.Sequence != next || e.BalanceBefore != bal || ledger.ChainHash(prev, &e) != e.Hash {
						t.Errorf("reader: sequence %d balance %d, want %d and %d, or the hash does not chain", e.Sequence, e.BalanceBefore, next, bal)
						return
					}
					next, bal, prev = next+1, e.BalanceAfter, e.Hash
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				for _, target := range []string{"shared", fmt.Sprintf("own-%d", w)} {
					in := make([]ledger.EntryInput, perBatch)
					for i := range in {
						in[i] = ledger.EntryInput{
							EntryID: fmt.Sprintf("w%d-b%d-%d", w, b, i), PSPReference: fmt.Sprintf("psp-%d-%d", w, b),
							Time: clock.Now().Add(-time.Minute), EntryType: "capture", Reference: fmt.Sprintf("o-%d", w),
							Amount: int64(w*100 + i + 1),
						}
					}
					topic := ledger.Topics[b%2]
					res, err := s.Append(ctx, target, topic, in)
					if err == nil && b%4 == 0 { // a retry: duplicates only, at the same sequences
						seqs := res.Sequences
						res, err = s.Append(ctx, target, topic, in)
						if err == nil && (res.Duplicates != perBatch || !slices.Equal(res.Sequences, seqs)) {
							err = fmt.Errorf("retry answered %+v, first answer %v", res, seqs)
						}
					}
					if err != nil {
						t.Errorf("worker %d: %v", w, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	var sumPerWorker = func(w int) int64 { // amount of one batch
		var s int64
		for i := 0; i < perBatch; i++ {
			s += int64(w*100 + i + 1)
		}
		return s
	}
	var sharedTotal int64
	for w := 0; w < workers; w++ {
		sharedTotal += sumPerWorker(w) * batches / 2
		for _, topic := range ledger.Topics {
			checkLog(t, s, fmt.Sprintf("own-%d", w), topic, batches/2*perBatch, sumPerWorker(w)*batches/2)
		}
	}
	for _, topic := range ledger.Topics {
		checkLog(t, s, "shared", topic, workers*batches/2*perBatch, sharedTotal)
	}
	if f, ok := s.(ledger.Files); ok {
		if _, err := f.Verify(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// checkLog reads a whole topic log and checks count, gapless sequences,
// chained balances and hashes, entry ids each once, and the final balance.
func checkLog(t *testing.T, s ledger.EntryReader, id string, topic ledger.Topic, count int, balance int64) {
	t.Helper()
	es, err := s.Entries(id, topic, 1, count+10, ledger.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != count {
		t.Fatalf("%s/%s: %d entries, want %d", id, topic, len(es), count)
	}
	var bal int64
	var prev [32]byte
	seen := map[string]bool{}
	for i, e := range es {
		if e.Sequence != uint64(i+1) || e.BalanceBefore != bal || e.BalanceAfter != bal+e.Amount || ledger.ChainHash(prev, &e) != e.Hash || seen[e.EntryID] {
			t.Fatalf("%s/%s: entry %d: %+v (balance before %d, id seen before %v)", id, topic, i, e, bal, seen[e.EntryID])
		}
		bal, prev, seen[e.EntryID] = e.BalanceAfter, e.Hash, true
	}
	if bal != balance {
		t.Fatalf("%s/%s: balance %d, want %d", id, topic, bal, balance)
	}
}
