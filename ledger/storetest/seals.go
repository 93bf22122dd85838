package storetest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Seals and the date manifest: summaries of dates across the DST change,
// ranges, sealing in order and every refused variant, GDPR erasure.

// manifestLedger makes a ledger in Europe/Oslo with cutoff 04:00 and entries
// on both topics over six dates around the spring DST change (2026-03-29),
// with one empty date (2026-03-28) between, and closes every date before
// 2026-03-31. It returns the store.
func manifestLedger(t *testing.T, h Harness) ledger.Backend {
	t.Helper()
	s, _ := openAt(t, h, time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC))
	ctx := context.Background()
	mustPutLedger(t, s, "302321", "NOK", "Europe/Oslo", "04:00")
	types := []string{"capture", "refund", "capture", "correction"}
	n := 0
	for _, day := range []string{"2026-03-26", "2026-03-27", "2026-03-29", "2026-03-30", "2026-03-31"} {
		d := mustDate(t, day)
		for _, topic := range ledger.Topics {
			if topic == ledger.TopicFees && day == "2026-03-27" {
				continue // fees have an empty date the funds do not
			}
			var batch []ledger.EntryInput
			for i := range 5 {
				n++
				amt := int64(1000 + 37*n)
				if types[i%len(types)] == "refund" {
					amt = -amt / 3
				}
				batch = append(batch, ledger.EntryInput{
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

func testManifest(t *testing.T, h Harness) {
	s := manifestLedger(t, h)
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
	for _, topic := range ledger.Topics {
		all, err := s.Entries("302321", topic, 1, 1000, ledger.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		prev := ledger.TopicSummary{}
		for _, d := range days {
			got := *d.Topic(topic)
			want := ledger.TopicSummary{OpeningBalance: prev.ClosingBalance, ClosingBalance: prev.ClosingBalance, Digest: prev.Digest}
			sums := map[string]*ledger.EntryTypeSum{}
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
					sums[e.EntryType] = &ledger.EntryTypeSum{EntryType: e.EntryType}
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

func testManifestRange(t *testing.T, h Harness) {
	s := manifestLedger(t, h)
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
		var from, to ledger.Date
		if tt.from != "" {
			from = mustDate(t, tt.from)
		}
		if tt.to != "" {
			to = mustDate(t, tt.to)
		}
		days, err := s.Manifest("302321", from, to)
		if tt.field != "" {
			if fe := (*ledger.FieldError)(nil); !errors.As(err, &fe) || fe.Field != tt.field {
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
	if _, err := s.Manifest("nope", 0, 0); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("unknown ledger: %v", err)
	}
}

func testPutSeals(t *testing.T, h Harness) {
	s := manifestLedger(t, h)
	ctx := context.Background()
	w, err := s.Unsealed("302321", 2)
	if err != nil {
		t.Fatal(err)
	}
	// The first sealed date is the first with an entry; at most 2 asked for.
	if w.PrevSeal != "" || len(w.Dates) != 2 || w.Dates[0].Date.String() != "2026-03-26" || w.Dates[1].Date.String() != "2026-03-27" {
		t.Fatalf("unsealed: prev %q, %d dates from %v", w.PrevSeal, len(w.Dates), w.Dates[0].Date)
	}
	d26, d27, d28 := w.Dates[0], w.Dates[1], mustDate(t, "2026-03-28")
	put := func(prev string, ss ...ledger.Seal) error { return s.PutSeals(ctx, "302321", prev, ss) }
	seal := func(d ledger.DateSummary, jws string) ledger.Seal {
		return ledger.Seal{Date: d.Date, Seal: jws, Funds: d.Funds, Fees: d.Fees}
	}

	refused := []struct {
		name string
		prev string
		ss   []ledger.Seal
	}{
		{"skips the first date", "", []ledger.Seal{seal(d27, "s27")}},
		{"chains to a seal that does not exist", "s25", []ledger.Seal{seal(d26, "s26")}},
		{"not consecutive", "", []ledger.Seal{seal(d26, "s26"), {Date: d28, Seal: "s28"}}},
		{"open date", "", []ledger.Seal{seal(d26, "s26"), seal(d27, "s27"), {Date: d28, Seal: "s28"}, {Date: d28 + 1, Seal: "s29"}, {Date: d28 + 2, Seal: "s30"}, {Date: d28 + 3, Seal: "s31"}}},
	}
	for _, tt := range refused {
		if err := put(tt.prev, tt.ss...); !errors.Is(err, ledger.ErrConflict) {
			t.Errorf("%s: %v, want conflict", tt.name, err)
		}
	}
	if got, _ := s.SealOf("302321", d26.Date); got != "" {
		t.Fatalf("a refused batch stored %q", got)
	}
	if err := put("", seal(d26, "s26")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		prev string
		ss   []ledger.Seal
	}{
		{"overwrite", "", []ledger.Seal{seal(d26, "other")}},
		{"wrong previous seal", "other", []ledger.Seal{seal(d27, "s27")}},
		{"skips a date", "s26", []ledger.Seal{{Date: d28, Seal: "s28"}}},
	} {
		if err := put(tt.prev, tt.ss...); !errors.Is(err, ledger.ErrConflict) {
			t.Errorf("%s: %v, want conflict", tt.name, err)
		}
	}
	if got, _ := s.SealOf("302321", d26.Date); got != "s26" {
		t.Fatalf("seal of %s: %q", d26.Date, got)
	}
	w, _ = s.Unsealed("302321", 100)
	if w.PrevSeal != "s26" || w.PrevDate != d26.Date || len(w.Dates) != 4 || w.Dates[0].Date != d27.Date {
		t.Fatalf("after one seal: prev %q %v, %d dates", w.PrevSeal, w.PrevDate, len(w.Dates))
	}
	sealDates(t, s, "302321")
	if w, _ := s.Unsealed("302321", 100); len(w.Dates) != 0 {
		t.Fatalf("still unsealed: %d", len(w.Dates))
	}

	// The manifest answers sealed dates from their seal records: the same
	// summaries as summed from the entries, plus the seal; not the open date.
	days, err := s.Manifest("302321", mustDate(t, "2026-03-26"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range days {
		if (d.Seal != "") != d.Closed || d.Closed && d.SealedAt.IsZero() {
			t.Errorf("%s closed %v seal %q", d.Date, d.Closed, d.Seal)
		}
	}
	if days[0].Seal != "s26" || !reflect.DeepEqual(days[0].Funds, d26.Funds) || !reflect.DeepEqual(days[1].Fees, d27.Fees) {
		t.Errorf("sealed summaries differ from the summed ones")
	}
}

// testManifestGDPRErasure: erasing GDPR fields changes no digest and no stored summary.
func testManifestGDPRErasure(t *testing.T, h Harness) {
	s := manifestLedger(t, h)
	sealDates(t, s, "302321")
	before, err := s.Manifest("302321", mustDate(t, "2026-03-26"), 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.EraseGDPR(context.Background(), "302321", ledger.Erasure{Reference: "order-3"})
	if err != nil || n == 0 {
		t.Fatalf("erase: %d %v", n, err)
	}
	after, err := s.Manifest("302321", mustDate(t, "2026-03-26"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatal("the manifest changed with a GDPR erasure")
	}
	// The open date is summed live from the entries: its digest is the hash
	// of its last entry, which erasure does not touch.
	es, _ := s.Entries("302321", ledger.TopicFunds, 1, 1000, ledger.ReadOptions{})
	if got, want := after[len(after)-1].Funds.Digest, fmt.Sprintf("%x", es[len(es)-1].Hash); got != want {
		t.Fatalf("open date digest %s, want %s", got, want)
	}
}

// sealDates seals every unsealed closed date of ledger id, one date per
// PutSeals call, with made-up seals ("seal:<date>:<prev>") as the server's
// sealer would with a JWS.
func sealDates(t *testing.T, s ledger.Seals, id string) {
	t.Helper()
	for {
		w, err := s.Unsealed(id, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(w.Dates) == 0 {
			return
		}
		d := w.Dates[0]
		next := ledger.Seal{Date: d.Date, Seal: fmt.Sprintf("seal:%s:%s", d.Date, w.PrevSeal), Funds: d.Funds, Fees: d.Fees}
		if err := s.PutSeals(context.Background(), id, w.PrevSeal, []ledger.Seal{next}); err != nil {
			t.Fatal(err)
		}
	}
}
