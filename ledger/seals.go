package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Seals: each closed date of a ledger, from the ledger's first date with an
// entry in either topic, gets a seal, made by the server (it signs with the
// auth key; the store only keeps the compact JWS as an opaque string, with
// the date's summary). Seals are chained date by date and written once:
// PutSeals refuses to overwrite one, to seal a date that is not closed, and
// to skip a date. A closed date's entries never change, so neither does a
// summary stored with its seal.

// sealKey is num|date.
func sealKey(num uint32, d Date) []byte {
	k := binary.BigEndian.AppendUint32(make([]byte, 0, 8), num)
	return binary.BigEndian.AppendUint32(k, uint32(d))
}

// sealRecord is a stored seal.
type sealRecord struct {
	Seal     string       `json:"seal"`
	SealedAt time.Time    `json:"sealedAt"`
	Funds    TopicSummary `json:"funds"`
	Fees     TopicSummary `json:"fees"`
}

func unmarshalSeal(v []byte) (*sealRecord, error) {
	var r sealRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, err
	}
	if r.Seal == "" {
		return nil, fmt.Errorf("empty seal")
	}
	return &r, nil
}

// SealWork is what remains to seal in a ledger: the closed dates not sealed
// yet, in date order, each with its summary, and the seal they chain to.
type SealWork struct {
	Ledger   Ledger
	PrevDate Date   // the last sealed date; zero when none is sealed yet
	PrevSeal string // its seal; "" when none
	Dates    []DateSummary
}

// Unsealed returns up to limit closed dates of a ledger that are not sealed
// yet, oldest first, with their summaries. It returns none for a ledger with
// no entries.
func (s *Store) Unsealed(ledgerID string, limit int) (SealWork, error) {
	var out SealWork
	err := s.view(ledgerID, func(tx *bolt.Tx, rec *ledgerRecord) error {
		out.Ledger = rec.Ledger
		last, prev, err := lastSeal(tx, rec)
		if err != nil {
			return err
		}
		from := last + 1
		if last == 0 {
			if from = firstDate(tx, rec); from == 0 {
				return nil
			}
		} else {
			out.PrevDate, out.PrevSeal = last, prev.Seal
		}
		to := min(rec.OpenDate-1, from+Date(limit)-1)
		if from > to {
			return nil
		}
		out.Dates, err = summarize(tx, rec, from, to)
		return err
	})
	return out, err
}

// lastSeal returns the last sealed date of rec and its record (0, nil: none).
func lastSeal(tx *bolt.Tx, rec *ledgerRecord) (Date, *sealRecord, error) {
	c := tx.Bucket(bucketSeals).Cursor()
	prefix := binary.BigEndian.AppendUint32(nil, rec.Num)
	// No date is 0xffffffff: seek past the ledger's last seal, step back.
	k, v := c.Seek(binary.BigEndian.AppendUint32(prefix, 1<<32-1))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != 8 {
		return 0, nil, nil
	}
	d := Date(binary.BigEndian.Uint32(k[4:]))
	r, err := unmarshalSeal(v)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: seal of ledger %s date %s: %v", ErrDamaged, rec.ID, d, err)
	}
	return d, r, nil
}

// firstDate returns the ledger's first date with an entry in either topic,
// or zero when it has none. Entries are never dated before the open date and
// sealed dates are closed, so once sealing has begun this never moves.
func firstDate(tx *bolt.Tx, rec *ledgerRecord) Date {
	var first Date
	c := tx.Bucket(bucketDates).Cursor()
	for _, t := range Topics {
		prefix := topicPrefix(rec.Num, t)
		k, _ := c.Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != prefixLen+4 {
			continue
		}
		d := Date(binary.BigEndian.Uint32(k[prefixLen:]))
		if first == 0 || d < first {
			first = d
		}
	}
	return first
}

// Seal is a signed seal of one date, to store.
type Seal struct {
	Date        Date
	Seal        string       // compact JWS
	Funds, Fees TopicSummary // the summaries it was made over
}

// PutSeals stores seals of consecutive closed dates of a ledger, in date
// order, atomically. prev must be the seal of the last date sealed before
// them ("" when none is). It fails with ErrConflict, storing nothing, when a
// date is already sealed, is not closed, or does not follow the last sealed
// date (or, for the first seal, is not the ledger's first date with an
// entry), or when prev is not the stored previous seal.
func (s *Store) PutSeals(ctx context.Context, ledgerID, prev string, seals []Seal) error {
	if len(seals) == 0 {
		return nil
	}
	for i, sl := range seals {
		if sl.Seal == "" {
			return fieldErr(fmt.Sprintf("seals[%d].seal", i), "required")
		}
	}
	_, err := s.write(ctx, func(w *wtx) (any, error) {
		rec, err := w.ledger(ledgerID)
		if err != nil {
			return nil, err
		}
		last, lastRec, err := lastSeal(w.Tx, rec)
		if err != nil {
			return nil, err
		}
		switch {
		case last == 0 && prev != "":
			return nil, conflictErr("ledger %s has no seal to chain to", ledgerID)
		case last != 0 && prev != lastRec.Seal:
			return nil, conflictErr("ledger %s: the previous seal is not the stored seal of %s", ledgerID, last)
		}
		want := last + 1
		if last == 0 {
			want = firstDate(w.Tx, rec)
		}
		b := w.Bucket(bucketSeals)
		now := w.s.now().UTC()
		for _, sl := range seals {
			switch {
			case sl.Date >= rec.OpenDate:
				return nil, conflictErr("ledger %s date %s is not closed", ledgerID, sl.Date)
			case b.Get(sealKey(rec.Num, sl.Date)) != nil:
				return nil, conflictErr("ledger %s date %s is sealed already", ledgerID, sl.Date)
			case sl.Date != want:
				return nil, conflictErr("ledger %s date %s: the date to seal next is %s", ledgerID, sl.Date, want)
			}
			want++
		}
		for _, sl := range seals {
			v, err := json.Marshal(sealRecord{Seal: sl.Seal, SealedAt: now, Funds: sl.Funds, Fees: sl.Fees})
			if err != nil {
				return nil, dirty(err)
			}
			if err := b.Put(sealKey(rec.Num, sl.Date), v); err != nil {
				return nil, dirty(err)
			}
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("seal ledger %s: %w", ledgerID, err)
	}
	return nil
}

// SealOf returns the stored seal of a date ("" when it has none).
func (s *Store) SealOf(ledgerID string, d Date) (string, error) {
	var out string
	err := s.view(ledgerID, func(tx *bolt.Tx, rec *ledgerRecord) error {
		v := tx.Bucket(bucketSeals).Get(sealKey(rec.Num, d))
		if v == nil {
			return nil
		}
		r, err := unmarshalSeal(v)
		if err != nil {
			return fmt.Errorf("%w: seal of ledger %s date %s: %v", ErrDamaged, rec.ID, d, err)
		}
		out = r.Seal
		return nil
	})
	return out, err
}
