package pgstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// TestValidation_SameAsBolt feeds both stores the same bad ledgers and
// entries: each must refuse with the same field error and write nothing.
// Both run ledger's exported checks (Ledger.Validate, NormalizeBatch);
// this keeps it that way.
func TestValidation_SameAsBolt(t *testing.T) {
	ctx := context.Background()
	clock := newClock(utc("2026-06-10T12:00:00Z"))
	pg := openPG(t, pgtest.Start(t), Options{Now: clock.Now})
	bb := openBolt(t, ledger.Options{Now: clock.Now})
	good := ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"}
	badLedgers := map[string]func(l *ledger.Ledger){
		"id":         func(l *ledger.Ledger) { l.ID = "a/b" },
		"empty id":   func(l *ledger.Ledger) { l.ID = "" },
		"currency":   func(l *ledger.Ledger) { l.Currency = "XXX" },
		"zone":       func(l *ledger.Ledger) { l.TimeZone = "Mars/Olympus" },
		"no zone":    func(l *ledger.Ledger) { l.TimeZone = "" },
		"local zone": func(l *ledger.Ledger) { l.TimeZone = "Local" },
		"cutoff":     func(l *ledger.Ledger) { l.Cutoff = "25:00" },
		"account":    func(l *ledger.Ledger) { l.Owner = ledger.Account{Scheme: "business:NO:ORG"} },
		"handle":     func(l *ledger.Ledger) { l.SettlesForRecipientHandles = []string{"NO:1", "NO 2"} },
		"twice":      func(l *ledger.Ledger) { l.SettlesForRecipientHandles = []string{"NO:1", "NO:1"} },
		"unit name":  func(l *ledger.Ledger) { l.SalesUnits = []ledger.SalesUnit{{Name: "a\x01", RecipientHandle: "NO:1"}} },
		"unit":       func(l *ledger.Ledger) { l.SalesUnits = []ledger.SalesUnit{{Name: "shop"}} },
	}
	for name, mutate := range badLedgers {
		l := good
		mutate(&l)
		_, _, ea := pg.PutLedger(ctx, l)
		_, _, eb := bb.PutLedger(ctx, l)
		if ea == nil || errText(ea) != errText(eb) || !errors.Is(ea, ledger.ErrInvalid) {
			t.Errorf("ledger %s: postgres %v, bolt %v", name, ea, eb)
		}
	}
	if ls, _ := pg.ListLedgers("", 10); len(ls) != 0 {
		t.Fatalf("refused ledgers were stored: %v", ls)
	}
	for _, s := range []interface {
		PutLedger(context.Context, ledger.Ledger) (ledger.Ledger, bool, error)
	}{pg, bb} {
		if _, _, err := s.PutLedger(ctx, good); err != nil {
			t.Fatal(err)
		}
	}
	at := utc("2026-06-10T08:00:00Z")
	badEntries := map[string]func(e *ledger.EntryInput){
		"entryId":     func(e *ledger.EntryInput) { e.EntryID = "a b" },
		"long id":     func(e *ledger.EntryInput) { e.EntryID = strings.Repeat("x", 129) },
		"psp":         func(e *ledger.EntryInput) { e.PSPReference = "" },
		"psp text":    func(e *ledger.EntryInput) { e.PSPReference = "a\nb" },
		"no time":     func(e *ledger.EntryInput) { e.Time = time.Time{} },
		"old time":    func(e *ledger.EntryInput) { e.Time = utc("1970-01-01T10:00:00Z") },
		"future":      func(e *ledger.EntryInput) { e.Time = at.Add(time.Hour * 24) },
		"date":        func(e *ledger.EntryInput) { e.LedgerDate = -1 },
		"future date": func(e *ledger.EntryInput) { e.LedgerDate = mustDate(t, "2026-06-12") },
		"type":        func(e *ledger.EntryInput) { e.EntryType = "Capture" },
		"reference":   func(e *ledger.EntryInput) { e.Reference = string([]byte{0xff}) },
		"handle":      func(e *ledger.EntryInput) { e.RecipientHandle = strp("") },
		"name":        func(e *ledger.EntryInput) { e.Name = strings.Repeat("n", 257) },
		"message":     func(e *ledger.EntryInput) { e.Message = "a\x7f" },
		"phone":       func(e *ledger.EntryInput) { e.PhoneNumber = "12-34-abc" },
		"short phone": func(e *ledger.EntryInput) { e.PhoneNumber = "+47 12" },
		"twice":       nil, // same id twice in the batch with other content
	}
	for name, mutate := range badEntries {
		in := []ledger.EntryInput{capture("ok", 1, at), capture("x", 2, at)}
		if mutate != nil {
			mutate(&in[1])
		} else {
			in[1] = capture("ok", 3, at)
		}
		_, ea := pg.Append(ctx, "302321", ledger.TopicFunds, in)
		_, eb := bb.Append(ctx, "302321", ledger.TopicFunds, in)
		if ea == nil || errText(ea) != errText(eb) || !strings.Contains(ea.Error(), "entries[1]") {
			t.Errorf("entry %s: postgres %v, bolt %v", name, ea, eb)
		}
	}
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "empty batch"}, {10001, "at most 10000"}} {
		in := make([]ledger.EntryInput, tc.n)
		for i := range in {
			in[i] = capture("e", 1, at)
		}
		_, ea := pg.Append(ctx, "302321", ledger.TopicFunds, in)
		_, eb := bb.Append(ctx, "302321", ledger.TopicFunds, in)
		if ea == nil || errText(ea) != errText(eb) || !strings.Contains(ea.Error(), tc.want) {
			t.Errorf("batch of %d: postgres %v, bolt %v", tc.n, ea, eb)
		}
	}
	if h, _ := pg.Head("302321", ledger.TopicFunds); h.Sequence != 0 {
		t.Fatalf("refused batches wrote %d entries", h.Sequence)
	}
	// Currency, zone and cutoff are fixed once the ledger has entries.
	if _, err := pg.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{capture("ok", 1, at)}); err != nil {
		t.Fatal(err)
	}
	for _, mutate := range []func(l *ledger.Ledger){
		func(l *ledger.Ledger) { l.Currency = "SEK" },
		func(l *ledger.Ledger) { l.TimeZone = "UTC" },
		func(l *ledger.Ledger) { l.Cutoff = "04:00" },
	} {
		l := good
		mutate(&l)
		if _, _, err := pg.PutLedger(ctx, l); !errors.Is(err, ledger.ErrConflict) {
			t.Errorf("changing %+v after entries: %v", l, err)
		}
	}
	l := good
	l.Owner = ledger.Account{Scheme: "business:NO:ORG", ID: "987654321"}
	got, created, err := pg.PutLedger(ctx, l)
	if err != nil || created || got.Owner != l.Owner || got.OpenDate.String() != "2026-06-10" {
		t.Fatalf("update: %+v %v %v", got, created, err)
	}
	if back, _ := pg.GetLedger("302321"); back.Owner != l.Owner || !back.CreatedAt.Equal(got.CreatedAt) {
		t.Fatalf("get after update: %+v", back)
	}
}
