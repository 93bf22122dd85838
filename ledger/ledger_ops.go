package ledger

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// PutLedger creates or updates a ledger's configuration and returns it as
// stored. Once a ledger has entries its currency, time zone and cutoff are
// fixed: a change fails with ErrConflict (the dates already closed would move).
func (s *Store) PutLedger(ctx context.Context, l Ledger) (Ledger, bool, error) {
	if l.Cutoff == "" {
		l.Cutoff = "00:00"
	}
	if err := l.validate(); err != nil {
		return Ledger{}, false, err
	}
	if l.SettlesForRecipientHandles == nil {
		l.SettlesForRecipientHandles = []string{}
	}
	if l.SalesUnits == nil {
		l.SalesUnits = []SalesUnit{}
	}
	type result struct {
		l       Ledger
		created bool
	}
	res, err := s.write(ctx, func(w *wtx) (any, error) {
		now := s.now().UTC()
		old, err := w.ledger(l.ID)
		switch {
		case err == nil:
			if old.HasEntries {
				switch {
				case l.Currency != old.Currency:
					return nil, conflictErr("currency: ledger %s has entries in %s; it cannot change", l.ID, old.Currency)
				case l.TimeZone != old.TimeZone:
					return nil, conflictErr("timeZone: ledger %s has entries dated in %s; it cannot change", l.ID, old.TimeZone)
				case l.Cutoff != old.Cutoff:
					return nil, conflictErr("cutoff: ledger %s has entries dated with cutoff %s; it cannot change", l.ID, old.Cutoff)
				}
			}
			nl := l
			nl.OpenDate, nl.CreatedAt, nl.UpdatedAt = old.OpenDate, old.CreatedAt, now
			old.Ledger = nl
			w.markChanged(old)
			return result{nl, false}, nil
		case errorsIsNotFound(err):
			num, err := w.Bucket(bucketLedgers).NextSequence()
			if err != nil {
				return nil, dirty(err)
			}
			if num > 1<<32-1 {
				return nil, dirty(fmt.Errorf("too many ledgers"))
			}
			nl := l
			nl.OpenDate, nl.CreatedAt, nl.UpdatedAt = 0, now, now
			rec := &ledgerRecord{Ledger: nl, Num: uint32(num)}
			w.ledgers[l.ID] = rec
			w.markChanged(rec)
			return result{nl, true}, nil
		default:
			return nil, err
		}
	})
	if err != nil {
		return Ledger{}, false, fmt.Errorf("put ledger %s: %w", l.ID, err)
	}
	r := res.(result)
	return r.l, r.created, nil
}

// GetLedger returns a ledger, or ErrNotFound.
func (s *Store) GetLedger(id string) (Ledger, error) {
	var out Ledger
	err := s.view(id, func(_ *bolt.Tx, rec *ledgerRecord) error {
		out = rec.Ledger
		return nil
	})
	return out, err
}

// ListLedgers returns up to limit ledgers with ids after the given one, in
// byte order of their ids.
func (s *Store) ListLedgers(after string, limit int) ([]Ledger, error) {
	var out []Ledger
	err := s.viewTx(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLedgers).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			rec, err := unmarshalLedger(v)
			if err != nil {
				return err
			}
			out = append(out, rec.Ledger)
		}
		return nil
	})
	return out, err
}

// CloseDate closes date d of a ledger and every earlier date. Closing a date
// that is already closed changes nothing; closing one that has not begun is
// refused. It returns the ledger's open date afterwards.
func (s *Store) CloseDate(ctx context.Context, ledgerID string, d Date) (Date, error) {
	if d <= 0 {
		return 0, fieldErr("ledgerDate", "required")
	}
	res, err := s.write(ctx, func(w *wtx) (any, error) {
		rec, err := w.ledger(ledgerID)
		if err != nil {
			return nil, err
		}
		cal, err := rec.Calendar()
		if err != nil {
			return nil, err
		}
		if cal.Start(d).After(s.now().Add(futureTimeSkew)) {
			return nil, fieldErr("ledgerDate", "%s has not begun in %s", d, rec.TimeZone)
		}
		w.setOpenDate(rec, d+1)
		return rec.OpenDate, nil
	})
	if err != nil {
		return 0, fmt.Errorf("close %s of ledger %s: %w", d, ledgerID, err)
	}
	return res.(Date), nil
}

// CloseDue closes, in every ledger, each date whose end plus the grace period
// has passed. Ledgers without an open date (nothing appended or closed yet)
// are left alone. The server calls it every minute.
func (s *Store) CloseDue(ctx context.Context) error {
	type due struct {
		id string
		to Date
	}
	var todo []due
	now := s.now()
	err := s.viewTx(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLedgers).ForEach(func(k, v []byte) error {
			rec, err := unmarshalLedger(v)
			if err != nil {
				return err
			}
			if rec.OpenDate == 0 {
				return nil
			}
			cal, err := rec.Calendar()
			if err != nil {
				return err
			}
			if open := cal.DateOf(now.Add(-s.grace)); open > rec.OpenDate {
				todo = append(todo, due{rec.ID, open})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, d := range todo {
		if _, err := s.write(ctx, func(w *wtx) (any, error) {
			rec, err := w.ledger(d.id)
			if err != nil {
				return nil, err
			}
			w.setOpenDate(rec, d.to)
			return nil, nil
		}); err != nil {
			return fmt.Errorf("close due dates of ledger %s: %w", d.id, err)
		}
	}
	return nil
}

// Erasure selects the entries whose GDPR fields to erase: exactly one of
// Reference and PSPReference is set.
type Erasure struct {
	Reference    string
	PSPReference string
}

// EraseGDPR erases the GDPR fields of every entry of a ledger (both topics)
// with the given reference or pspReference, and returns how many entries had
// fields erased. Entries, balances and hashes are unchanged; the erased text
// cannot be read back from the data file afterwards.
func (s *Store) EraseGDPR(ctx context.Context, ledgerID string, by Erasure) (int, error) {
	if (by.Reference == "") == (by.PSPReference == "") {
		return 0, fieldErr("reference", "exactly one of reference and pspReference is required")
	}
	bucket, value := bucketRefs, by.Reference
	if by.PSPReference != "" {
		bucket, value = bucketPSPRefs, by.PSPReference
	}
	res, err := s.write(ctx, func(w *wtx) (any, error) {
		rec, err := w.ledger(ledgerID)
		if err != nil {
			return nil, err
		}
		var keys [][]byte
		var slots []uint64
		for _, t := range Topics {
			prefix := refPrefix(rec.Num, t, value)
			c := w.Bucket(bucket).Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if len(k) != len(prefix)+8 {
					continue
				}
				key := seqKey(rec.Num, t, btoi(k[len(prefix):]))
				if v := w.Bucket(bucketGDPR).Get(key); v != nil {
					slot, err := gdprSlot(v)
					if err != nil {
						return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
					}
					slots = append(slots, slot)
					keys = append(keys, key)
				}
			}
		}
		w.keys.zero = append(w.keys.zero, slots...)
		for _, k := range keys {
			if err := w.Bucket(bucketGDPR).Delete(k); err != nil {
				return nil, dirty(err)
			}
		}
		return len(keys), nil
	})
	if err != nil {
		return 0, fmt.Errorf("erase gdpr data in ledger %s: %w", ledgerID, err)
	}
	return res.(int), nil
}
