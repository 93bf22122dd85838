package ledger

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestStore_ConcurrentAppend runs 16 goroutines appending to one shared
// ledger and to ledgers of their own (run it under -race), then checks every
// log is gapless with the right balance, and Verify passes.
func TestStore_ConcurrentAppend(t *testing.T) {
	clock := newClock(utc("2026-05-01T12:00:00Z"))
	s := openTestStore(t, Options{Now: clock.Now})
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
			for {
				select {
				case <-stop:
					return
				default:
				}
				es, err := s.Entries("shared", TopicFunds, next, 100, ReadOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				for _, e := range es {
					if e.Sequence != next || e.BalanceBefore != bal {
						t.Errorf("reader: sequence %d balance %d, want %d and %d", e.Sequence, e.BalanceBefore, next, bal)
						return
					}
					next, bal = next+1, e.BalanceAfter
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
					in := make([]EntryInput, perBatch)
					for i := range in {
						in[i] = EntryInput{
							EntryID: fmt.Sprintf("w%d-b%d-%d", w, b, i), PSPReference: fmt.Sprintf("psp-%d-%d", w, b),
							Time: clock.Now().Add(-time.Minute), EntryType: "capture", Reference: fmt.Sprintf("o-%d", w),
							Amount: int64(w*100 + i + 1),
						}
					}
					topic := Topics[b%2]
					if _, err := s.Append(ctx, target, topic, in); err != nil {
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
		for _, topic := range Topics {
			checkLog(t, s, fmt.Sprintf("own-%d", w), topic, batches/2*perBatch, sumPerWorker(w)*batches/2)
		}
	}
	for _, topic := range Topics {
		checkLog(t, s, "shared", topic, workers*batches/2*perBatch, sharedTotal)
	}
	if _, err := s.Verify(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

// checkLog reads a whole topic log and checks count, gapless sequences,
// chained balances and the final balance.
func checkLog(t *testing.T, s *Store, id string, topic Topic, count int, balance int64) {
	t.Helper()
	es, err := s.Entries(id, topic, 1, count+10, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != count {
		t.Fatalf("%s/%s: %d entries, want %d", id, topic, len(es), count)
	}
	var bal int64
	for i, e := range es {
		if e.Sequence != uint64(i+1) || e.BalanceBefore != bal || e.BalanceAfter != bal+e.Amount {
			t.Fatalf("%s/%s: entry %d: %+v (balance before %d)", id, topic, i, e, bal)
		}
		bal = e.BalanceAfter
	}
	if bal != balance {
		t.Fatalf("%s/%s: balance %d, want %d", id, topic, bal, balance)
	}
}
