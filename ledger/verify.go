package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// VerifyProgress reports how far Verify has come.
type VerifyProgress struct {
	LedgerID string
	Topic    Topic
	Entries  uint64 // entries checked so far, over all ledgers
}

// VerifyReport sums up a successful Verify.
type VerifyReport struct {
	Ledgers int
	Entries uint64
}

const verifyChunk = 20000

// Verify recomputes every topic log of every ledger: gapless sequences from
// 1, each record's checksum, balances (balanceBefore = previous balanceAfter,
// no overflow), the hash chain, non-decreasing dates no later than the open
// date, and the entryId and date indexes. It reads in short transactions,
// so it runs beside a live server without stalling writers. The first fault
// is returned as a *VerifyError naming ledger, topic and sequence.
func (s *Store) Verify(ctx context.Context, progress func(VerifyProgress)) (rep VerifyReport, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var cur VerifyError // where we are, for a fault that panics inside bbolt
	defer func() {
		if r := recover(); r != nil {
			cur.Reason = fmt.Sprintf("the data file is damaged here (%v)", r)
			err = &cur
		}
	}()
	var ids []string
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLedgers).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	}); err != nil {
		return rep, err
	}
	nums := map[uint32]bool{}
	for _, id := range ids {
		cur = VerifyError{LedgerID: id}
		var rec *ledgerRecord
		if err := s.db.View(func(tx *bolt.Tx) error {
			var err error
			rec, err = unmarshalLedger(tx.Bucket(bucketLedgers).Get([]byte(id)))
			return err
		}); err != nil {
			return rep, &VerifyError{LedgerID: id, Reason: err.Error()}
		}
		if nums[rec.Num] {
			return rep, &VerifyError{LedgerID: id, Reason: fmt.Sprintf("internal number %d is used twice", rec.Num)}
		}
		nums[rec.Num] = true
		if err := rec.validate(); err != nil {
			return rep, &VerifyError{LedgerID: id, Reason: "configuration: " + err.Error()}
		}
		for _, t := range Topics {
			cur.Topic = t
			n, err := s.verifyTopic(ctx, rec, t, &cur, func(n uint64) {
				if progress != nil {
					progress(VerifyProgress{LedgerID: id, Topic: t, Entries: rep.Entries + n})
				}
			})
			if err != nil {
				return rep, err
			}
			rep.Entries += n
		}
		rep.Ledgers++
	}
	cur = VerifyError{LedgerID: "(none)", Reason: "entries bucket"}
	if err := s.db.View(func(tx *bolt.Tx) error {
		return checkPrefixes(tx, bucketEntries, nums)
	}); err != nil {
		return rep, err
	}
	return rep, nil
}

// checkPrefixes finds rows whose ledger number belongs to no ledger.
func checkPrefixes(tx *bolt.Tx, bucket []byte, nums map[uint32]bool) error {
	c := tx.Bucket(bucket).Cursor()
	for k, _ := c.First(); k != nil; {
		if len(k) < prefixLen {
			return &VerifyError{LedgerID: "(unknown)", Reason: fmt.Sprintf("a %s key of %d bytes", bucket, len(k))}
		}
		num := uint32(btoi(k[:4]))
		if !nums[num] {
			return &VerifyError{LedgerID: fmt.Sprintf("(number %d)", num), Reason: fmt.Sprintf("%s rows of a ledger that does not exist", bucket)}
		}
		// Skip to the next ledger number.
		if num == 1<<32-1 {
			break
		}
		k, _ = c.Seek(binary.BigEndian.AppendUint32(nil, num+1))
	}
	return nil
}

type verifyState struct {
	next    uint64
	balance int64
	hash    [32]byte
	date    Date
	first   uint64 // first sequence of the current date
}

func (s *Store) verifyTopic(ctx context.Context, rec *ledgerRecord, t Topic, cur *VerifyError, progress func(uint64)) (uint64, error) {
	st := verifyState{next: 1}
	fail := func(seq uint64, format string, args ...any) error {
		return &VerifyError{LedgerID: rec.ID, Topic: t, Sequence: seq, Reason: fmt.Sprintf(format, args...)}
	}
	prefix := topicPrefix(rec.Num, t)
	for {
		if err := ctx.Err(); err != nil {
			return st.next - 1, err
		}
		done := false
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketEntries).Cursor()
			ids := tx.Bucket(bucketEntryIDs)
			open := rec.OpenDate
			if now, err := unmarshalLedger(tx.Bucket(bucketLedgers).Get([]byte(rec.ID))); err == nil {
				open = now.OpenDate // the server may have moved it since Verify began
			}
			n := 0
			k, v := c.Seek(seqKey(rec.Num, t, st.next))
			for ; k != nil && bytes.HasPrefix(k, prefix) && n < verifyChunk; k, v = c.Next() {
				n++
				if len(k) != prefixLen+8 {
					return fail(st.next, "an entry key of %d bytes", len(k))
				}
				seq := btoi(k[prefixLen:])
				cur.Sequence = seq
				if seq != st.next {
					return fail(st.next, "sequence %d is missing (the next stored is %d)", st.next, seq)
				}
				e := Entry{LedgerID: rec.ID, Topic: t, Sequence: seq, Currency: rec.Currency}
				if err := decodeEntry(v, &e, true); err != nil {
					return fail(seq, "%v", err)
				}
				if e.BalanceBefore != st.balance {
					return fail(seq, "balanceBefore %d is not the previous balanceAfter %d", e.BalanceBefore, st.balance)
				}
				if _, ok := addInt64(e.BalanceBefore, e.Amount); !ok {
					return fail(seq, "balance overflows")
				}
				if want := ChainHash(st.hash, &e); want != e.Hash {
					return fail(seq, "hash chain broken: stored %x, computed %x", e.Hash[:8], want[:8])
				}
				if e.LedgerDate < st.date {
					return fail(seq, "ledger date %s is before the previous entry's %s", e.LedgerDate, st.date)
				}
				if e.LedgerDate > open {
					return fail(seq, "ledger date %s is after the open date %s", e.LedgerDate, open)
				}
				if got := ids.Get(entryIDKey(rec.Num, t, e.EntryID)); got == nil || btoi(got) != seq {
					return fail(seq, "entryId %q is not indexed to this entry", e.EntryID)
				}
				if e.LedgerDate != st.date {
					if err := checkDateRange(tx, rec.Num, t, st.date, st.first, seq-1); err != nil {
						return fail(seq-1, "%v", err)
					}
					st.first = seq
				}
				st.balance, st.hash, st.date = e.BalanceAfter, e.Hash, e.LedgerDate
				st.next++
			}
			if k == nil || !bytes.HasPrefix(k, prefix) {
				done = true
				if st.date != 0 {
					if err := checkDateRange(tx, rec.Num, t, st.date, st.first, st.next-1); err != nil {
						return fail(st.next-1, "%v", err)
					}
				}
			}
			return nil
		})
		if err != nil {
			return st.next - 1, err
		}
		progress(st.next - 1)
		if done {
			return st.next - 1, nil
		}
	}
}

func checkDateRange(tx *bolt.Tx, num uint32, t Topic, d Date, first, last uint64) error {
	if d == 0 {
		return nil
	}
	v := tx.Bucket(bucketDates).Get(dateKey(num, t, d))
	if len(v) != 16 || btoi(v[:8]) != first || btoi(v[8:]) != last {
		return fmt.Errorf("date index of %s does not match sequences %d–%d", d, first, last)
	}
	return nil
}
