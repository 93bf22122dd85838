package ledger

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// sealAll seals every unsealed closed date with made-up seal strings
// ("seal:<date>:<prev>"), as the server's sealer would with a JWS.
func sealAll(t *testing.T, s *Store, id string) []Seal {
	t.Helper()
	w, err := s.Unsealed(id, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []Seal
	prev := w.PrevSeal
	for _, d := range w.Dates {
		prev = fmt.Sprintf("seal:%s:%s", d.Date, prev)
		out = append(out, Seal{Date: d.Date, Seal: prev, Funds: d.Funds, Fees: d.Fees})
	}
	if err := s.PutSeals(context.Background(), id, w.PrevSeal, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStore_PutSeals(t *testing.T) {
	s := manifestLedger(t)
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
	put := func(prev string, ss ...Seal) error { return s.PutSeals(ctx, "302321", prev, ss) }
	seal := func(d DateSummary, jws string) Seal {
		return Seal{Date: d.Date, Seal: jws, Funds: d.Funds, Fees: d.Fees}
	}

	refused := []struct {
		name string
		prev string
		ss   []Seal
	}{
		{"skips the first date", "", []Seal{seal(d27, "s27")}},
		{"chains to a seal that does not exist", "s25", []Seal{seal(d26, "s26")}},
		{"not consecutive", "", []Seal{seal(d26, "s26"), {Date: d28, Seal: "s28"}}},
		{"open date", "", []Seal{seal(d26, "s26"), seal(d27, "s27"), {Date: d28, Seal: "s28"}, {Date: d28 + 1, Seal: "s29"}, {Date: d28 + 2, Seal: "s30"}, {Date: d28 + 3, Seal: "s31"}}},
	}
	for _, tt := range refused {
		if err := put(tt.prev, tt.ss...); !errors.Is(err, ErrConflict) {
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
		ss   []Seal
	}{
		{"overwrite", "", []Seal{seal(d26, "other")}},
		{"wrong previous seal", "other", []Seal{seal(d27, "s27")}},
		{"skips a date", "s26", []Seal{{Date: d28, Seal: "s28"}}},
	} {
		if err := put(tt.prev, tt.ss...); !errors.Is(err, ErrConflict) {
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
	sealAll(t, s, "302321")
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

// Erasing GDPR fields changes no digest and no stored summary.
func TestStore_Manifest_GDPRErasure(t *testing.T) {
	s := manifestLedger(t)
	sealAll(t, s, "302321")
	before, err := s.Manifest("302321", mustDate(t, "2026-03-26"), 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.EraseGDPR(context.Background(), "302321", Erasure{Reference: "order-3"})
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
	es, _ := s.Entries("302321", TopicFunds, 1, 1000, ReadOptions{})
	if got, want := after[len(after)-1].Funds.Digest, fmt.Sprintf("%x", es[len(es)-1].Hash); got != want {
		t.Fatalf("open date digest %s, want %s", got, want)
	}
}

// A stored entry changed after its date was sealed (here: its amount and
// balance rewritten, the record's checksum made right again) no longer
// chains to the sealed digest: the seal exposes it.
func TestStore_Seal_ExposesChangedEntry(t *testing.T) {
	s := manifestLedger(t)
	seals := sealAll(t, s, "302321")
	d := mustDate(t, "2026-03-29")
	var sealed Seal
	for _, sl := range seals {
		if sl.Date == d {
			sealed = sl
		}
	}
	recompute := func() string {
		es, err := s.Entries("302321", TopicFunds, 1, 1000, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var h [32]byte
		for i := range es {
			if es[i].LedgerDate > d {
				break
			}
			h = ChainHash(h, &es[i])
		}
		return fmt.Sprintf("%x", h)
	}
	if got := recompute(); got != sealed.Funds.Digest {
		t.Fatalf("digest %s, sealed %s", got, sealed.Funds.Digest)
	}
	seq := sealed.Funds.FirstSequence + 1
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries)
		k := seqKey(1, TopicFunds, seq)
		var e Entry
		if err := decodeEntry(b.Get(k), &e, true); err != nil {
			return err
		}
		e.Amount += 100
		return b.Put(k, encodeEntry(&e))
	}); err != nil {
		t.Fatal(err)
	}
	if got := recompute(); got == sealed.Funds.Digest {
		t.Fatal("a changed entry still gives the sealed digest")
	}
	// The seal itself is unchanged.
	if got, _ := s.SealOf("302321", d); got != sealed.Seal {
		t.Fatalf("seal changed: %q", got)
	}
}
