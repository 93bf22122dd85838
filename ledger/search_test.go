package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// searchLedger appends n entries with a few references, pspReferences,
// types and times out of append order, and returns them as stored.
func searchLedger(tb testing.TB, s *Store, id string, n int, step time.Duration, rng *rand.Rand) []Entry {
	tb.Helper()
	mustPutLedger(tb, s, id, "NOK", "UTC", "")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	types := []string{"capture", "capture", "capture", "refund", "correction"}
	rare := "payout-aborted" // about one entry in 60
	for done := 0; done < n; {
		batch := make([]EntryInput, 0, min(n-done, 10000))
		for range cap(batch) {
			done++
			batch = append(batch, EntryInput{
				EntryID:      fmt.Sprintf("e%d", done),
				PSPReference: fmt.Sprintf("psp-%d", rng.IntN(max(n/4, 1))),
				Time:         base.Add(time.Duration(done)*step + time.Duration(rng.IntN(300)-150)*time.Minute),
				EntryType:    types[rng.IntN(len(types))],
				Reference:    fmt.Sprintf("order-%d", rng.IntN(max(n/3, 1))),
				Amount:       int64(rng.IntN(10000) + 1),
			})
		}
		for i := range batch {
			if rng.IntN(60) == 0 {
				batch[i].EntryType = rare
			}
		}
		if _, err := s.Append(context.Background(), id, TopicFunds, batch); err != nil {
			tb.Fatal(err)
		}
	}
	es, err := s.Entries(id, TopicFunds, 1, n+1, ReadOptions{})
	if err != nil || len(es) != n {
		tb.Fatalf("read back %d of %d: %v", len(es), n, err)
	}
	return es
}

func TestStore_Search(t *testing.T) {
	defer func(v int) { timeCollectMax = v }(timeCollectMax)
	timeCollectMax = 40 // so that wide time ranges take the log walk
	s := openTestStore(t, Options{Now: func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }, noSync: true})
	rng := rand.New(rand.NewPCG(7, 7))
	all := searchLedger(t, s, "1", 600, 97*time.Minute, rng) // over 40 dates
	// Seal the closed dates: an entryType search skips sealed dates whose
	// summary lacks the types.
	sealAll(t, s, "1")
	at := func(i int) time.Time {
		return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 97 * time.Minute) // about entry i
	}
	queries := []SearchQuery{
		{},
		{Reference: "order-7"},
		{Reference: "order-7", EntryTypes: []string{"capture"}},
		{PSPReference: "psp-3"},
		{PSPReference: "psp-3", Reference: all[0].Reference},
		{FromTime: at(100), ToTime: at(130)}, // few rows: sorted index rows
		{FromTime: at(100)},                  // many: the log walk
		{ToTime: at(200), EntryTypes: []string{"refund", "correction"}},
		{EntryTypes: []string{"correction"}},
		{EntryTypes: []string{"payout-aborted"}},
		{EntryTypes: []string{"payout-aborted", "refund"}},
		{Reference: "no-such-order"},
		{FromTime: at(100), ToTime: at(100)},
	}
	for qi, q := range queries {
		var want []uint64
		m := matcher{q: q, types: q.EntryTypes, from: -1 << 63, to: 1<<63 - 1}
		if !q.FromTime.IsZero() {
			m.from = q.FromTime.UnixMicro()
		}
		if !q.ToTime.IsZero() {
			m.to = q.ToTime.UnixMicro()
		}
		for i := range all {
			if m.match(&all[i]) {
				want = append(want, all[i].Sequence)
			}
		}
		if len(want) == 0 && q.Reference != "no-such-order" && !q.FromTime.Equal(q.ToTime) {
			t.Fatalf("query %d matches nothing: a weak test", qi)
		}
		for _, limit := range []int{1, 7, 1000} {
			// Forward from the start, then backward from the end: each
			// match exactly once, in append order.
			var fwd []uint64
			q := q
			q.Limit = limit
			for pages := 0; ; pages++ {
				p, err := s.Search("1", TopicFunds, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range p.Entries {
					if all[e.Sequence-1].Hash != e.Hash {
						t.Fatalf("query %d: entry %d differs from the log", qi, e.Sequence)
					}
					fwd = append(fwd, e.Sequence)
				}
				if !p.HasMore {
					break
				}
				if len(p.Entries) != limit {
					t.Fatalf("query %d: short page with hasMore", qi)
				}
				q.After = p.Entries[len(p.Entries)-1].Sequence
			}
			if !slices.Equal(fwd, want) {
				t.Fatalf("query %d limit %d forward: %d matches, want %d\n got %v\nwant %v", qi, limit, len(fwd), len(want), fwd, want)
			}
			var bwd []uint64
			q.After, q.Backward = 0, true
			for {
				p, err := s.Search("1", TopicFunds, q)
				if err != nil {
					t.Fatal(err)
				}
				page := make([]uint64, 0, len(p.Entries))
				for _, e := range p.Entries {
					page = append(page, e.Sequence)
				}
				if !slices.IsSorted(page) {
					t.Fatalf("query %d: backward page out of order %v", qi, page)
				}
				bwd = append(page, bwd...)
				if !p.HasMore {
					break
				}
				q.Before = p.Entries[0].Sequence
			}
			if !slices.Equal(bwd, want) {
				t.Fatalf("query %d limit %d backward: %d matches, want %d", qi, limit, len(bwd), len(want))
			}
		}
	}
	if _, err := s.Search("2", TopicFunds, SearchQuery{Limit: 1}); !errorsIsNotFound(err) {
		t.Fatalf("unknown ledger: %v", err)
	}
	if _, err := s.Search("1", "nope", SearchQuery{Limit: 1}); fieldOf(err) != "topic" {
		t.Fatalf("bad topic: %v", err)
	}
}

// BenchmarkSearchByReference finds the few entries of one reference in
// ledgers of 10 000 and 1 000 000 entries: the time per search stays about
// the same (O(matches), not O(ledger)). The 1M ledger takes about a minute
// to build; run with -bench SearchByReference -benchtime 2000x.
func BenchmarkSearchByReference(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			s := openTestStore(b, Options{Now: func() time.Time { return time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC) }, noSync: true})
			rng := rand.New(rand.NewPCG(1, 2))
			all := searchLedger(b, s, "1", n, time.Minute, rng)
			// A reference that has 3 matches, whatever the ledger size.
			ref := "bench-order"
			for i := range 3 {
				if _, err := s.Append(context.Background(), "1", TopicFunds, []EntryInput{{
					EntryID: fmt.Sprintf("bench-%d", i), PSPReference: "bench", Time: all[len(all)-1].Time,
					EntryType: "capture", Reference: ref, Amount: 1,
				}}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				p, err := s.Search("1", TopicFunds, SearchQuery{Reference: ref, Limit: 100})
				if err != nil || len(p.Entries) != 3 {
					b.Fatalf("%d matches, %v", len(p.Entries), err)
				}
			}
		})
	}
}
