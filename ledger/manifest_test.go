package ledger

import (
	"context"
	"encoding/hex"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// manifestLedger makes a ledger in Europe/Oslo with cutoff 04:00 and entries
// on both topics over six dates around the spring DST change (2026-03-29),
// with one empty date (2026-03-28) between, and closes every date before
// 2026-03-31. It returns the store.
func manifestLedger(t *testing.T) *Store {
	t.Helper()
	clock := newClock(time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC))
	s := openTestStore(t, Options{Now: clock.Now, noSync: true})
	ctx := context.Background()
	mustPutLedger(t, s, "302321", "NOK", "Europe/Oslo", "04:00")
	types := []string{"capture", "refund", "capture", "correction"}
	n := 0
	for _, day := range []string{"2026-03-26", "2026-03-27", "2026-03-29", "2026-03-30", "2026-03-31"} {
		d := mustDate(t, day)
		for _, topic := range Topics {
			if topic == TopicFees && day == "2026-03-27" {
				continue // fees have an empty date the funds do not
			}
			var batch []EntryInput
			for i := range 5 {
				n++
				amt := int64(1000 + 37*n)
				if types[i%len(types)] == "refund" {
					amt = -amt / 3
				}
				batch = append(batch, EntryInput{
					EntryID: fmt.Sprintf("e%d", n), PSPReference: fmt.Sprintf("psp-%d", n), Time: time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC),
					LedgerDate: d, EntryType: types[i%len(types)], Reference: fmt.Sprintf("order-%d", n%7), Amount: amt,
					Name: "Kari", PhoneNumber: "+4791234567",
				})
			}
			if _, err := s.Append(ctx, "302321", topic, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s
}

func TestStore_Manifest(t *testing.T) {
	s := manifestLedger(t)
	days, err := s.Manifest("302321", mustDate(t, "2026-03-25"), mustDate(t, "2026-04-05"))
	if err != nil {
		t.Fatal(err)
	}
	// Dates after the open date (2026-03-31) are left out.
	if len(days) != 7 || days[0].Date.String() != "2026-03-25" || days[6].Date.String() != "2026-03-31" {
		t.Fatalf("dates: %d, %v … %v", len(days), days[0].Date, days[len(days)-1].Date)
	}
	for _, d := range days {
		if want := d.Date < mustDate(t, "2026-03-31"); d.Closed != want {
			t.Errorf("%s closed %v", d.Date, d.Closed)
		}
		hours := d.End.Sub(d.Start).Hours()
		switch d.Date.String() {
		case "2026-03-28": // 04:00 CET on the 28th to 04:00 CEST on the 29th
			if hours != 23 {
				t.Errorf("%s lasts %v h, want 23", d.Date, hours)
			}
		default:
			if hours != 24 {
				t.Errorf("%s lasts %v h, want 24", d.Date, hours)
			}
		}
		if d.Date.String() == "2026-03-30" && !d.Start.Equal(time.Date(2026, 3, 30, 2, 0, 0, 0, time.UTC)) {
			t.Errorf("2026-03-30 starts %v, want 02:00 UTC (04:00 CEST)", d.Start)
		}
	}
	// Each topic's summary agrees with its entries, read independently.
	for _, topic := range Topics {
		all, err := s.Entries("302321", topic, 1, 1000, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		prev := TopicSummary{}
		for _, d := range days {
			got := *d.Topic(topic)
			want := TopicSummary{OpeningBalance: prev.ClosingBalance, ClosingBalance: prev.ClosingBalance, Digest: prev.Digest}
			sums := map[string]*EntryTypeSum{}
			for _, e := range all {
				if e.LedgerDate != d.Date {
					continue
				}
				if want.EntryCount == 0 {
					want.FirstSequence, want.OpeningBalance = e.Sequence, e.BalanceBefore
				}
				want.EntryCount++
				want.LastSequence, want.ClosingBalance, want.Digest = e.Sequence, e.BalanceAfter, hex.EncodeToString(e.Hash[:])
				if sums[e.EntryType] == nil {
					sums[e.EntryType] = &EntryTypeSum{EntryType: e.EntryType}
				}
				sums[e.EntryType].Count++
				sums[e.EntryType].Amount += e.Amount
			}
			for _, name := range []string{"capture", "correction", "refund"} {
				if s := sums[name]; s != nil {
					want.EntryTypes = append(want.EntryTypes, *s)
				}
			}
			if want.EntryCount == 0 {
				got.EntryTypes = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s:\n got %+v\nwant %+v", d.Date, topic, got, want)
			}
			prev = want
		}
	}
	if d := days[0]; d.Funds.Digest != "" || d.Funds.EntryCount != 0 {
		t.Errorf("date before the first entry: %+v", d.Funds)
	}
}

func TestStore_Manifest_Range(t *testing.T) {
	s := manifestLedger(t)
	tests := []struct {
		from, to string
		n        int
		field    string
	}{
		{"", "", 31, ""}, // the open date and 30 before
		{"2026-03-30", "", 2, ""},
		{"", "2026-03-29", 31, ""},
		{"2026-04-01", "2026-04-30", 0, ""},
		{"2026-03-29", "2026-03-28", 0, "fromLedgerDate"},
		{"2025-03-01", "2026-03-31", 0, "toLedgerDate"},
		{"2025-03-01", "", 0, "toLedgerDate"},
		{"2026-04-01", "", 0, ""}, // after the open date
	}
	for _, tt := range tests {
		var from, to Date
		if tt.from != "" {
			from = mustDate(t, tt.from)
		}
		if tt.to != "" {
			to = mustDate(t, tt.to)
		}
		days, err := s.Manifest("302321", from, to)
		if tt.field != "" {
			if fe := fieldOf(err); fe != tt.field {
				t.Errorf("%s–%s: error %v, want field %s", tt.from, tt.to, err, tt.field)
			}
			continue
		}
		if err != nil || len(days) != tt.n {
			t.Errorf("%s–%s: %d dates, %v; want %d", tt.from, tt.to, len(days), err, tt.n)
		}
	}
	// A ledger with no open date yet lists no dates.
	mustPutLedger(t, s, "empty", "NOK", "UTC", "")
	if days, err := s.Manifest("empty", 0, 0); err != nil || len(days) != 0 || days == nil {
		t.Errorf("empty ledger: %v %v", days, err)
	}
	if days, err := s.Manifest("empty", mustDate(t, "2026-01-01"), 0); err != nil || len(days) != 0 {
		t.Errorf("empty ledger from a date: %v %v", days, err)
	}
	if _, err := s.Manifest("nope", 0, 0); !errorsIsNotFound(err) {
		t.Errorf("unknown ledger: %v", err)
	}
}

func fieldOf(err error) string {
	if fe, ok := err.(*FieldError); ok {
		return fe.Field
	}
	return ""
}
