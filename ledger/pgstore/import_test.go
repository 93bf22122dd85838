package pgstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/storetest"
)

// importSource fills a bbolt store with a ledger that has what an import
// must carry: both topics, GDPR fields and an erasure, named and derived
// dates, a payout, closings and seals.
func importSource(t *testing.T) (*ledger.Store, *storetest.Clock) {
	t.Helper()
	ctx := context.Background()
	clock := newClock(utc("2026-03-10T12:00:00Z"))
	src := openBolt(t, ledger.Options{Now: clock.Now})
	if _, _, err := src.PutLedger(ctx, ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo", Cutoff: "04:00",
		SettlesForRecipientHandles: []string{"NO:1"}}); err != nil {
		t.Fatal(err)
	}
	h := "NO:1"
	for day := range 4 {
		var funds, fees []ledger.EntryInput
		at := utc("2026-03-01T08:00:00Z").Add(time.Duration(day) * 24 * time.Hour)
		for i := range 30 {
			in := ledger.EntryInput{EntryID: fmt.Sprintf("c-%d-%d", day, i), PSPReference: fmt.Sprintf("psp-%d-%d", day, i),
				Time: at.Add(time.Duration(i) * time.Minute), EntryType: "capture", Reference: fmt.Sprintf("order-%d", i%7),
				Amount: int64(100 + i), RecipientHandle: &h}
			if i%3 == 0 {
				in.Name, in.PhoneNumber, in.Message = "Kari", "+4791234567", fmt.Sprintf("m%d", i)
			}
			funds = append(funds, in)
			fees = append(fees, ledger.EntryInput{EntryID: fmt.Sprintf("f-%d-%d", day, i), PSPReference: in.PSPReference,
				Time: in.Time, EntryType: "capture-fee", Reference: in.Reference, Amount: -2})
		}
		if day == 2 {
			funds = append(funds, ledger.EntryInput{EntryID: fmt.Sprintf("p-%d", day), PSPReference: "payout-2", Time: at.Add(time.Hour),
				EntryType: "scheduled-for-payout", Reference: "payout", Amount: -500})
		}
		for _, b := range []struct {
			topic ledger.Topic
			in    []ledger.EntryInput
		}{{ledger.TopicFunds, funds}, {ledger.TopicFees, fees}} {
			if _, err := src.Append(ctx, "302321", b.topic, b.in); err != nil {
				t.Fatal(err)
			}
		}
		clock.Add(time.Minute)
	}
	if _, err := src.EraseGDPR(ctx, "302321", ledger.Erasure{PSPReference: "psp-1-3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.CloseDate(ctx, "302321", mustDate(t, "2026-03-03")); err != nil {
		t.Fatal(err)
	}
	work, err := src.Unsealed("302321", 2)
	if err != nil || len(work.Dates) != 2 {
		t.Fatalf("unsealed: %+v %v", work, err)
	}
	var seals []ledger.Seal
	for _, d := range work.Dates {
		seals = append(seals, ledger.Seal{Date: d.Date, Seal: "seal-of-" + d.Date.String(), Funds: d.Funds, Fees: d.Fees})
	}
	if err := src.PutSeals(ctx, "302321", "", seals); err != nil {
		t.Fatal(err)
	}
	return src, clock
}

func boltPages(src *ledger.Store, id string, page int) EntryPages {
	return func(t ledger.Topic, from uint64) ([]ledger.Entry, error) {
		return src.Entries(id, t, from, page, ledger.ReadOptions{GDPR: true})
	}
}

// An imported ledger answers every read as the source does, and goes on
// as the source would: the next append gets the same sequences, balances
// and hashes, and a repost of an imported entry is a duplicate.
func TestImportLedger_SameAsSource(t *testing.T) {
	ctx := context.Background()
	src, clock := importSource(t)
	dst := openPG(t, pgtest.Start(t), Options{Now: clock.Now})
	if err := dst.ImportBegin(ctx, "bolt:test", clock.Now()); err != nil {
		t.Fatal(err)
	}
	ex, err := src.ExportLedger("302321")
	if err != nil {
		t.Fatal(err)
	}
	st, err := dst.ImportLedger(ctx, ex, boltPages(src, "302321", 7), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 241 || st.Erased != 1 || st.GDPR != 39 || st.Seals != 2 || st.CloseTimes == 0 {
		t.Errorf("stats %+v", st)
	}
	if err := dst.ImportAnalyze(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dst.ImportFinish(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}

	check := func(what string, a, b any, errA, errB error) {
		t.Helper()
		if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%s:\nbolt %+v (%v)\npg   %+v (%v)", what, a, errA, b, errB)
		}
	}
	la, errA := src.GetLedger("302321")
	lb, errB := dst.GetLedger("302321")
	la.CreatedAt, la.UpdatedAt = la.CreatedAt.Truncate(time.Microsecond), la.UpdatedAt.Truncate(time.Microsecond)
	check("ledger", la, lb, errA, errB)
	for _, topic := range ledger.Topics {
		a, errA := src.Entries("302321", topic, 1, 1000, ledger.ReadOptions{GDPR: true})
		b, errB := dst.Entries("302321", topic, 1, 1000, ledger.ReadOptions{GDPR: true})
		var as, bs []string
		for i := range a {
			as = append(as, entryString(a[i]))
		}
		for i := range b {
			bs = append(bs, entryString(b[i]))
		}
		check(string(topic)+" entries", as, bs, errA, errB)
		ha, errA := src.Head("302321", topic)
		hb, errB := dst.Head("302321", topic)
		check(string(topic)+" head", ha, hb, errA, errB)
		for d := mustDate(t, "2026-02-28"); d <= mustDate(t, "2026-03-05"); d++ {
			f1, l1, ok1, errA := src.DateRange("302321", topic, d)
			f2, l2, ok2, errB := dst.DateRange("302321", topic, d)
			check("date range "+d.String(), []any{f1, l1, ok1}, []any{f2, l2, ok2}, errA, errB)
			ca, oa, errA := src.ClosedAt("302321", d)
			cb, ob, errB := dst.ClosedAt("302321", d)
			check("closed at "+d.String(), []any{ca, oa}, []any{cb, ob}, errA, errB)
		}
		ra, errA := src.Lookup("302321", topic, ledger.ByReference, "order-3", 0, 100)
		rb, errB := dst.Lookup("302321", topic, ledger.ByReference, "order-3", 0, 100)
		check("lookup", ra, rb, errA, errB)
		ta, errA := src.LookupTime("302321", topic, utc("2026-03-02T08:10:00Z").UnixMicro(), utc("2026-03-03T08:10:00Z").UnixMicro(), 100)
		tb, errB := dst.LookupTime("302321", topic, utc("2026-03-02T08:10:00Z").UnixMicro(), utc("2026-03-03T08:10:00Z").UnixMicro(), 100)
		check("lookup time", ta, tb, errA, errB)
	}
	ma, errA := src.Manifest("302321", mustDate(t, "2026-03-01"), mustDate(t, "2026-03-05"))
	mb, errB := dst.Manifest("302321", mustDate(t, "2026-03-01"), mustDate(t, "2026-03-05"))
	check("manifest", ma, mb, errA, errB)
	ua, errA := src.Unsealed("302321", 10)
	ub, errB := dst.Unsealed("302321", 10)
	ua.Ledger, ub.Ledger = ledger.Ledger{}, ledger.Ledger{}
	check("unsealed", ua, ub, errA, errB)

	// The chain goes on alike: a repost and a new entry.
	next := []ledger.EntryInput{
		{EntryID: "c-0-1", PSPReference: "psp-0-1", Time: utc("2026-03-01T08:01:00Z"), EntryType: "capture", Reference: "order-1", Amount: 101, RecipientHandle: strp("NO:1")},
		{EntryID: "late", PSPReference: "psp-late", Time: clock.Now(), EntryType: "capture", Reference: "late", Amount: 5, Name: "X"},
	}
	ra, errA := src.Append(ctx, "302321", ledger.TopicFunds, next)
	rb, errB := dst.Append(ctx, "302321", ledger.TopicFunds, next)
	check("append after import", ra, rb, errA, errB)
	ea, errA := src.Entries("302321", ledger.TopicFunds, 122, 10, ledger.ReadOptions{GDPR: true})
	eb, errB := dst.Entries("302321", ledger.TopicFunds, 122, 10, ledger.ReadOptions{GDPR: true})
	if len(ea) != 1 || len(eb) != 1 {
		t.Fatalf("entries after the append: %d and %d", len(ea), len(eb))
	}
	check("entry after import", entryString(ea[0]), entryString(eb[0]), errA, errB)
}

// A source that is not a consistent ledger is refused, naming the fault,
// and nothing of the ledger is written.
func TestImportLedger_RefusesInconsistentInput(t *testing.T) {
	ctx := context.Background()
	src, clock := importSource(t)
	dst := openPG(t, pgtest.Start(t), Options{Now: clock.Now})
	ex, err := src.ExportLedger("302321")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(e *ledger.Entry)
		want   string
	}{
		{"hash", func(e *ledger.Entry) { e.Hash[0] ^= 1 }, "sequence 50: the hash does not chain"},
		{"amount", func(e *ledger.Entry) { e.Amount++ }, "sequence 50: balanceAfter"},
		{"gap", func(e *ledger.Entry) { e.Sequence++ }, "sequence 51 follows 49"},
		{"date", func(e *ledger.Entry) { e.LedgerDate = 1 }, "sequence 50: date"},
		{"ledger", func(e *ledger.Entry) { e.LedgerID = "302322" }, "sequence 50 names ledger 302322"},
		{"gdpr", func(e *ledger.Entry) { e.HasGDPR, e.GDPR = false, &ledger.GDPR{Name: "x"} }, "sequence 50: GDPR fields on an entry posted without them"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pages := func(topic ledger.Topic, from uint64) ([]ledger.Entry, error) {
				es, err := src.Entries("302321", topic, from, 25, ledger.ReadOptions{GDPR: true})
				for i := range es {
					if topic == ledger.TopicFees && es[i].Sequence == 50 {
						tc.change(&es[i])
					}
				}
				return es, err
			}
			_, err := dst.ImportLedger(ctx, ex, pages, nil)
			if err == nil || !strings.Contains(err.Error(), "fees: "+tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			c, err := dst.Contents(ctx)
			if err != nil || !c.Empty() {
				t.Fatalf("after a refused import the database holds %s (%v)", c, err)
			}
		})
	}
	bad := ex
	bad.Seals = []ledger.StoredSeal{ex.Seals[1]}
	bad.Seals[0].Date = ex.Ledger.OpenDate
	if _, err := dst.ImportLedger(ctx, bad, boltPages(src, "302321", 100), nil); err == nil || !strings.Contains(err.Error(), "is not closed") {
		t.Errorf("seal of an open date: %v", err)
	}
}

// ImportBegin copies only into an empty database, and says what it found:
// data of its own, a copy cut short, or a completed copy.
func TestImportBegin_RefusesNonEmpty(t *testing.T) {
	ctx := context.Background()
	now := utc("2026-03-10T12:00:00Z")
	s := openPG(t, pgtest.Start(t), Options{})
	if _, err := s.CreateClient(ctx, ledger.Client{ID: "acme", SecretHash: "h", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	err := s.ImportBegin(ctx, "bolt:x", now)
	if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "it holds 1 clients; migrate-store copies only into an empty database") {
		t.Errorf("non-empty: %v", err)
	}
	if m, ok, err := s.ImportMarkerOf(); ok || err != nil {
		t.Errorf("a refused begin wrote the marker: %+v %v", m, err)
	}

	s = openPG(t, pgtest.Start(t), Options{})
	if err := s.ImportBegin(ctx, "bolt:/data", now); err != nil {
		t.Fatal(err)
	}
	err = s.ImportBegin(ctx, "bolt:/data", now)
	if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "a copy of bolt:/data that did not complete (started 2026-03-10T12:00:00Z") ||
		!strings.Contains(err.Error(), "drop and recreate the database") {
		t.Errorf("cut short: %v", err)
	}
	if err := s.ImportFinish(ctx, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	err = s.ImportBegin(ctx, "bolt:/data", now)
	if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "already holds a completed copy of bolt:/data") {
		t.Errorf("complete: %v", err)
	}
	if err := s.ImportFinish(ctx, now); err == nil {
		t.Errorf("a second finish succeeded")
	}
}
