package ledger

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Append appends a batch of entries to one topic of a ledger, atomically and
// idempotently: an entry whose entryId is already stored with the same
// content is acknowledged as a duplicate and not posted again; one with other
// content fails the whole batch with ErrConflict naming the field. Nothing of
// a failed batch is written. The call returns after the batch is durable.
//
// Dates: an entry takes the date it names, or else max(open date, the date of
// its time). Naming a date before the open date fails with ErrConflict;
// naming a later one closes every date before it. A payout entry on funds
// (scheduled-for-payout, payout-scheduled) is the last of its date: it closes
// that date.
func (s *Store) Append(ctx context.Context, ledgerID string, topic Topic, in []EntryInput) (AppendResult, error) {
	if _, err := ParseTopic(string(topic)); err != nil {
		return AppendResult{}, err
	}
	norm, gdpr, err := NormalizeBatch(in, s.now())
	if err != nil {
		return AppendResult{}, err
	}
	res, err := s.write(ctx, func(w *wtx) (any, error) {
		return w.append(ledgerID, topic, norm, gdpr)
	})
	if err != nil {
		return AppendResult{}, fmt.Errorf("append %s/%s: %w", ledgerID, topic, err)
	}
	return res.(AppendResult), nil
}

// head is the state at the end of a topic log.
type head struct {
	seq     uint64
	balance int64
	hash    [32]byte
	date    Date
}

// readHead reads the last entry of (num, topic).
func readHead(tx *bolt.Tx, num uint32, t Topic) (head, error) {
	prefix := topicPrefix(num, t)
	c := tx.Bucket(bucketEntries).Cursor()
	k, v := c.Seek(seqKey(num, t, math.MaxUint64))
	if k == nil || !bytes.Equal(k, seqKey(num, t, math.MaxUint64)) {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return head{}, nil
	}
	var e Entry
	if err := decodeEntry(v, &e, false); err != nil {
		return head{}, fmt.Errorf("%w: last entry of %d/%s: %v", ErrDamaged, num, t, err)
	}
	return head{seq: btoi(k[prefixLen:]), balance: e.BalanceAfter, hash: e.Hash, date: e.LedgerDate}, nil
}

// planned is an entry to write, or a duplicate of a stored one.
type planned struct {
	e    Entry
	gdpr GDPR
	dup  bool
}

func (w *wtx) append(ledgerID string, topic Topic, in []EntryInput, gdpr []GDPR) (any, error) {
	rec, err := w.ledger(ledgerID)
	if err != nil {
		return nil, err
	}
	cal, err := rec.Calendar()
	if err != nil {
		return nil, fmt.Errorf("%w: ledger %s: %v", ErrDamaged, ledgerID, err)
	}
	h, err := w.head(rec.Num, topic)
	if err != nil {
		return nil, err
	}
	// Plan: decide every entry's fate before writing anything.
	open := rec.OpenDate
	ids := w.b.ids
	var dc DateCache
	plan := make([]planned, len(in))
	inBatch := make(map[string]int, len(in))
	res := AppendResult{Sequences: make([]uint64, len(in))}
	for i, e := range in {
		if j, ok := inBatch[e.EntryID]; ok {
			if err := CheckRepeat(i, e, gdpr[i], &plan[j].e, &plan[j].gdpr); err != nil {
				return nil, err
			}
			plan[i] = planned{e: plan[j].e, dup: true}
			continue
		}
		inBatch[e.EntryID] = i
		if v := ids.Get(entryIDKey(rec.Num, topic, e.EntryID)); v != nil {
			stored, g, err := w.s.readEntry(w.Tx, rec, topic, btoi(v), true)
			if err != nil {
				return nil, err
			}
			if err := CheckRepost(i, e, gdpr[i], stored, g); err != nil {
				return nil, err
			}
			plan[i] = planned{e: *stored, gdpr: gdpr[i], dup: true}
			continue
		}
		d := e.LedgerDate
		if d != 0 {
			if err := CheckNamedDate(i, cal, open, d, w.s.now()); err != nil {
				return nil, err
			}
		} else {
			d = max(open, dc.DateOf(cal, e.Time))
		}
		open = max(open, d)
		after, err := AddToBalance(i, topic, h.balance, e.Amount)
		if err != nil {
			return nil, err
		}
		h.seq++
		ent := Entry{
			LedgerID: rec.ID, Topic: topic, Sequence: h.seq, EntryID: e.EntryID,
			PSPReference: e.PSPReference, Time: e.Time, LedgerDate: d, EntryType: e.EntryType,
			Reference: e.Reference, Currency: rec.Currency, Amount: e.Amount,
			BalanceBefore: h.balance, BalanceAfter: after, RecipientHandle: e.RecipientHandle,
			HasGDPR: !gdpr[i].isZero(),
		}
		ent.Hash = ChainHash(h.hash, &ent)
		h.balance, h.hash, h.date = after, ent.Hash, d
		if topic == TopicFunds && IsPayout(e.EntryType) {
			open = d + 1
		}
		plan[i] = planned{e: ent, gdpr: gdpr[i]}
	}

	// Apply. An error from here on may leave partial writes: dirty.
	for i := range plan {
		p := &plan[i]
		res.Record(i, p.e.Sequence, p.dup)
		if p.dup {
			continue
		}
		if err := w.putEntry(rec.Num, &p.e, p.gdpr); err != nil {
			return nil, dirty(err)
		}
	}
	if res.Appended > 0 {
		w.heads[topicKey{rec.Num, topic}] = h
		if !rec.HasEntries {
			rec.HasEntries = true
			w.markChanged(rec)
		}
		w.touched = append(w.touched, watchKey{rec.ID, topic})
	}
	if open != rec.OpenDate {
		w.setOpenDate(rec, open)
	}
	return res, nil
}

// putEntry writes one new entry, its index rows and its sealed GDPR fields.
func (w *wtx) putEntry(num uint32, e *Entry, g GDPR) error {
	key := seqKey(num, e.Topic, e.Sequence)
	if err := w.b.entries.Put(key, encodeEntry(e)); err != nil {
		return err
	}
	if err := w.b.ids.Put(entryIDKey(num, e.Topic, e.EntryID), itob(e.Sequence)); err != nil {
		return err
	}
	if e.Reference != "" { // no one searches for an empty reference
		if err := w.b.refs.Put(refKey(num, e.Topic, e.Reference, e.Sequence), nil); err != nil {
			return err
		}
	}
	if err := w.b.psp.Put(refKey(num, e.Topic, e.PSPReference, e.Sequence), nil); err != nil {
		return err
	}
	if err := w.b.times.Put(timeKey(num, e.Topic, e.Time.UnixMicro(), e.Sequence), nil); err != nil {
		return err
	}
	if e.HasGDPR {
		slot, k, err := w.keys.alloc(w.s.keys)
		if err != nil {
			return err
		}
		if err := w.b.gdpr.Put(key, sealGDPR(slot, k, g, key)); err != nil {
			return err
		}
	}
	w.extendDate(num, e.Topic, e.LedgerDate, e.Sequence)
	return nil
}

// DateCache remembers the bounds of the last date computed, so a run of
// entries in one date costs two comparisons each. The zero value is ready;
// use one per calendar.
type DateCache struct {
	d          Date
	start, end time.Time
}

// DateOf returns cal.DateOf(t), from the cache when t is in the last date.
func (c *DateCache) DateOf(cal Calendar, t time.Time) Date {
	if c.d != 0 && !t.Before(c.start) && t.Before(c.end) {
		return c.d
	}
	c.d = cal.DateOf(t)
	c.start, c.end = cal.Start(c.d), cal.End(c.d)
	return c.d
}

// setOpenDate moves the ledger's open date forward and wakes both topics'
// readers (a date report may have become complete).
func (w *wtx) setOpenDate(rec *ledgerRecord, d Date) {
	if d <= rec.OpenDate {
		return
	}
	if rec.OpenDate != 0 { // dates before the first are not closed: they never opened
		w.closes[closeKey{rec.Num, d}] = w.s.now().UTC().Truncate(time.Microsecond)
	}
	rec.OpenDate = d
	rec.UpdatedAt = w.s.now().UTC()
	w.markChanged(rec)
	for _, t := range Topics {
		w.touched = append(w.touched, watchKey{rec.ID, t})
	}
}

// CheckNamedDate checks date d named by entry i of a batch against the
// ledger's open date (ErrConflict when d is closed) and the clock now (a
// FieldError when d starts more than FutureTimeSkew after now).
func CheckNamedDate(i int, cal Calendar, open, d Date, now time.Time) error {
	if d < open {
		return conflictErr("entries[%d].ledgerDate: ledger date %s is closed; the open date is %s", i, d, open)
	}
	if start := cal.Start(d); start.After(now.Add(futureTimeSkew)) {
		return fieldErr(fmt.Sprintf("entries[%d].ledgerDate", i), "%s has not begun", d)
	}
	return nil
}

// AddToBalance returns balance + amount for entry i of a batch on topic, or
// ErrConflict when the sum overflows int64.
func AddToBalance(i int, topic Topic, balance, amount int64) (int64, error) {
	after, ok := addInt64(balance, amount)
	if !ok {
		return 0, conflictErr("entries[%d].amount: the %s balance %d plus %d overflows int64", i, topic, balance, amount)
	}
	return after, nil
}

// addInt64 adds with overflow detection.
func addInt64(a, b int64) (int64, bool) {
	c := a + b
	if (c > a) != (b > 0) {
		return c, false
	}
	return c, true
}
