package ledger

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MaxManifestDates is the most dates one manifest read covers.
const MaxManifestDates = 366

// defaultManifestDays is how far before the last date a manifest starts
// when the caller names no first date.
const defaultManifestDays = 30

// TopicSummary sums up one topic of one ledger date. Its JSON names are the
// seal's claim names (docs/seals.md).
type TopicSummary struct {
	EntryCount     int64          `json:"entryCount"`
	EntryTypes     []EntryTypeSum `json:"entryTypes,omitempty"` // sorted by type; not part of a seal
	OpeningBalance int64          `json:"openingBalance"`       // balance before the date's first entry
	ClosingBalance int64          `json:"closingBalance"`       // balance after its last (opening when empty)
	FirstSequence  uint64         `json:"firstSequence"`        // 0 when the date is empty
	LastSequence   uint64         `json:"lastSequence"`         // 0 when the date is empty
	// Digest is the lowercase hex hash of the topic's last entry up to and
	// including the date: the previous date's digest when the date is empty,
	// "" before the topic's first entry ever.
	Digest string `json:"digest"`
}

// EntryTypeSum counts and sums the entries of one type on one date and topic.
type EntryTypeSum struct {
	EntryType string `json:"entryType"`
	Count     int64  `json:"count"`
	Amount    int64  `json:"amount"` // minor units
}

// DateSummary describes one ledger date of a ledger, both topics.
type DateSummary struct {
	Date       Date
	Closed     bool
	Start, End time.Time // [Start, End) in UTC, from the ledger's zone and cutoff
	Funds      TopicSummary
	Fees       TopicSummary
	ClosedAt   time.Time // when the date closed; zero while open (or closed before close times were kept)
	Seal       string    // compact JWS; "" while not sealed (open, or not sealed yet)
	SealedAt   time.Time // zero while not sealed
}

// Topic returns the summary of topic t.
func (d *DateSummary) Topic(t Topic) *TopicSummary {
	if t == TopicFees {
		return &d.Fees
	}
	return &d.Funds
}

// Manifest returns the summaries of the dates from..to (inclusive) of a
// ledger, oldest first. to zero means the ledger's open date; from zero means
// to minus 30 days. Dates after the open date are left out (a ledger with no
// open date yet lists none). A range of more than MaxManifestDates dates, or
// from after an explicit to, is a field error. Sealed dates are answered from their seal
// records; the others are summed from their entries, O(entries of the date).
func (s *Store) Manifest(ledgerID string, from, to Date) ([]DateSummary, error) {
	if from != 0 && to != 0 {
		if err := checkManifestRange(from, to); err != nil {
			return nil, err
		}
	}
	var out []DateSummary
	err := s.view(ledgerID, func(tx *bolt.Tx, rec *ledgerRecord) error {
		last := to
		if last == 0 {
			last = rec.OpenDate
			if last == 0 || from > last {
				out = []DateSummary{} // no open date yet, or from after it
				return nil
			}
		}
		first := from
		if first == 0 {
			first = max(last-defaultManifestDays, 1)
		}
		if err := checkManifestRange(first, last); err != nil {
			return err
		}
		last = min(last, rec.OpenDate)
		if first > last {
			out = []DateSummary{}
			return nil
		}
		var err error
		out, err = summarize(tx, rec, first, last)
		return err
	})
	return out, err
}

func checkManifestRange(from, to Date) error {
	switch {
	case from > to:
		return fieldErr("fromLedgerDate", "%s is after toLedgerDate %s", from, to)
	case to-from+1 > MaxManifestDates:
		return fieldErr("toLedgerDate", "the range %s–%s has %d dates; at most %d", from, to, to-from+1, MaxManifestDates)
	}
	return nil
}

// topicWalk is the state of a topic at the end of the dates walked so far.
type topicWalk struct {
	balance int64
	digest  string // hex; "" before the first entry
}

// summarize sums up the dates from..to of rec (to ≤ the open date), using
// seal records where there are some.
func summarize(tx *bolt.Tx, rec *ledgerRecord, from, to Date) ([]DateSummary, error) {
	cal, err := rec.Calendar()
	if err != nil {
		return nil, fmt.Errorf("%w: ledger %s: %v", ErrDamaged, rec.ID, err)
	}
	var walks [2]topicWalk
	for i, t := range Topics {
		if walks[i], err = walkBefore(tx, rec, t, from); err != nil {
			return nil, err
		}
	}
	seals := tx.Bucket(bucketSeals)
	out := make([]DateSummary, 0, to-from+1)
	for d := from; d <= to; d++ {
		ds := DateSummary{Date: d, Closed: d < rec.OpenDate, Start: cal.Start(d).UTC(), End: cal.End(d).UTC()}
		if ds.Closed {
			ds.ClosedAt, _ = closedAt(tx, rec.Num, d)
		}
		if v := seals.Get(sealKey(rec.Num, d)); v != nil {
			sr, err := unmarshalSeal(v)
			if err != nil {
				return nil, fmt.Errorf("%w: seal of ledger %s date %s: %v", ErrDamaged, rec.ID, d, err)
			}
			ds.Funds, ds.Fees, ds.Seal, ds.SealedAt = sr.Funds, sr.Fees, sr.Seal, sr.SealedAt
		} else {
			for i, t := range Topics {
				if *ds.Topic(t), err = sumDate(tx, rec, t, d, walks[i]); err != nil {
					return nil, err
				}
			}
		}
		for i, t := range Topics {
			ts := ds.Topic(t)
			walks[i] = topicWalk{balance: ts.ClosingBalance, digest: ts.Digest}
		}
		out = append(out, ds)
	}
	return out, nil
}

// walkBefore returns the state of topic t after its last entry dated before d.
func walkBefore(tx *bolt.Tx, rec *ledgerRecord, t Topic, d Date) (topicWalk, error) {
	prefix := topicPrefix(rec.Num, t)
	c := tx.Bucket(bucketDates).Cursor()
	k, v := c.Seek(dateKey(rec.Num, t, d))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return topicWalk{}, nil
	}
	if len(v) != 16 {
		return topicWalk{}, fmt.Errorf("%w: ledger %s %s date index row of %d bytes", ErrDamaged, rec.ID, t, len(v))
	}
	var e Entry
	if err := readStored(tx, rec, t, btoi(v[8:]), &e); err != nil {
		return topicWalk{}, err
	}
	return topicWalk{balance: e.BalanceAfter, digest: hex.EncodeToString(e.Hash[:])}, nil
}

// readStored decodes the stored entry seq of (rec, t) into e, without GDPR.
func readStored(tx *bolt.Tx, rec *ledgerRecord, t Topic, seq uint64, e *Entry) error {
	v := tx.Bucket(bucketEntries).Get(seqKey(rec.Num, t, seq))
	if v == nil {
		return fmt.Errorf("%w: ledger %s %s sequence %d is indexed but missing", ErrDamaged, rec.ID, t, seq)
	}
	*e = Entry{LedgerID: rec.ID, Topic: t, Sequence: seq, Currency: rec.Currency}
	if err := decodeEntry(v, e, false); err != nil {
		return fmt.Errorf("%w: ledger %s %s sequence %d: %v", ErrDamaged, rec.ID, t, seq, err)
	}
	return nil
}

// sumDate sums up date d of topic t from its entries; prev is the topic's
// state after the dates before d.
func sumDate(tx *bolt.Tx, rec *ledgerRecord, t Topic, d Date, prev topicWalk) (TopicSummary, error) {
	ts := TopicSummary{OpeningBalance: prev.balance, ClosingBalance: prev.balance, Digest: prev.digest}
	v := tx.Bucket(bucketDates).Get(dateKey(rec.Num, t, d))
	if v == nil {
		return ts, nil
	}
	if len(v) != 16 {
		return ts, fmt.Errorf("%w: ledger %s %s date index row of %d bytes", ErrDamaged, rec.ID, t, len(v))
	}
	first, last := btoi(v[:8]), btoi(v[8:])
	ts.FirstSequence, ts.LastSequence = first, last
	sums := map[string]*EntryTypeSum{}
	c := tx.Bucket(bucketEntries).Cursor()
	prefix := topicPrefix(rec.Num, t)
	want := first
	var e Entry
	for k, val := c.Seek(seqKey(rec.Num, t, first)); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
		seq := btoi(k[prefixLen:])
		if seq > last {
			break
		}
		if seq != want {
			return ts, fmt.Errorf("%w: ledger %s %s sequence %d missing", ErrDamaged, rec.ID, t, want)
		}
		want++
		e = Entry{LedgerID: rec.ID, Topic: t, Sequence: seq, Currency: rec.Currency}
		if err := decodeEntry(val, &e, false); err != nil {
			return ts, fmt.Errorf("%w: ledger %s %s sequence %d: %v", ErrDamaged, rec.ID, t, seq, err)
		}
		if seq == first {
			ts.OpeningBalance = e.BalanceBefore
		}
		ts.EntryCount++
		s := sums[e.EntryType]
		if s == nil {
			s = &EntryTypeSum{EntryType: e.EntryType}
			sums[e.EntryType] = s
		}
		s.Count++
		var ok bool
		if s.Amount, ok = addInt64(s.Amount, e.Amount); !ok {
			return ts, conflictErr("ledger %s %s date %s: the sum of %s amounts overflows int64", rec.ID, t, d, e.EntryType)
		}
		ts.ClosingBalance = e.BalanceAfter
		ts.Digest = hex.EncodeToString(e.Hash[:])
	}
	if want != last+1 {
		return ts, fmt.Errorf("%w: ledger %s %s sequence %d missing", ErrDamaged, rec.ID, t, want)
	}
	ts.EntryTypes = make([]EntryTypeSum, 0, len(sums))
	for _, s := range sums {
		ts.EntryTypes = append(ts.EntryTypes, *s)
	}
	slices.SortFunc(ts.EntryTypes, func(a, b EntryTypeSum) int { return strings.Compare(a.EntryType, b.EntryType) })
	return ts, nil
}
