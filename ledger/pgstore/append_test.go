package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

func capture(id string, amount int64, at time.Time) ledger.EntryInput {
	return ledger.EntryInput{EntryID: id, PSPReference: "psp-" + id, Time: at, EntryType: "capture",
		Reference: "order-" + id, Amount: amount, RecipientHandle: strp("NO:123456")}
}

// TestStore_Append_Semantics checks the append rules one by one on a real
// server: gapless sequences and running balances, idempotent retries,
// conflicts naming the field, atomic batches, overflow refused.
func TestStore_Append_Semantics(t *testing.T) {
	ctx := context.Background()
	clock := newClock(utc("2026-06-10T12:00:00Z"))
	s := openPG(t, pgtest.Start(t), Options{Now: clock.Now})
	if _, _, err := s.PutLedger(ctx, ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"}); err != nil {
		t.Fatal(err)
	}
	at := utc("2026-06-10T08:00:00Z")

	res, err := s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{capture("a", 1000, at), capture("b", -250, at), capture("c", 50, at)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Appended != 3 || res.FirstSequence != 1 || res.LastSequence != 3 {
		t.Fatalf("first batch: %v", res)
	}
	es, err := s.Entries("302321", ledger.TopicFunds, 1, 10, ledger.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var bal int64
	for i, e := range es {
		if e.Sequence != uint64(i+1) || e.BalanceBefore != bal || e.BalanceAfter != bal+e.Amount || e.Currency != "NOK" {
			t.Fatalf("entry %d: %+v", i, e)
		}
		bal = e.BalanceAfter
	}
	if bal != 800 {
		t.Fatalf("balance %d, want 800", bal)
	}

	// A retry with one new entry: the old ones answer their sequences.
	res, err = s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{capture("b", -250, at), capture("d", 7, at)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Appended != 1 || res.Duplicates != 1 || fmt.Sprint(res.Sequences) != "[2 4]" {
		t.Fatalf("retry: %v %v", res, res.Sequences)
	}

	// Same id, other amount: 409 naming the field; the batch's new entry is not written.
	_, err = s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{capture("e", 1, at), capture("a", 999, at)})
	if !errors.Is(err, ledger.ErrConflict) || !strings.Contains(err.Error(), "entries[1].amount") {
		t.Fatalf("conflict: %v", err)
	}
	if h, _ := s.Head("302321", ledger.TopicFunds); h.Sequence != 4 || h.Balance != 807 {
		t.Fatalf("after refused batch: head %+v", h)
	}

	// Overflow is refused, never wrapped.
	_, err = s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{capture("big", math.MaxInt64, at)})
	if !errors.Is(err, ledger.ErrConflict) || !strings.Contains(err.Error(), "overflows int64") {
		t.Fatalf("overflow: %v", err)
	}
	// The other topic has its own sequence.
	res, err = s.Append(ctx, "302321", ledger.TopicFees, []ledger.EntryInput{capture("a", -3, at)})
	if err != nil || res.FirstSequence != 1 {
		t.Fatalf("fees: %v %v", res, err)
	}
	// Unknown ledger, bad topic, bad input.
	if _, err := s.Append(ctx, "nope", ledger.TopicFunds, []ledger.EntryInput{capture("a", 1, at)}); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("unknown ledger: %v", err)
	}
	if _, err := s.Head("302321", "cash"); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("bad topic: %v", err)
	}
	var fe *ledger.FieldError
	if _, err := s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{capture("a b", 1, at)}); !errors.As(err, &fe) || fe.Field != "entries[0].entryId" {
		t.Fatalf("bad entryId: %v", err)
	}
}

// TestStore_SameAsBolt runs one random sequence of operations — appends with
// retries, conflicts, named and derived dates, payouts, closings, overflow,
// GDPR fields and erasures — against the PostgreSQL store and a bbolt store,
// and requires the same answers, heads, entries (hash chain included), date
// ranges and lookups from both. Ledgers use DST zones and a 04:00 cutoff.
func TestStore_SameAsBolt(t *testing.T) {
	ctx := context.Background()
	start := utc("2026-03-27T20:00:00Z") // two days before the spring DST change
	clock := newClock(start)
	pg := openPG(t, pgtest.Start(t), Options{Now: clock.Now})
	bb := openBolt(t, ledger.Options{Now: clock.Now})
	ledgers := []ledger.Ledger{
		{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo", Cutoff: "04:00"},
		{ID: "302322", Currency: "EUR", TimeZone: "Pacific/Auckland"},
	}
	for _, l := range ledgers {
		a, ca, errA := pg.PutLedger(ctx, l)
		b, cb, errB := bb.PutLedger(ctx, l)
		if errA != nil || errB != nil || ca != cb || a.ID != b.ID || a.Cutoff != b.Cutoff {
			t.Fatalf("put ledger: %v %v / %v %v", a, errA, b, errB)
		}
	}
	rng := newRand(42)
	var posted []ledger.EntryInput // for retries and conflicting reposts
	seen := map[string]int{}       // outcomes met, so the run cannot silently become trivial
	types := []string{"capture", "capture", "capture", "refund", "fees-retained", "payout-scheduled"}
	for step := 0; step < 400; step++ {
		clock.Add(time.Duration(rng.IntN(40)) * time.Minute)
		now := clock.Now()
		l := ledgers[rng.IntN(len(ledgers))]
		topic := ledger.Topics[rng.IntN(2)]
		var what string
		var errA, errB error
		switch op := rng.IntN(20); {
		case op < 14: // append a batch: new entries, some retries, now and then a conflict
			n := 1 + rng.IntN(6)
			in := make([]ledger.EntryInput, 0, n)
			for i := 0; i < n; i++ {
				switch k := rng.IntN(10); {
				case k == 0 && len(posted) > 0:
					in = append(in, posted[rng.IntN(len(posted))]) // retry
				case k == 1 && len(posted) > 0:
					e := posted[rng.IntN(len(posted))]
					e.Message = "changed" // conflict (unless erased)
					in = append(in, e)
				default:
					e := ledger.EntryInput{
						EntryID:      fmt.Sprintf("e%d-%d", step, i),
						PSPReference: fmt.Sprintf("psp%d", rng.IntN(30)),
						Time:         now.Add(-time.Duration(rng.IntN(600)) * time.Minute),
						EntryType:    types[rng.IntN(len(types))],
						Reference:    []string{"", "order-1", "order-2", fmt.Sprintf("order-%d", step)}[rng.IntN(4)],
						Amount:       int64(rng.IntN(20000) - 5000),
					}
					if rng.IntN(3) == 0 {
						e.RecipientHandle = strp("NO:" + fmt.Sprint(rng.IntN(3)))
					}
					if rng.IntN(3) == 0 {
						e.Name, e.PhoneNumber, e.Message = "Kari Nordmann", "+47 912 34 567", fmt.Sprintf("thanks %d", step)
					}
					if rng.IntN(8) == 0 { // a named date: today, tomorrow (not begun?) or an old one
						cal, _ := l.Calendar()
						e.LedgerDate = cal.DateOf(now) + ledger.Date(rng.IntN(3)-1)
					}
					if rng.IntN(50) == 0 {
						e.Amount = math.MaxInt64 - int64(rng.IntN(10))
					}
					in = append(in, e)
				}
			}
			what = fmt.Sprintf("append %s/%s %d", l.ID, topic, len(in))
			ra, ea := pg.Append(ctx, l.ID, topic, in)
			rb, eb := bb.Append(ctx, l.ID, topic, in)
			errA, errB = ea, eb
			if ea == nil && eb == nil {
				if ra.Duplicates > 0 {
					seen["duplicates"]++
				}
				if fmt.Sprint(ra, ra.Sequences) != fmt.Sprint(rb, rb.Sequences) {
					t.Fatalf("step %d %s: postgres %v %v, bolt %v %v", step, what, ra, ra.Sequences, rb, rb.Sequences)
				}
				for _, e := range in {
					if e.EntryID[0] == 'e' && strings.HasPrefix(e.EntryID, fmt.Sprintf("e%d-", step)) {
						posted = append(posted, e)
					}
				}
			}
		case op < 16:
			cal, _ := l.Calendar()
			d := cal.DateOf(now) - ledger.Date(rng.IntN(3))
			what = fmt.Sprintf("close %s %s", l.ID, d)
			da, ea := pg.CloseDate(ctx, l.ID, d)
			db, eb := bb.CloseDate(ctx, l.ID, d)
			errA, errB = ea, eb
			if da != db {
				t.Fatalf("step %d %s: open date %s vs %s", step, what, da, db)
			}
		case op < 17:
			what = "close due"
			errA, errB = pg.CloseDue(ctx), bb.CloseDue(ctx)
		default:
			by := ledger.Erasure{PSPReference: fmt.Sprintf("psp%d", rng.IntN(30))}
			if rng.IntN(2) == 0 {
				by = ledger.Erasure{Reference: "order-" + fmt.Sprint(1+rng.IntN(2))}
			}
			what = fmt.Sprintf("erase %s %+v", l.ID, by)
			na, ea := pg.EraseGDPR(ctx, l.ID, by)
			nb, eb := bb.EraseGDPR(ctx, l.ID, by)
			errA, errB = ea, eb
			if na != nb {
				t.Fatalf("step %d %s: erased %d vs %d", step, what, na, nb)
			}
			if na > 0 {
				seen["erased"]++
			}
		}
		if errText(errA) != errText(errB) {
			t.Fatalf("step %d %s:\n postgres: %v\n bolt:     %v", step, what, errA, errB)
		}
		switch e := errText(errA); {
		case strings.Contains(e, "is closed"):
			seen["closed date refused"]++
		case strings.Contains(e, "was posted before"):
			seen["repost conflict"]++
		case strings.Contains(e, "overflows"):
			seen["overflow"]++
		case strings.Contains(e, "has not begun"):
			seen["future date refused"]++
		case errA == nil:
			seen[strings.Fields(what)[0]+" ok"]++
		}
		for _, l := range ledgers {
			for _, tp := range ledger.Topics {
				ha, ea := pg.Head(l.ID, tp)
				hb, eb := bb.Head(l.ID, tp)
				if ha != hb || errText(ea) != errText(eb) {
					t.Fatalf("step %d %s: head %s/%s: postgres %+v %v, bolt %+v %v", step, what, l.ID, tp, ha, ea, hb, eb)
				}
			}
		}
	}
	t.Logf("outcomes: %v", seen)
	for _, k := range []string{"closed date refused", "repost conflict", "overflow", "future date refused", "append ok", "close ok", "erased", "duplicates"} {
		if seen[k] == 0 {
			t.Errorf("the run never met %q", k)
		}
	}
	// Everything readable agrees: entries with GDPR fields, date ranges, lookups.
	for _, l := range ledgers {
		ga, _ := pg.GetLedger(l.ID)
		gb, _ := bb.GetLedger(l.ID)
		if ga.OpenDate != gb.OpenDate || ga.Currency != gb.Currency {
			t.Fatalf("ledger %s: %+v vs %+v", l.ID, ga, gb)
		}
		for _, tp := range ledger.Topics {
			ea, err := pg.Entries(l.ID, tp, 1, 10000, ledger.ReadOptions{GDPR: true})
			if err != nil {
				t.Fatal(err)
			}
			eb, _ := bb.Entries(l.ID, tp, 1, 10000, ledger.ReadOptions{GDPR: true})
			if len(ea) != len(eb) || len(ea) == 0 {
				t.Fatalf("%s/%s: %d entries vs %d", l.ID, tp, len(ea), len(eb))
			}
			var prev [32]byte
			for i := range ea {
				if a, b := entryString(ea[i]), entryString(eb[i]); a != b {
					t.Fatalf("%s/%s entry %d:\n postgres %s\n bolt     %s", l.ID, tp, i, a, b)
				}
				if ledger.ChainHash(prev, &ea[i]) != ea[i].Hash {
					t.Fatalf("%s/%s sequence %d: chain broken", l.ID, tp, ea[i].Sequence)
				}
				prev = ea[i].Hash
			}
			for d := ea[0].LedgerDate - 1; d <= ea[len(ea)-1].LedgerDate+1; d++ {
				fa, la, oka, _ := pg.DateRange(l.ID, tp, d)
				fb, lb, okb, _ := bb.DateRange(l.ID, tp, d)
				if fa != fb || la != lb || oka != okb {
					t.Fatalf("%s/%s date %s: %d-%d %v vs %d-%d %v", l.ID, tp, d, fa, la, oka, fb, lb, okb)
				}
			}
			for _, v := range []string{"", "order-1", "order-2", "psp3", "psp7"} {
				for _, by := range []ledger.Index{ledger.ByReference, ledger.ByPSPReference} {
					sa, _ := pg.Lookup(l.ID, tp, by, v, 2, 5)
					sb, _ := bb.Lookup(l.ID, tp, by, v, 2, 5)
					if fmt.Sprint(sa) != fmt.Sprint(sb) {
						t.Fatalf("lookup %v %q: %v vs %v", by, v, sa, sb)
					}
				}
			}
			from, to := ea[0].Time.Add(time.Hour).UnixMicro(), ea[0].Time.Add(9*time.Hour).UnixMicro()
			sa, _ := pg.LookupTime(l.ID, tp, from, to, 50)
			sb, _ := bb.LookupTime(l.ID, tp, from, to, 50)
			if fmt.Sprint(sa) != fmt.Sprint(sb) || len(sa) == 0 {
				t.Fatalf("lookup time: %v vs %v", sa, sb)
			}
		}
	}
}

// TestAppend_RepostIntoClosedDate: a retry of an entry whose date has closed
// since is acknowledged with its sequence, alone and in one group with new
// entries and other callers' batches — never refused as a post into a
// closed date, never written twice (Append first plans a group without
// reading the stored ids; a refusal or the ids' key sends it round again).
func TestAppend_RepostIntoClosedDate(t *testing.T) {
	ctx := context.Background()
	clock := newClock(utc("2026-06-10T12:00:00Z"))
	s := openPG(t, pgtest.Start(t), Options{Now: clock.Now})
	if _, _, err := s.PutLedger(ctx, ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"}); err != nil {
		t.Fatal(err)
	}
	at := utc("2026-06-10T08:00:00Z")
	x := capture("x", 500, at)
	x.LedgerDate = mustDate(t, "2026-06-09")
	if _, err := s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{x}); err != nil {
		t.Fatal(err)
	}
	y := capture("y", 20, at)
	y.LedgerDate = mustDate(t, "2026-06-10") // closes 2026-06-09
	if _, err := s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{y}); err != nil {
		t.Fatal(err)
	}
	// A new entry naming the closed date is refused …
	z := capture("z", 1, at)
	z.LedgerDate = x.LedgerDate
	if _, err := s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{z}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("new entry into a closed date: %v", err)
	}
	// … its retry is acknowledged, alone and in a batch with new entries.
	res, err := s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{x})
	if err != nil || res.Duplicates != 1 || fmt.Sprint(res.Sequences) != "[1]" {
		t.Fatalf("retry alone: %v %v", res, err)
	}
	res, err = s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{capture("n1", 3, at), x, capture("n2", 4, at)})
	if err != nil || res.Duplicates != 1 || fmt.Sprint(res.Sequences) != "[3 1 4]" {
		t.Fatalf("retry in a batch: %v %v", res, err)
	}
	// Many callers at once, so groups mix retries, new entries and refusals.
	var wg sync.WaitGroup
	errs := make([]error, 24)
	for i := range errs {
		wg.Go(func() {
			var in []ledger.EntryInput
			switch i % 3 {
			case 0:
				in = []ledger.EntryInput{x, y}
			case 1:
				in = []ledger.EntryInput{capture(fmt.Sprintf("c%02d", i), int64(i), at)}
			case 2:
				in = []ledger.EntryInput{z}
			}
			res, err := s.Append(ctx, "302321", ledger.TopicFunds, in)
			switch i % 3 {
			case 0:
				if err == nil && fmt.Sprint(res.Sequences) != "[1 2]" {
					err = fmt.Errorf("retries answered %v", res.Sequences)
				}
			case 2:
				if err == nil || !strings.Contains(err.Error(), "closed") {
					err = fmt.Errorf("closed date not refused: %v", err)
				} else {
					err = nil
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	es, err := s.Entries("302321", ledger.TopicFunds, 1, 100, ledger.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var bal int64
	for i, e := range es {
		if seen[e.EntryID] || e.Sequence != uint64(i+1) || e.BalanceBefore != bal {
			t.Fatalf("entry %d: %+v", i, e)
		}
		seen[e.EntryID], bal = true, e.BalanceAfter
	}
	if len(es) != 4+8 {
		t.Fatalf("%d entries, want 12", len(es))
	}
}
