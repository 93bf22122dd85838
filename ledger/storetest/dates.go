package storetest

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// The date tables: dates of entries at and around cutoffs in zones with
// daylight-saving changes, closing by time, by payout, by naming a later
// date and by CloseDate, and when each date closed.

// testCutoffInstant checks dates of stored entries at and around
// a 04:00 cutoff on the day Oslo moves its clocks forward.
func testCutoffInstant(t *testing.T, h Harness) {
	s, _ := openAt(t, h, utc("2026-04-01T00:00:00Z"))
	mustPutLedger(t, s, "1001", "NOK", "Europe/Oslo", "04:00")
	ctx := context.Background()
	in := []ledger.EntryInput{
		{EntryID: "a", PSPReference: "p", Time: utc("2026-03-29T01:59:59.999999Z"), EntryType: "capture", Amount: 100},
		{EntryID: "b", PSPReference: "p", Time: utc("2026-03-29T02:00:00Z"), EntryType: "capture", Amount: 100}, // 04:00 CEST exactly
		{EntryID: "c", PSPReference: "p", Time: utc("2026-03-30T01:59:59.999999Z"), EntryType: "capture", Amount: 100},
		{EntryID: "d", PSPReference: "p", Time: utc("2026-03-30T02:00:00Z"), EntryType: "capture", Amount: 100},
	}
	if _, err := s.Append(ctx, "1001", ledger.TopicFunds, in); err != nil {
		t.Fatal(err)
	}
	es, err := s.Entries("1001", ledger.TopicFunds, 1, 10, ledger.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2026-03-28", "2026-03-29", "2026-03-29", "2026-03-30"}
	for i, e := range es {
		if e.LedgerDate.String() != want[i] {
			t.Errorf("entry %s at %s: date %s, want %s", e.EntryID, e.Time, e.LedgerDate, want[i])
		}
	}
	if h, _ := s.Head("1001", ledger.TopicFees); h.OpenDate.String() != "2026-03-30" {
		t.Errorf("open date %s, want 2026-03-30 (ledger-wide)", h.OpenDate)
	}
	// An entry whose time falls in a closed date lands on the open date.
	late := ledger.EntryInput{EntryID: "e", PSPReference: "p", Time: utc("2026-03-28T12:00:00Z"), EntryType: "capture", Amount: 1}
	if _, err := s.Append(ctx, "1001", ledger.TopicFees, []ledger.EntryInput{late}); err != nil {
		t.Fatal(err)
	}
	if es, _ := s.Entries("1001", ledger.TopicFees, 1, 1, ledger.ReadOptions{}); es[0].LedgerDate.String() != "2026-03-30" {
		t.Errorf("late entry dated %s, want the open date 2026-03-30", es[0].LedgerDate)
	}
}

func testCloseDue(t *testing.T, h Harness) {
	clock := NewClock(utc("2026-10-25T10:00:00Z"))
	s := h.New(t).Open(t, Options{Now: clock.Now, Grace: time.Hour})
	mustPutLedger(t, s, "1002", "NOK", "Europe/Oslo", "00:00")
	ctx := context.Background()
	if _, err := s.Append(ctx, "1002", ledger.TopicFunds, []ledger.EntryInput{{EntryID: "a", PSPReference: "p", Time: clock.Now(), EntryType: "capture", Amount: 1}}); err != nil {
		t.Fatal(err)
	}
	// 2026-10-25 (a 25 h date) ends at 2026-10-25T23:00Z; with 1 h grace it
	// closes at 2026-10-26T00:00Z, not before.
	for _, tc := range []struct {
		now  string
		open string
	}{
		{"2026-10-25T23:59:59Z", "2026-10-25"},
		{"2026-10-26T00:00:00Z", "2026-10-26"},
		{"2026-10-29T12:00:00Z", "2026-10-29"},
	} {
		clock.Set(utc(tc.now))
		if err := s.CloseDue(ctx); err != nil {
			t.Fatal(err)
		}
		if h, _ := s.Head("1002", ledger.TopicFunds); h.OpenDate.String() != tc.open {
			t.Errorf("at %s open date %s, want %s", tc.now, h.OpenDate, tc.open)
		}
	}
}

func testDatesAndPayout(t *testing.T, h Harness) {
	s, _ := openAt(t, h, utc("2026-03-10T12:00:00Z"))
	ctx := context.Background()
	mustPutLedger(t, s, "1", "NOK", "Europe/Oslo", "")
	e := func(id, typ string, amount int64, date string) ledger.EntryInput {
		in := ledger.EntryInput{EntryID: id, PSPReference: "p-" + id, Time: utc("2026-03-08T10:00:00Z"), EntryType: typ, Amount: amount}
		if date != "" {
			in.LedgerDate = mustDate(t, date)
		}
		return in
	}
	if _, err := s.Append(ctx, "1", ledger.TopicFunds, []ledger.EntryInput{e("a", "capture", 500, ""), e("b", "scheduled-for-payout", -500, "")}); err != nil {
		t.Fatal(err)
	}
	// The payout closed 2026-03-08.
	if _, err := s.Append(ctx, "1", ledger.TopicFees, []ledger.EntryInput{e("c", "capture-fee", -5, "2026-03-08")}); !errors.Is(err, ledger.ErrConflict) || !strings.Contains(err.Error(), "open date is 2026-03-09") {
		t.Fatalf("closed date: %v", err)
	}
	// Naming a later date closes the dates before it.
	if _, err := s.Append(ctx, "1", ledger.TopicFees, []ledger.EntryInput{e("c", "capture-fee", -5, "2026-03-10")}); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.Head("1", ledger.TopicFunds); h.OpenDate.String() != "2026-03-10" {
		t.Fatalf("open date %s", h.OpenDate)
	}
	// A date that has not begun can be neither named nor closed.
	if _, err := s.Append(ctx, "1", ledger.TopicFees, []ledger.EntryInput{e("d", "capture-fee", -5, "2026-03-12")}); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("future date: %v", err)
	}
	if _, err := s.CloseDate(ctx, "1", mustDate(t, "2026-03-12")); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("close future date: %v", err)
	}
	if open, err := s.CloseDate(ctx, "1", mustDate(t, "2026-03-10")); err != nil || open.String() != "2026-03-11" {
		t.Fatalf("close: %s %v", open, err)
	}
	first, last, ok, err := s.DateRange("1", ledger.TopicFunds, mustDate(t, "2026-03-08"))
	if err != nil || !ok || first != 1 || last != 2 {
		t.Fatalf("date range: %d %d %v %v", first, last, ok, err)
	}
	// Overflow is refused, never wrapped.
	big := e("o1", "capture", math.MaxInt64, "")
	if _, err := s.Append(ctx, "1", ledger.TopicFunds, []ledger.EntryInput{big, e("o2", "capture", 1, "")}); !errors.Is(err, ledger.ErrConflict) || !strings.Contains(err.Error(), "overflow") {
		t.Fatalf("overflow: %v", err)
	}
}

// testClosedAt: each date records when it closed: by a later date's entry,
// by CloseDate, and several at once when the open date jumps; the open date
// has no close time, and the manifest carries the same times.
func testClosedAt(t *testing.T, h Harness) {
	s, clock := openAt(t, h, time.Date(2024, 5, 3, 12, 0, 0, 0, time.UTC))
	mustPutLedger(t, s, "302321", "NOK", "UTC", "")
	ctx := context.Background()
	add := func(id string, at time.Time) {
		t.Helper()
		if _, err := s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{{EntryID: id, PSPReference: id, Time: at, EntryType: "capture", Amount: 100}}); err != nil {
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
	for d, want := range map[ledger.Date]time.Time{d1: t1, d2: t2, d2 + 1: t2, d2 + 2: t2} {
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
