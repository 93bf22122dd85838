package ledger

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// ExportLedger returns the ledger as stored, each move of its open date
// with its time, and its seals with when they were stored and their
// summaries; it changes nothing.
func TestStore_ExportLedger(t *testing.T) {
	ctx := context.Background()
	clock := newClock(time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	s := openTestStore(t, Options{Now: clock.Now})
	mustPutLedger(t, s, "302321", "NOK", "Europe/Oslo", "")
	if _, err := s.ExportLedger("302399"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown ledger: %v", err)
	}
	ex, err := s.ExportLedger("302321")
	if err != nil || ex.HasEntries || ex.Closes != nil || ex.Seals != nil || ex.Ledger.ID != "302321" {
		t.Fatalf("empty ledger: %+v %v", ex, err)
	}

	for i, at := range []string{"2026-03-01T08:00:00Z", "2026-03-02T08:00:00Z", "2026-03-04T08:00:00Z"} {
		tm, _ := time.Parse(time.RFC3339, at)
		in := []EntryInput{{EntryID: "e" + at, PSPReference: "p", Time: tm, EntryType: "capture", Reference: "r", Amount: int64(10 * (i + 1))}}
		if _, err := s.Append(ctx, "302321", TopicFunds, in); err != nil {
			t.Fatal(err)
		}
		clock.Add(time.Minute + time.Microsecond/3)
	}
	if _, err := s.CloseDate(ctx, "302321", mustDate(t, "2026-03-04")); err != nil {
		t.Fatal(err)
	}
	work, err := s.Unsealed("302321", 2)
	if err != nil || len(work.Dates) != 2 {
		t.Fatalf("unsealed: %+v %v", work, err)
	}
	clock.Add(time.Hour)
	var seals []Seal
	for _, d := range work.Dates {
		seals = append(seals, Seal{Date: d.Date, Seal: "jws-" + d.Date.String(), Funds: d.Funds, Fees: d.Fees})
	}
	if err := s.PutSeals(ctx, "302321", "", seals); err != nil {
		t.Fatal(err)
	}

	ex, err = s.ExportLedger("302321")
	if err != nil {
		t.Fatal(err)
	}
	l, _ := s.GetLedger("302321")
	if !reflect.DeepEqual(ex.Ledger, l) || !ex.HasEntries {
		t.Errorf("ledger %+v (has entries %v), want %+v", ex.Ledger, ex.HasEntries, l)
	}
	// Each move, and ClosedAt of every closed date follows from them.
	var opens []Date
	for _, c := range ex.Closes {
		opens = append(opens, c.OpenDate)
		if c.At.Location() != time.UTC || c.At.Nanosecond()%1000 != 0 {
			t.Errorf("close time %v: want UTC microseconds", c.At)
		}
	}
	if want := []Date{mustDate(t, "2026-03-02"), mustDate(t, "2026-03-04"), mustDate(t, "2026-03-05")}; !reflect.DeepEqual(opens, want) {
		t.Errorf("close moves to %v, want %v", opens, want)
	}
	for d := mustDate(t, "2026-03-01"); d < l.OpenDate; d++ {
		at, ok, err := s.ClosedAt("302321", d)
		i := 0
		for i < len(ex.Closes) && ex.Closes[i].OpenDate <= d {
			i++
		}
		if err != nil || !ok || i == len(ex.Closes) || !at.Equal(ex.Closes[i].At) {
			t.Errorf("ClosedAt(%s) = %v %v %v; the exported moves say %+v", d, at, ok, err, ex.Closes)
		}
	}
	if len(ex.Seals) != 2 {
		t.Fatalf("seals: %+v", ex.Seals)
	}
	for i, sl := range ex.Seals {
		w := work.Dates[i]
		if sl.Date != w.Date || sl.Seal != "jws-"+w.Date.String() || !sl.SealedAt.Equal(clock.Now()) ||
			!reflect.DeepEqual(sl.Funds, w.Funds) || !reflect.DeepEqual(sl.Fees, w.Fees) {
			t.Errorf("seal %d: %+v, want date %s sealed at %v with %+v", i, sl, w.Date, clock.Now(), w)
		}
	}
	// The export is a copy: changing it changes nothing stored.
	ex.Ledger.SettlesForRecipientHandles = append(ex.Ledger.SettlesForRecipientHandles, "x")
	if l2, _ := s.GetLedger("302321"); !reflect.DeepEqual(l2, l) {
		t.Errorf("the stored ledger changed with the export")
	}
}
