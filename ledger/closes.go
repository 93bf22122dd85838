package ledger

import (
	"bytes"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// When dates close. A ledger's dates close when its open date moves
// forward (a later date's entry, a payout, CloseDate, CloseDue): every date
// from the old open date up to the new one closes at that moment. Each
// move is one row, num|new open date → the moment in µs, so a date d closed
// at the first move to an open date after d.

type closeKey struct {
	num  uint32
	open Date
}

func closeRowKey(num uint32, d Date) []byte {
	k := binary.BigEndian.AppendUint32(make([]byte, 0, 8), num)
	return binary.BigEndian.AppendUint32(k, uint32(d))
}

func (w *wtx) putCloses() error {
	if len(w.closes) == 0 {
		return nil
	}
	b := w.Tx.Bucket(bucketCloses)
	for k, t := range w.closes {
		if err := b.Put(closeRowKey(k.num, k.open), itob(uint64(t.UnixMicro()))); err != nil {
			return err
		}
	}
	return nil
}

// closedAt returns when date d of ledger num closed, read in tx; ok is
// false while it is open, and for dates closed before close times were
// recorded.
func closedAt(tx *bolt.Tx, num uint32, d Date) (t time.Time, ok bool) {
	c := tx.Bucket(bucketCloses).Cursor()
	k, v := c.Seek(closeRowKey(num, d+1))
	if k == nil || !bytes.HasPrefix(k, closeRowKey(num, 0)[:4]) || len(v) != 8 {
		return time.Time{}, false
	}
	return time.UnixMicro(int64(btoi(v))).UTC(), true
}

// ClosedAt returns when date d of a ledger closed; ok is false while it is
// open (or when it closed before this version recorded close times).
func (s *Store) ClosedAt(ledgerID string, d Date) (t time.Time, ok bool, err error) {
	err = s.view(ledgerID, func(tx *bolt.Tx, rec *ledgerRecord) error {
		if d >= rec.OpenDate {
			return nil
		}
		t, ok = closedAt(tx, rec.Num, d)
		return nil
	})
	return t, ok, err
}
