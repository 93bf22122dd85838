package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

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

// A stored entry changed after its date was sealed (here: its amount and
// balance rewritten, the record's checksum made right again) no longer
// chains to the sealed digest: the seal exposes it.
func TestStore_Seal_ExposesChangedEntry(t *testing.T) {
	clock := newClock(utc("2026-03-31T12:00:00Z"))
	s := openTestStore(t, Options{Now: clock.Now, noSync: true})
	mustPutLedger(t, s, "302321", "NOK", "Europe/Oslo", "04:00")
	for i, day := range []string{"2026-03-27", "2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31"} {
		batch := make([]EntryInput, 3)
		for j := range batch {
			batch[j] = EntryInput{EntryID: fmt.Sprintf("%d-%d", i, j), PSPReference: "p", Time: clock.Now().Add(-time.Hour),
				LedgerDate: mustDate(t, day), EntryType: "capture", Amount: int64(100*i + j + 1)}
		}
		if _, err := s.Append(context.Background(), "302321", TopicFunds, batch); err != nil {
			t.Fatal(err)
		}
	}
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

func fieldOf(err error) string {
	if fe, ok := err.(*FieldError); ok {
		return fe.Field
	}
	return ""
}
