package feed

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

func TestReader_Feed(t *testing.T) {
	s := openTestStore(t)
	mustPutLedger(t, s, "1")
	r := NewReader(s)
	p, err := r.Feed("1", ledger.TopicFunds, 1, 10, ledger.ReadOptions{})
	if err != nil || !p.TryLater || p.Next != 1 || len(p.Entries) != 0 {
		t.Fatalf("empty log: %+v, %v", p, err)
	}
	mustAppend(t, s, "1", ledger.TopicFunds, "2024-01-01", 5)
	p, err = r.Feed("1", ledger.TopicFunds, 1, 3, ledger.ReadOptions{})
	if err != nil || p.TryLater || p.Next != 4 || len(p.Entries) != 3 {
		t.Fatalf("first page: %+v, %v", p, err)
	}
	p, err = r.Feed("1", ledger.TopicFunds, 4, 3, ledger.ReadOptions{})
	if err != nil || p.TryLater || p.Next != 6 || len(p.Entries) != 2 {
		t.Fatalf("second page: %+v, %v", p, err)
	}
	p, err = r.Feed("1", ledger.TopicFunds, 6, 3, ledger.ReadOptions{})
	if err != nil || !p.TryLater || p.Next != 6 {
		t.Fatalf("end: %+v, %v", p, err)
	}
	if _, err := r.Feed("nope", ledger.TopicFunds, 1, 3, ledger.ReadOptions{}); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("unknown ledger: %v", err)
	}
}

func TestReader_WaitFeed(t *testing.T) {
	s := openTestStore(t)
	mustPutLedger(t, s, "1")
	r := NewReader(s)
	go func() {
		time.Sleep(100 * time.Millisecond)
		mustAppend(t, s, "1", ledger.TopicFunds, "2024-01-01", 1)
	}()
	start := time.Now()
	p, err := r.WaitFeed(context.Background(), "1", ledger.TopicFunds, 1, 10, ledger.ReadOptions{}, 30*time.Second, nil)
	if err != nil || len(p.Entries) != 1 || time.Since(start) > 10*time.Second {
		t.Fatalf("WaitFeed: %+v, %v after %v", p, err, time.Since(start))
	}
	// The wait ends: the empty page.
	p, err = r.WaitFeed(context.Background(), "1", ledger.TopicFunds, 2, 10, ledger.ReadOptions{}, 50*time.Millisecond, nil)
	if err != nil || !p.TryLater || p.Next != 2 {
		t.Fatalf("WaitFeed timeout: %+v, %v", p, err)
	}
	// stop ends it too.
	stop := make(chan struct{})
	close(stop)
	p, err = r.WaitFeed(context.Background(), "1", ledger.TopicFunds, 2, 10, ledger.ReadOptions{}, time.Minute, stop)
	if err != nil || !p.TryLater {
		t.Fatalf("WaitFeed stopped: %+v, %v", p, err)
	}
}

func TestReader_Date(t *testing.T) {
	s := openTestStore(t)
	mustPutLedger(t, s, "1")
	r := NewReader(s)
	d1, d2, d3, d4 := mustDate(t, "2024-01-01"), mustDate(t, "2024-01-02"), mustDate(t, "2024-01-03"), mustDate(t, "2024-01-04")

	// A ledger that has not begun: every date is still to come.
	p, err := r.Date("1", ledger.TopicFunds, d1, 0, 10, ledger.ReadOptions{})
	if err != nil || !p.TryLater || p.HasMore || len(p.Entries) != 0 {
		t.Fatalf("not begun: %+v, %v", p, err)
	}
	mustAppend(t, s, "1", ledger.TopicFunds, "2024-01-01", 5)
	mustAppend(t, s, "1", ledger.TopicFunds, "2024-01-03", 2) // closes 01 and 02

	// Closed date, paged.
	p, err = r.Date("1", ledger.TopicFunds, d1, 0, 2, ledger.ReadOptions{})
	if err != nil || p.TryLater || !p.HasMore || p.Next != 3 || len(p.Entries) != 2 {
		t.Fatalf("closed, page 1: %+v, %v", p, err)
	}
	p, err = r.Date("1", ledger.TopicFunds, d1, 5, 2, ledger.ReadOptions{})
	if err != nil || p.TryLater || p.HasMore || len(p.Entries) != 1 || p.Entries[0].Sequence != 5 {
		t.Fatalf("closed, last page: %+v, %v", p, err)
	}
	// Closed and empty.
	p, err = r.Date("1", ledger.TopicFunds, d2, 0, 2, ledger.ReadOptions{})
	if err != nil || p.TryLater || p.HasMore || len(p.Entries) != 0 {
		t.Fatalf("closed empty: %+v, %v", p, err)
	}
	// Open: what it has, tryLater.
	p, err = r.Date("1", ledger.TopicFunds, d3, 0, 10, ledger.ReadOptions{})
	if err != nil || !p.TryLater || p.HasMore || len(p.Entries) != 2 {
		t.Fatalf("open: %+v, %v", p, err)
	}
	// Future.
	p, err = r.Date("1", ledger.TopicFunds, d4, 0, 10, ledger.ReadOptions{})
	if err != nil || !p.TryLater || p.HasMore || len(p.Entries) != 0 {
		t.Fatalf("future: %+v, %v", p, err)
	}
	// A position outside the date's run is refused.
	if _, err := r.Date("1", ledger.TopicFunds, d1, 7, 10, ledger.ReadOptions{}); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("position outside the run: %v", err)
	}
}

func TestReader_Start(t *testing.T) {
	s := openTestStore(t)
	mustPutLedger(t, s, "1")
	r := NewReader(s)
	mustAppend(t, s, "1", ledger.TopicFunds, "2024-01-02", 2)
	mustAppend(t, s, "1", ledger.TopicFunds, "2024-01-04", 3)
	for _, tc := range []struct {
		now  bool
		date string
		want uint64
	}{
		{false, "", 1}, {true, "", 6},
		{false, "2024-01-01", 1}, {false, "2024-01-02", 1}, {false, "2024-01-03", 3},
		{false, "2024-01-04", 3}, {false, "2024-01-05", 6},
	} {
		var d ledger.Date
		if tc.date != "" {
			d = mustDate(t, tc.date)
		}
		got, err := r.Start("1", ledger.TopicFunds, tc.now, d)
		if err != nil || got != tc.want {
			t.Errorf("Start(now=%v, %q) = %d, %v; want %d", tc.now, tc.date, got, err, tc.want)
		}
	}
}

func TestReader_Follow(t *testing.T) {
	s := openTestStore(t)
	mustPutLedger(t, s, "1")
	r := NewReader(s)
	mustAppend(t, s, "1", ledger.TopicFunds, "2024-01-01", 5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pages := make(chan Page, 100)
	beats := make(chan uint64, 100)
	done := make(chan error, 1)
	go func() {
		done <- r.Follow(ctx, "1", ledger.TopicFunds, 1, 2, ledger.ReadOptions{}, 200*time.Millisecond, nil,
			func(p Page) error { pages <- p; return nil },
			func(next uint64) error { beats <- next; return nil })
	}()
	var seqs []uint64
	for len(seqs) < 5 {
		p := <-pages
		for _, e := range p.Entries {
			seqs = append(seqs, e.Sequence)
		}
	}
	if next := <-beats; next != 6 {
		t.Fatalf("heartbeat at %d, want 6", next)
	}
	mustAppend(t, s, "1", ledger.TopicFunds, "2024-01-01", 1)
	if p := <-pages; len(p.Entries) != 1 || p.Entries[0].Sequence != 6 || p.Next != 7 || !p.TryLater {
		t.Fatalf("pushed page: %+v", p)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow ended with %v", err)
	}
}
