package ledger

import (
	"bytes"
	"fmt"
	"math"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// Head is the state at the end of a topic log.
type Head struct {
	Sequence   uint64   // last sequence; 0 when the log is empty
	Balance    int64    // balance after the last entry
	Hash       [32]byte // hash of the last entry (the chain digest)
	LedgerDate Date     // date of the last entry
	OpenDate   Date     // the ledger's open date (ledger-wide)
}

// view runs fn in a read transaction on the ledger record of id.
func (s *Store) view(id string, fn func(tx *bolt.Tx, rec *ledgerRecord) error) error {
	if !s.Ready() {
		return ErrClosed
	}
	return s.viewTx(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLedgers).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("ledger %s: %w", id, ErrNotFound)
		}
		// Shared by every reader of the same record: fn must not change it.
		rec, err := s.ledgerRecs.get(id, v, unmarshalLedger)
		if err != nil {
			return err
		}
		return fn(tx, rec)
	})
}

// viewTx runs fn in a read transaction. A panic from bbolt on a damaged
// page becomes an ErrDamaged error for this caller instead of a crash.
func (s *Store) viewTx(fn func(tx *bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damagedPanic(r)
			s.log.Error("damaged page met in a read", "err", err)
		}
	}()
	return s.db.View(fn)
}

// Head returns the end of a topic log.
func (s *Store) Head(ledgerID string, topic Topic) (Head, error) {
	if _, err := ParseTopic(string(topic)); err != nil {
		return Head{}, err
	}
	var out Head
	err := s.view(ledgerID, func(tx *bolt.Tx, rec *ledgerRecord) error {
		h, err := readHead(tx, rec.Num, topic)
		out = Head{Sequence: h.seq, Balance: h.balance, Hash: h.hash, LedgerDate: h.date, OpenDate: rec.OpenDate}
		return err
	})
	return out, err
}

// readEntry reads one entry of rec's topic; with gdpr set it also returns its
// GDPR fields (nil when none or erased).
func (s *Store) readEntry(tx *bolt.Tx, rec *ledgerRecord, topic Topic, seq uint64, gdpr bool) (*Entry, *GDPR, error) {
	key := seqKey(rec.Num, topic, seq)
	v := tx.Bucket(bucketEntries).Get(key)
	if v == nil {
		return nil, nil, fmt.Errorf("%w: ledger %s %s sequence %d is indexed but missing", ErrDamaged, rec.ID, topic, seq)
	}
	e := &Entry{LedgerID: rec.ID, Topic: topic, Sequence: seq, Currency: rec.Currency}
	if err := decodeEntry(v, e, false); err != nil {
		return nil, nil, fmt.Errorf("%w: ledger %s %s sequence %d: %v", ErrDamaged, rec.ID, topic, seq, err)
	}
	var g *GDPR
	if gdpr && e.HasGDPR {
		var err error
		if g, err = s.readGDPR(tx, key); err != nil {
			return nil, nil, err
		}
		e.GDPR = g
	}
	return e, g, nil
}

func (s *Store) readGDPR(tx *bolt.Tx, key []byte) (*GDPR, error) {
	v := tx.Bucket(bucketGDPR).Get(key)
	if v == nil {
		return nil, nil // erased
	}
	g, err := s.keys.openGDPR(v, key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	return g, nil
}

// ReadOptions shape the entries a read returns.
type ReadOptions struct {
	GDPR bool // also return GDPR fields (Entry.GDPR), where present and not erased
	// Buf, when large enough, holds the answer (Buf[:0] is appended to):
	// a reader's reusable buffer, so that a page read allocates no slice.
	Buf []Entry
}

// Entries returns up to limit entries of a topic log with sequence ≥ from,
// in sequence order. An empty answer means the log ends before from.
func (s *Store) Entries(ledgerID string, topic Topic, from uint64, limit int, opt ReadOptions) ([]Entry, error) {
	if _, err := ParseTopic(string(topic)); err != nil {
		return nil, err
	}
	var out []Entry
	err := s.view(ledgerID, func(tx *bolt.Tx, rec *ledgerRecord) error {
		var err error
		out, err = s.scan(tx, rec, topic, from, 0, limit, opt)
		return err
	})
	return out, err
}

// scan reads entries from..to (to 0: no bound) of a topic, at most limit.
func (s *Store) scan(tx *bolt.Tx, rec *ledgerRecord, topic Topic, from, to uint64, limit int, opt ReadOptions) ([]Entry, error) {
	prefix := topicPrefix(rec.Num, topic)
	c := tx.Bucket(bucketEntries).Cursor()
	// Sized to what the page will hold: the entries up to the log's end,
	// to and limit. An empty poll allocates nothing.
	want := uint64(limit)
	if to != 0 && to >= from {
		want = min(want, to-max(from, 1)+1)
	}
	k, _ := c.Seek(seqKey(rec.Num, topic, math.MaxUint64))
	if k == nil || !bytes.HasPrefix(k, prefix) || btoi(k[prefixLen:]) != math.MaxUint64 {
		k, _ = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	last := btoi(k[prefixLen:])
	if last < max(from, 1) {
		return nil, nil
	}
	want = min(want, last-max(from, 1)+1)
	var out []Entry
	if uint64(cap(opt.Buf)) >= want {
		out = opt.Buf[:0]
	} else {
		out = make([]Entry, 0, want)
	}
	for k, v := c.Seek(seqKey(rec.Num, topic, max(from, 1))); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Next() {
		seq := btoi(k[prefixLen:])
		if to != 0 && seq > to {
			break
		}
		e := Entry{LedgerID: rec.ID, Topic: topic, Sequence: seq, Currency: rec.Currency}
		if n := len(out); n > 0 {
			e.RecipientHandle = out[n-1].RecipientHandle // shared when equal
		}
		if err := decodeEntry(v, &e, false); err != nil {
			return nil, fmt.Errorf("%w: ledger %s %s sequence %d: %v", ErrDamaged, rec.ID, topic, seq, err)
		}
		if opt.GDPR && e.HasGDPR {
			g, err := s.readGDPR(tx, k)
			if err != nil {
				return nil, err
			}
			e.GDPR = g
		}
		out = append(out, e)
	}
	return out, nil
}

// DateRange returns the first and last sequence of a date in a topic log;
// ok is false when the date has no entries in it (yet).
func (s *Store) DateRange(ledgerID string, topic Topic, d Date) (first, last uint64, ok bool, err error) {
	if _, err := ParseTopic(string(topic)); err != nil {
		return 0, 0, false, err
	}
	err = s.view(ledgerID, func(tx *bolt.Tx, rec *ledgerRecord) error {
		v := tx.Bucket(bucketDates).Get(dateKey(rec.Num, topic, d))
		if len(v) == 16 {
			first, last, ok = btoi(v[:8]), btoi(v[8:]), true
		}
		return nil
	})
	return first, last, ok, err
}

// Index names a secondary index of a topic log.
type Index int

const (
	ByReference    Index = iota // the merchant's reference
	ByPSPReference              // the PSP reference
)

// Lookup returns the sequences of up to limit entries whose reference (or
// pspReference) equals value, in sequence order, starting after sequence
// after. It reads only the matching index rows. Entries with an empty
// reference are not indexed by it.
func (s *Store) Lookup(ledgerID string, topic Topic, by Index, value string, after uint64, limit int) ([]uint64, error) {
	if _, err := ParseTopic(string(topic)); err != nil {
		return nil, err
	}
	bucket := bucketRefs
	if by == ByPSPReference {
		bucket = bucketPSPRefs
	}
	var out []uint64
	err := s.view(ledgerID, func(tx *bolt.Tx, rec *ledgerRecord) error {
		prefix := refPrefix(rec.Num, topic, value)
		c := tx.Bucket(bucket).Cursor()
		for k, _ := c.Seek(refKey(rec.Num, topic, value, after+1)); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
			if len(k) == len(prefix)+8 {
				out = append(out, btoi(k[len(prefix):]))
			}
		}
		return nil
	})
	return out, err
}

// LookupTime returns the sequences of up to limit entries whose time is in
// [fromMicros, toMicros), ordered by time then sequence.
func (s *Store) LookupTime(ledgerID string, topic Topic, fromMicros, toMicros int64, limit int) ([]uint64, error) {
	if _, err := ParseTopic(string(topic)); err != nil {
		return nil, err
	}
	var out []uint64
	err := s.view(ledgerID, func(tx *bolt.Tx, rec *ledgerRecord) error {
		end := timeKey(rec.Num, topic, toMicros, 0)
		c := tx.Bucket(bucketTimes).Cursor()
		for k, _ := c.Seek(timeKey(rec.Num, topic, fromMicros, 0)); k != nil && bytes.Compare(k, end) < 0 && len(out) < limit; k, _ = c.Next() {
			out = append(out, btoi(k[prefixLen+8:]))
		}
		return nil
	})
	return out, err
}
