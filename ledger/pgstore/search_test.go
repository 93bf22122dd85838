package pgstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// TestSearch_SameAsBolt fills one ledger in both stores (entries over ten
// days with a few references, pspReferences, types and times out of append
// order, GDPR fields, an erasure, sealed dates) and runs random searches —
// every filter alone and combined, forward and backward pages from random
// edges, with and without GDPR, empty time ranges, bad limits — requiring
// identical pages from both (200 queries), and that the run met full pages, partial
// pages and empty ones.
func TestSearch_SameAsBolt(t *testing.T) {
	ctx := context.Background()
	clock := newClock(utc("2026-05-01T08:00:00Z"))
	pg := openPG(t, pgtest.Start(t), Options{Now: clock.Now})
	bb := openBolt(t, ledger.Options{Now: clock.Now})
	l := ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"}
	type store interface {
		PutLedger(context.Context, ledger.Ledger) (ledger.Ledger, bool, error)
		Append(context.Context, string, ledger.Topic, []ledger.EntryInput) (ledger.AppendResult, error)
		CloseDue(context.Context) error
		Unsealed(string, int) (ledger.SealWork, error)
		PutSeals(context.Context, string, string, []ledger.Seal) error
		EraseGDPR(context.Context, string, ledger.Erasure) (int, error)
		Search(string, ledger.Topic, ledger.SearchQuery) (ledger.SearchPage, error)
	}
	stores := []store{pg, bb}
	for _, s := range stores {
		if _, _, err := s.PutLedger(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	rng := newRand(3)
	types := []string{"capture", "capture", "capture", "refund", "fees-retained", "correction"}
	start := clock.Now()
	for day := 0; day < 10; day++ {
		for _, topic := range ledger.Topics {
			in := make([]ledger.EntryInput, 20+rng.IntN(20))
			for i := range in {
				in[i] = ledger.EntryInput{EntryID: fmt.Sprintf("e%d-%d", day, i), PSPReference: fmt.Sprint("psp-", rng.IntN(15)),
					Time: clock.Now().Add(-time.Duration(rng.IntN(600)) * time.Minute), EntryType: types[rng.IntN(len(types))],
					Reference: fmt.Sprint("order-", rng.IntN(25)), Amount: int64(rng.IntN(9000) + 1)}
				if rng.IntN(5) == 0 {
					in[i].Reference = ""
				}
				if rng.IntN(4) == 0 {
					in[i].Name, in[i].Message = "Kari", fmt.Sprint("m", day, i)
				}
				if day == 3 && i == 0 {
					in[i].EntryType = "payout-aborted" // rare
				}
			}
			for _, s := range stores {
				if _, err := s.Append(ctx, l.ID, topic, in); err != nil {
					t.Fatal(err)
				}
			}
		}
		clock.Add(24 * time.Hour)
		for _, s := range stores {
			if err := s.CloseDue(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range stores { // seal the first five dates (bbolt's type search skips by their summaries)
		w, err := s.Unsealed(l.ID, 5)
		if err != nil || len(w.Dates) != 5 {
			t.Fatalf("unsealed %+v %v", w, err)
		}
		var seals []ledger.Seal
		for _, ds := range w.Dates {
			seals = append(seals, ledger.Seal{Date: ds.Date, Seal: "s" + ds.Date.String(), Funds: ds.Funds, Fees: ds.Fees})
		}
		if err := s.PutSeals(ctx, l.ID, "", seals); err != nil {
			t.Fatal(err)
		}
		if _, err := s.EraseGDPR(ctx, l.ID, ledger.Erasure{PSPReference: "psp-3"}); err != nil {
			t.Fatal(err)
		}
	}
	heads := map[ledger.Topic]uint64{}
	for _, topic := range ledger.Topics {
		h, err := pg.Head(l.ID, topic)
		if err != nil || h.Sequence < 150 {
			t.Fatalf("head %+v %v", h, err)
		}
		heads[topic] = h.Sequence
	}
	seen := map[string]int{}
	page := func(p ledger.SearchPage) string {
		var b strings.Builder
		fmt.Fprintf(&b, "more=%v n=%d ", p.HasMore, len(p.Entries))
		for _, e := range p.Entries {
			b.WriteString(entryString(e) + "\n")
		}
		return b.String()
	}
	for i := 0; i < 200; i++ {
		var q ledger.SearchQuery
		topic := ledger.Topics[rng.IntN(2)]
		if rng.IntN(3) == 0 {
			q.FromTime = start.Add(time.Duration(rng.IntN(240)) * time.Hour)
		}
		if rng.IntN(3) == 0 {
			q.ToTime = start.Add(time.Duration(rng.IntN(240)) * time.Hour)
		}
		if rng.IntN(4) == 0 {
			q.EntryTypes = []string{types[rng.IntN(len(types))]}
			if rng.IntN(3) == 0 {
				q.EntryTypes = []string{"payout-aborted", "nothing-like-it"}
			}
		}
		if rng.IntN(4) == 0 {
			q.Reference = fmt.Sprint("order-", rng.IntN(27))
		}
		if rng.IntN(4) == 0 {
			q.PSPReference = fmt.Sprint("psp-", rng.IntN(16))
		}
		if rng.IntN(3) == 0 {
			q.After = uint64(rng.IntN(400))
		}
		if rng.IntN(3) == 0 {
			// At most head+1: the bbolt store answers a backward search
			// by entry type alone with an empty page when Before-1 is past
			// the log's end (ledger/search.go typeCandidates), where the
			// PostgreSQL store answers the last matches of the log. API
			// cursors name stored sequences, so only that case differs.
			q.Before = min(uint64(rng.IntN(400)), heads[topic]+1)
		}
		q.Backward = rng.IntN(2) == 0
		q.Limit = []int{1, 3, 10, 50, 1000, 0, -1}[rng.IntN(7)]
		q.GDPR = rng.IntN(2) == 0
		a, errA := pg.Search(l.ID, topic, q)
		b, errB := bb.Search(l.ID, topic, q)
		if errText(errA) != errText(errB) || page(a) != page(b) {
			t.Fatalf("query %d %+v:\npostgres %v %s\nbolt     %v %s", i, q, errA, page(a), errB, page(b))
		}
		switch {
		case errA != nil:
			seen["error"]++
		case a.HasMore:
			seen["full page, more"]++
		case len(a.Entries) > 0:
			seen["last page"]++
		default:
			seen["empty"]++
		}
	}
	if _, err := pg.Search("nope", ledger.TopicFunds, ledger.SearchQuery{Limit: 1}); fmt.Sprint(err) != fmt.Sprint(func() error {
		_, err := bb.Search("nope", ledger.TopicFunds, ledger.SearchQuery{Limit: 1})
		return err
	}()) {
		t.Fatalf("unknown ledger: %v", err)
	}
	for _, want := range []string{"error", "full page, more", "last page", "empty"} {
		if seen[want] < 3 {
			t.Errorf("the run met %q only %d times (seen %v)", want, seen[want], seen)
		}
	}
}
