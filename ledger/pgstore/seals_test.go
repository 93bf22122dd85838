package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// TestSealsManifest_SameAsBolt runs one random sequence of appends (with
// payouts and named later dates), date closings, sealing (in order, with a
// wrong previous seal, skipping a date, sealing an open date, twice, without
// a seal) and reads of Unsealed, SealOf, Manifest (default and explicit
// ranges, too long, reversed) and ClosedAt against the PostgreSQL store and
// a bbolt store, on a ledger in Oslo with a 04:00 cutoff across the autumn
// DST change, and requires identical answers and error texts.
func TestSealsManifest_SameAsBolt(t *testing.T) {
	ctx := context.Background()
	clock := newClock(utc("2026-10-20T10:00:00Z"))
	pg := openPG(t, pgtest.Start(t), Options{Now: clock.Now, Grace: 2 * time.Hour})
	bb := openBolt(t, ledger.Options{Now: clock.Now, Grace: 2 * time.Hour})
	l := ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo", Cutoff: "04:00"}
	for _, s := range []interface {
		PutLedger(context.Context, ledger.Ledger) (ledger.Ledger, bool, error)
	}{pg, bb} {
		if _, _, err := s.PutLedger(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	cal, _ := l.Calendar()
	rng := newRand(5)
	seen := map[string]int{}
	same := func(step int, what string, a, b any, errA, errB error) {
		t.Helper()
		if errText(errA) != errText(errB) || fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", b) {
			t.Fatalf("step %d %s:\npostgres %+v, %v\nbolt     %+v, %v", step, what, a, errA, b, errB)
		}
		switch {
		case errA == nil:
			seen[what+" ok"]++
		case errors.Is(errA, ledger.ErrConflict):
			seen[what+" conflict"]++
		case errors.Is(errA, ledger.ErrInvalid):
			seen[what+" invalid"]++
		default:
			seen[what+" other"]++
		}
	}
	types := []string{"capture", "capture", "refund", "fees-retained", "payout-scheduled"}
	for step := 0; step < 220; step++ {
		clock.Add(time.Duration(rng.IntN(300)) * time.Minute)
		now := clock.Now()
		today := cal.DateOf(now)
		switch op := rng.IntN(20); {
		case op < 8:
			topic := ledger.Topics[rng.IntN(2)]
			in := make([]ledger.EntryInput, 1+rng.IntN(4))
			for i := range in {
				in[i] = ledger.EntryInput{EntryID: fmt.Sprintf("e%d-%d", step, i), PSPReference: "psp", Time: now.Add(-time.Duration(rng.IntN(120)) * time.Minute),
					EntryType: types[rng.IntN(len(types))], Amount: int64(rng.IntN(10000) - 2000)}
				if rng.IntN(12) == 0 {
					in[i].LedgerDate = today + 1
				}
			}
			a, errA := pg.Append(ctx, l.ID, topic, in)
			b, errB := bb.Append(ctx, l.ID, topic, in)
			same(step, "append", a, b, errA, errB)
		case op < 10:
			d := today - ledger.Date(rng.IntN(3))
			a, errA := pg.CloseDate(ctx, l.ID, d)
			b, errB := bb.CloseDate(ctx, l.ID, d)
			same(step, "close", a, b, errA, errB)
		case op < 11:
			same(step, "close due", nil, nil, pg.CloseDue(ctx), bb.CloseDue(ctx))
		case op < 14:
			limit := rng.IntN(4)
			a, errA := pg.Unsealed(l.ID, limit)
			b, errB := bb.Unsealed(l.ID, limit)
			same(step, "unsealed", a, b, errA, errB)
			if errA != nil {
				continue
			}
			// Seal what is due, or try one of the refused variants.
			prev := a.PrevSeal
			var seals []ledger.Seal
			for _, ds := range a.Dates {
				seals = append(seals, ledger.Seal{Date: ds.Date, Seal: fmt.Sprintf("jws.%s.%d", ds.Date, step), Funds: ds.Funds, Fees: ds.Fees})
			}
			switch rng.IntN(8) {
			case 0:
				prev = "not-the-seal"
			case 1:
				if len(seals) > 1 {
					seals = seals[1:] // skips a date
				}
			case 2:
				seals = append(seals, ledger.Seal{Date: today, Seal: "open"}) // not closed (or not next)
			case 3:
				if len(seals) > 0 {
					seals[0].Seal = ""
				}
			case 4:
				if a.PrevDate != 0 {
					seals = []ledger.Seal{{Date: a.PrevDate, Seal: "again"}} // sealed already
				}
			}
			errA = pg.PutSeals(ctx, l.ID, prev, seals)
			errB = bb.PutSeals(ctx, l.ID, prev, seals)
			same(step, "put seals", nil, nil, errA, errB)
		case op < 15:
			d := today - ledger.Date(rng.IntN(12))
			a, errA := pg.SealOf(l.ID, d)
			b, errB := bb.SealOf(l.ID, d)
			same(step, "seal of", a, b, errA, errB)
		case op < 18:
			var from, to ledger.Date
			switch rng.IntN(5) {
			case 0:
			case 1:
				from = today - ledger.Date(rng.IntN(10))
			case 2:
				to = today - ledger.Date(rng.IntN(5))
			case 3:
				from, to = today-ledger.Date(rng.IntN(10)), today-ledger.Date(rng.IntN(10))
			case 4:
				from, to = today-400, today
			}
			a, errA := pg.Manifest(l.ID, from, to)
			b, errB := bb.Manifest(l.ID, from, to)
			same(step, "manifest", a, b, errA, errB)
		default:
			d := today - ledger.Date(rng.IntN(12))
			ta, oka, errA := pg.ClosedAt(l.ID, d)
			tb, okb, errB := bb.ClosedAt(l.ID, d)
			same(step, "closed at", fmt.Sprint(ta, oka), fmt.Sprint(tb, okb), errA, errB)
			if oka {
				seen["closed at known"]++
			}
		}
	}
	// Unknown ledgers answer alike too.
	_, errA := pg.Unsealed("nope", 1)
	_, errB := bb.Unsealed("nope", 1)
	same(-1, "unknown", nil, nil, errA, errB)
	for _, want := range []string{"put seals ok", "put seals conflict", "put seals invalid", "unsealed ok", "manifest ok",
		"manifest invalid", "closed at known", "seal of ok", "close ok"} {
		if seen[want] == 0 {
			t.Errorf("the run never met %q (seen %v)", want, seen)
		}
	}
	// The whole history, sealed and not, the same.
	a, errA := pg.Manifest(l.ID, cal.DateOf(utc("2026-10-19T12:00:00Z")), 0)
	b, errB := bb.Manifest(l.ID, cal.DateOf(utc("2026-10-19T12:00:00Z")), 0)
	same(-1, "manifest", a, b, errA, errB)
	sealed := 0
	for _, ds := range a {
		if ds.Seal != "" {
			sealed++
		}
	}
	if sealed < 5 {
		t.Fatalf("only %d dates sealed in the run", sealed)
	}
}

// TestPutSeals_TwoNodesOneSeal: two nodes seal the same dates at once;
// exactly one stores its seals, the other is refused with ErrConflict.
func TestPutSeals_TwoNodesOneSeal(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	clock := newClock(utc("2026-06-10T10:00:00Z"))
	nodes := []*Store{openPG(t, dsn, Options{Now: clock.Now}), openPG(t, dsn, Options{Now: clock.Now})}
	l := ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"}
	if _, _, err := nodes[0].PutLedger(ctx, l); err != nil {
		t.Fatal(err)
	}
	for day := 0; day < 3; day++ {
		in := []ledger.EntryInput{{EntryID: fmt.Sprint("e", day), PSPReference: "p", Time: clock.Now(), EntryType: "capture", Amount: 100}}
		if _, err := nodes[day%2].Append(ctx, l.ID, ledger.TopicFunds, in); err != nil {
			t.Fatal(err)
		}
		clock.Add(24 * time.Hour)
	}
	if err := nodes[1].CloseDue(ctx); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		work, err := nodes[0].Unsealed(l.ID, 1)
		if err != nil || len(work.Dates) != 1 {
			t.Fatalf("round %d: unsealed %+v %v", round, work, err)
		}
		ds := work.Dates[0]
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = n.PutSeals(ctx, l.ID, work.PrevSeal, []ledger.Seal{{Date: ds.Date, Seal: fmt.Sprint("node", i), Funds: ds.Funds, Fees: ds.Fees}})
			}()
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), ledger.ErrConflict) {
			t.Fatalf("round %d: both or neither stored: %v", round, errs)
		}
		got, err := nodes[1].SealOf(l.ID, ds.Date)
		winner := 0
		if errs[0] != nil {
			winner = 1
		}
		if err != nil || got != fmt.Sprint("node", winner) {
			t.Fatalf("round %d: stored seal %q %v, want node%d's", round, got, err, winner)
		}
		if w, _ := nodes[0].Unsealed(l.ID, 1); len(w.Dates) == 0 {
			break
		}
	}
}
