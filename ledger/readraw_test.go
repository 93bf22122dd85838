package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// rawAsEntry is what Entries would return for a visited entry (the fields
// a RawEntry has).
func rawAsEntry(r *RawEntry, ledgerID string, topic Topic) Entry {
	e := Entry{LedgerID: ledgerID, Topic: topic, Sequence: r.Sequence, Currency: r.Currency,
		PSPReference: string(r.PSPReference), Time: time.UnixMicro(r.TimeMicros).UTC(), LedgerDate: r.LedgerDate,
		EntryType: string(r.EntryType), Reference: string(r.Reference), Amount: r.Amount,
		BalanceBefore: r.BalanceBefore, BalanceAfter: r.BalanceAfter, HasGDPR: r.HasGDPR, GDPR: r.GDPR}
	if r.HasRecipient {
		h := string(r.RecipientHandle)
		e.RecipientHandle = &h
	}
	return e
}

// sameEntry compares what both reads return (not EntryID or Hash, which a
// RawEntry does not carry).
func sameEntry(a, b Entry) error {
	a.EntryID, b.EntryID, a.Hash, b.Hash = "", "", [32]byte{}, [32]byte{}
	ha, hb := a.RecipientHandle, b.RecipientHandle
	a.RecipientHandle, b.RecipientHandle = nil, nil
	ga, gb := a.GDPR, b.GDPR
	a.GDPR, b.GDPR = nil, nil
	switch {
	case !a.Time.Equal(b.Time) || a.Time.Location() != b.Time.Location():
		return fmt.Errorf("time %v, want %v", a.Time, b.Time)
	case (ha == nil) != (hb == nil) || ha != nil && *ha != *hb:
		return fmt.Errorf("recipient handle %v, want %v", ha, hb)
	case (ga == nil) != (gb == nil) || ga != nil && *ga != *gb:
		return fmt.Errorf("GDPR %+v, want %+v", ga, gb)
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	if a != b {
		return fmt.Errorf("%+v, want %+v", a, b)
	}
	return nil
}

func TestDecodeRaw_MatchesDecodeEntry(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	str := func() string {
		b := make([]byte, r.IntN(200)) // lengths over 127 take two varint bytes
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	for i := 0; i < 3000; i++ {
		in := Entry{EntryID: str(), PSPReference: str(), EntryType: str(), Reference: str(),
			Amount: int64(r.Uint64()), BalanceBefore: int64(r.Uint64()), Time: time.UnixMicro(int64(r.Uint64()) >> r.IntN(64)).UTC(),
			LedgerDate: Date(r.Uint32()), HasGDPR: r.IntN(2) == 0}
		in.BalanceAfter = in.BalanceBefore + in.Amount
		if r.IntN(3) > 0 {
			h := str()
			in.RecipientHandle = &h
		}
		rec := encodeEntry(&in)
		// The record, every truncation, and junk after a prefix: both
		// decoders accept the same values and read the same fields.
		n := r.IntN(len(rec))
		for _, v := range [][]byte{rec, rec[:n], append(rec[:n:n], 0x80, 0x01), append(rec[:len(rec):len(rec)], 0)} {
			var want Entry
			werr := decodeEntry(v, &want, false)
			var raw RawEntry
			gerr := decodeRaw(v, &raw)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("record %x: decodeEntry %v, decodeRaw %v", v, werr, gerr)
			}
			if werr != nil {
				continue
			}
			if err := sameEntry(rawAsEntry(&raw, "", ""), want); err != nil {
				t.Fatalf("record %x: %v", v, err)
			}
		}
	}
}

func TestStore_VisitEntries_MatchesEntries(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, Options{})
	mustPutLedger(t, s, "L1", "NOK", "Europe/Oslo", "04:00")
	mustPutLedger(t, s, "L2", "EUR", "UTC", "")
	r := rand.New(rand.NewPCG(5, 6))
	t0 := time.Now().Add(-48 * time.Hour).Truncate(time.Microsecond)
	handles := []string{"NO:1", "NO:2", "mobilepay:12345"}
	for b := 0; b < 6; b++ {
		in := make([]EntryInput, 1+r.IntN(60))
		for i := range in {
			k := b*100 + i
			in[i] = EntryInput{EntryID: fmt.Sprintf("e-%d", k), PSPReference: fmt.Sprint(k), Reference: fmt.Sprintf("order \"%d\" ø", k%7),
				Time: t0.Add(time.Duration(k) * time.Minute), EntryType: "capture", Amount: int64(r.IntN(1e6)) - 5e5}
			if r.IntN(4) > 0 {
				in[i].RecipientHandle = &handles[r.IntN(len(handles))]
			}
			if r.IntN(3) == 0 {
				in[i].Name, in[i].PhoneNumber, in[i].Message = "Åse \\ \"Å\"", "+47 912 34 567", "takk </script> \u2028"
			}
		}
		for _, l := range []string{"L1", "L2"} {
			if _, err := s.Append(ctx, l, TopicFunds, in); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.EraseGDPR(ctx, "L1", Erasure{Reference: `order "3" ø`}); err != nil {
		t.Fatal(err)
	}
	h, err := s.Head("L1", TopicFunds)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"L1", "L2"} {
		for _, gdpr := range []bool{false, true} {
			for i := 0; i < 40; i++ {
				from := uint64(r.IntN(int(h.Sequence) + 3))
				limit := r.IntN(int(h.Sequence) + 5)
				want, err := s.Entries(l, TopicFunds, from, limit, ReadOptions{GDPR: gdpr})
				if err != nil {
					t.Fatal(err)
				}
				var got []Entry
				n, err := s.VisitEntries(l, TopicFunds, from, limit, gdpr, func(e *RawEntry) error {
					got = append(got, rawAsEntry(e, l, TopicFunds))
					return nil
				})
				if err != nil || n != len(got) {
					t.Fatalf("visit: %d, %v (got %d)", n, err, len(got))
				}
				if len(got) != len(want) {
					t.Fatalf("%s from %d limit %d: %d entries, Entries %d", l, from, limit, len(got), len(want))
				}
				for j := range got {
					if err := sameEntry(got[j], want[j]); err != nil {
						t.Fatalf("%s from %d, entry %d: %v", l, from, j, err)
					}
				}
			}
		}
	}

	t.Run("errors", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		n, err := s.VisitEntries("L1", TopicFunds, 1, 10, false, func(*RawEntry) error { calls++; return stop })
		if !errors.Is(err, stop) || n != 0 || calls != 1 {
			t.Errorf("fn's error: %d, %v after %d calls", n, err, calls)
		}
		if _, err := s.VisitEntries("nope", TopicFunds, 1, 10, false, func(*RawEntry) error { return nil }); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown ledger: %v", err)
		}
		if _, err := s.VisitEntries("L1", "bogus", 1, 10, false, func(*RawEntry) error { return nil }); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad topic: %v", err)
		}
		var seen bytes.Buffer
		n, err = s.VisitEntries("L1", TopicFees, 1, 10, false, func(*RawEntry) error { seen.WriteByte('x'); return nil })
		if err != nil || n != 0 || seen.Len() != 0 {
			t.Errorf("empty topic: %d, %v", n, err)
		}
	})
}
