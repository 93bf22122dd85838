package pgstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// TestAppend_Dates: entries take the date of their time in the ledger's zone
// and cutoff (Oslo, 04:00, across the spring DST change, when 04:00 local is
// 02:00Z instead of 03:00Z), never a closed one; a payout closes its date;
// naming a closed date is refused; closed dates' ranges never change.
func TestAppend_Dates(t *testing.T) {
	ctx := context.Background()
	clock := newClock(utc("2026-03-31T12:00:00Z"))
	s := openPG(t, pgtest.Start(t), Options{Now: clock.Now})
	if _, _, err := s.PutLedger(ctx, ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo", Cutoff: "04:00"}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		id, time, date string // date "" = derived
		typ            string
		want           string // the entry's date, or "closed" for a refusal
		open           string // the ledger's open date afterwards
	}{
		{"1", "2026-03-28T02:59:59Z", "", "capture", "2026-03-27", "2026-03-27"}, // 03:59 CET
		{"2", "2026-03-28T03:00:00Z", "", "capture", "2026-03-28", "2026-03-28"}, // 04:00 CET
		{"3", "2026-03-29T01:59:59Z", "", "capture", "2026-03-28", "2026-03-28"}, // 03:59 CEST
		{"4", "2026-03-27T12:00:00Z", "", "capture", "2026-03-28", "2026-03-28"}, // late: the open date
		{"5", "2026-03-29T02:00:00Z", "", "capture", "2026-03-29", "2026-03-29"}, // 04:00 CEST
		{"6", "2026-03-29T03:00:00Z", "2026-03-28", "capture", "closed", "2026-03-29"},
		{"7", "2026-03-29T04:00:00Z", "", "payout-scheduled", "2026-03-29", "2026-03-30"},
		{"8", "2026-03-29T05:00:00Z", "", "capture", "2026-03-30", "2026-03-30"},
		{"9", "2026-03-30T05:00:00Z", "2026-03-31", "capture", "2026-03-31", "2026-03-31"},
	}
	for _, st := range steps {
		in := capture(st.id, 10, utc(st.time))
		in.EntryType = st.typ
		if st.date != "" {
			in.LedgerDate = mustDate(t, st.date)
		}
		res, err := s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{in})
		if st.want == "closed" {
			if !errors.Is(err, ledger.ErrConflict) {
				t.Fatalf("entry %s: %v, want a closed-date conflict", st.id, err)
			}
		} else {
			if err != nil {
				t.Fatalf("entry %s: %v", st.id, err)
			}
			es, _ := s.Entries("302321", ledger.TopicFunds, res.FirstSequence, 1, ledger.ReadOptions{})
			if got := es[0].LedgerDate.String(); got != st.want {
				t.Fatalf("entry %s at %s: date %s, want %s", st.id, st.time, got, st.want)
			}
		}
		if l, _ := s.GetLedger("302321"); l.OpenDate.String() != st.open {
			t.Fatalf("after entry %s: open date %s, want %s", st.id, l.OpenDate, st.open)
		}
	}
	for _, r := range []struct {
		date        string
		first, last uint64
		ok          bool
	}{{"2026-03-27", 1, 1, true}, {"2026-03-28", 2, 4, true}, {"2026-03-29", 5, 6, true}, {"2026-03-30", 7, 7, true}, {"2026-03-31", 8, 8, true}, {"2026-04-01", 0, 0, false}} {
		f, l, ok, err := s.DateRange("302321", ledger.TopicFunds, mustDate(t, r.date))
		if err != nil || f != r.first || l != r.last || ok != r.ok {
			t.Fatalf("date %s: %d-%d %v %v, want %d-%d %v", r.date, f, l, ok, err, r.first, r.last, r.ok)
		}
	}
	// CloseDate: not before its start; idempotent; CloseDue after the grace.
	if _, err := s.CloseDate(ctx, "302321", mustDate(t, "2026-04-02")); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("closing a date that has not begun: %v", err)
	}
	if open, err := s.CloseDate(ctx, "302321", mustDate(t, "2026-03-20")); err != nil || open.String() != "2026-03-31" {
		t.Fatalf("closing a closed date: %s %v", open, err)
	}
	clock.Add(48 * time.Hour) // 2026-04-02T12:00Z: 2026-04-01 ended 02:00Z, + 1 h grace
	if err := s.CloseDue(ctx); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.GetLedger("302321"); l.OpenDate.String() != "2026-04-02" {
		t.Fatalf("after CloseDue: open date %s", l.OpenDate)
	}
}
