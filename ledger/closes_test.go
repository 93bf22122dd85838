package ledger

import (
	"context"
	"testing"
	"time"
)

// Each date records when it closed: by a later date's entry, by CloseDate,
// and several at once when the open date jumps; the open date has no close
// time, and the manifest carries the same times.
func TestClosedAt(t *testing.T) {
	clock := newClock(time.Date(2024, 5, 3, 12, 0, 0, 0, time.UTC))
	s := openTestStore(t, Options{Now: clock.Now})
	mustPutLedger(t, s, "302321", "NOK", "UTC", "")
	ctx := context.Background()
	add := func(id string, at time.Time) {
		t.Helper()
		if _, err := s.Append(ctx, "302321", TopicFunds, []EntryInput{{EntryID: id, PSPReference: id, Time: at, EntryType: "capture", Amount: 100}}); err != nil {
			t.Fatal(err)
		}
	}
	d1, d2, d5 := mustDate(t, "2024-05-01"), mustDate(t, "2024-05-02"), mustDate(t, "2024-05-05")

	add("a", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	if _, ok, err := s.ClosedAt("302321", d1); err != nil || ok {
		t.Fatalf("open date: ok=%v err=%v", ok, err)
	}
	t1 := clock.Now()
	add("b", time.Date(2024, 5, 2, 10, 0, 0, 0, time.UTC)) // closes 05-01
	clock.Add(time.Hour)
	// Closing 05-04 closes 05-02, 05-03 and 05-04 at once.
	clock.Set(time.Date(2024, 5, 5, 9, 0, 0, 0, time.UTC))
	t2 := clock.Now()
	if _, err := s.CloseDate(ctx, "302321", mustDate(t, "2024-05-04")); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[Date]time.Time{d1: t1, d2: t2, d2 + 1: t2, d2 + 2: t2} {
		got, ok, err := s.ClosedAt("302321", d)
		if err != nil || !ok || !got.Equal(want) {
			t.Errorf("ClosedAt(%s) = %v %v %v, want %v", d, got, ok, err, want)
		}
	}
	if _, ok, _ := s.ClosedAt("302321", d5); ok {
		t.Error("the open date has a close time")
	}
	m, err := s.Manifest("302321", d1, d5)
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range m {
		want, ok, _ := s.ClosedAt("302321", ds.Date)
		if ok != ds.Closed || !ds.ClosedAt.Equal(want) {
			t.Errorf("manifest %s: closed %v at %v, want %v at %v", ds.Date, ds.Closed, ds.ClosedAt, ok, want)
		}
	}
}
