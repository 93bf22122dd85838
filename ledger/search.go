package ledger

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SearchQuery filters one topic log. Zero fields do not filter.
type SearchQuery struct {
	FromTime     time.Time // time ≥ FromTime
	ToTime       time.Time // time < ToTime
	EntryTypes   []string  // entryType is one of these
	Reference    string    // reference equals this
	PSPReference string    // pspReference equals this

	// Paging, by sequence (exclusive bounds, 0: none). Forward pages take
	// the first Limit matches after After; a Backward page takes the last
	// Limit matches before Before. Either way the page is in sequence order.
	After, Before uint64
	Backward      bool
	Limit         int

	GDPR bool // also return GDPR fields, where present and not erased
}

// SearchPage is one page of matches.
type SearchPage struct {
	Entries []Entry // in sequence order
	HasMore bool    // more matches lie beyond the page in the direction of paging
}

// timeCollectMax is how many rows of the time index a time-only search
// reads to sort them by sequence; a wider time range is searched by walking
// the log in sequence order instead (it then holds at least this many
// matches, so a page is found without walking far). A var for tests.
var timeCollectMax = 10000

// Search returns one page of the entries of a topic log that match q.
// It reads index rows, not the log, when q names a reference or
// pspReference (O(matches of that value)), or a time range holding at most
// timeCollectMax entries. An entryType filter alone walks the log date by
// date, skipping each sealed date whose stored summary has none of the
// types (the seals' per-date entry type counts serve as a coarse index; no
// per-entry index is written on append); so does a wider time range with
// types, and one without walks the log in sequence order. Walks start at the
// page's edge and stop once the page is full.
func (s *Store) Search(ledgerID string, topic Topic, q SearchQuery) (SearchPage, error) {
	if _, err := ParseTopic(string(topic)); err != nil {
		return SearchPage{}, err
	}
	if q.Limit <= 0 {
		return SearchPage{}, fieldErr("limit", "must be positive")
	}
	var out SearchPage
	err := s.view(ledgerID, func(tx *bolt.Tx, rec *ledgerRecord) error {
		m := matcher{q: q, types: q.EntryTypes}
		if !q.FromTime.IsZero() {
			m.from = q.FromTime.UnixMicro()
		} else {
			m.from = math.MinInt64
		}
		if !q.ToTime.IsZero() {
			m.to = q.ToTime.UnixMicro()
		} else {
			m.to = math.MaxInt64
		}
		lo, hi := q.After, q.Before // exclusive
		if hi == 0 {
			hi = math.MaxUint64
		}
		var seqs candidates
		switch {
		case q.Reference != "" && q.PSPReference == "":
			seqs = refCandidates(tx, bucketRefs, refPrefix(rec.Num, topic, q.Reference), lo, hi, q.Backward)
		case q.PSPReference != "":
			seqs = refCandidates(tx, bucketPSPRefs, refPrefix(rec.Num, topic, q.PSPReference), lo, hi, q.Backward)
		case m.from != math.MinInt64 || m.to != math.MaxInt64:
			if m.from >= m.to {
				out.Entries = []Entry{}
				return nil
			}
			var ok bool
			if seqs, ok = timeCandidates(tx, rec.Num, topic, m.from, m.to, lo, hi, q.Backward); ok {
				break
			}
			if len(q.EntryTypes) == 0 {
				seqs = logCandidates(tx, rec.Num, topic, lo, hi, q.Backward)
				break
			}
			fallthrough // a wide time range with types: walk the dates that may hold them
		case len(q.EntryTypes) > 0:
			var err error
			if seqs, err = typeCandidates(tx, rec, topic, q.EntryTypes, lo, hi, q.Backward); err != nil {
				return err
			}
		default:
			seqs = logCandidates(tx, rec.Num, topic, lo, hi, q.Backward)
		}
		out.Entries = make([]Entry, 0, min(q.Limit, 64))
		for {
			seq, ok := seqs()
			if !ok {
				break
			}
			var e Entry
			if err := readStored(tx, rec, topic, seq, &e); err != nil {
				return err
			}
			if !m.match(&e) {
				continue
			}
			if len(out.Entries) == q.Limit {
				out.HasMore = true
				break
			}
			if q.GDPR && e.HasGDPR {
				g, err := s.readGDPR(tx, seqKey(rec.Num, topic, seq))
				if err != nil {
					return err
				}
				e.GDPR = g
			}
			out.Entries = append(out.Entries, e)
		}
		if q.Backward {
			slices.Reverse(out.Entries)
		}
		return nil
	})
	return out, err
}

// matcher checks an entry against every filter of a query.
type matcher struct {
	q        SearchQuery
	from, to int64 // µs, [from, to)
	types    []string
}

func (m *matcher) match(e *Entry) bool {
	t := e.Time.UnixMicro()
	switch {
	case t < m.from || t >= m.to:
		return false
	case m.q.Reference != "" && e.Reference != m.q.Reference:
		return false
	case m.q.PSPReference != "" && e.PSPReference != m.q.PSPReference:
		return false
	case len(m.types) > 0 && !slices.Contains(m.types, e.EntryType):
		return false
	}
	return true
}

// candidates yields sequences in the order of paging, each in (lo, hi),
// a superset of the matches; ok is false at the end.
type candidates func() (seq uint64, ok bool)

// refCandidates walks the rows of one reference (or pspReference) value,
// which sort by sequence after the value's prefix.
func refCandidates(tx *bolt.Tx, bucket []byte, prefix []byte, lo, hi uint64, backward bool) candidates {
	c := tx.Bucket(bucket).Cursor()
	key := func(seq uint64) []byte {
		k := make([]byte, len(prefix), len(prefix)+8)
		copy(k, prefix)
		return append(k, itob(seq)...)
	}
	var k []byte
	started := false
	return func() (uint64, bool) {
		for {
			switch {
			case !started && !backward:
				k, _ = c.Seek(key(lo + 1))
			case !started:
				k, _ = c.Seek(key(hi))
				if k == nil {
					k, _ = c.Last()
				} else {
					k, _ = c.Prev()
				}
			case backward:
				k, _ = c.Prev()
			default:
				k, _ = c.Next()
			}
			started = true
			if k == nil || !bytes.HasPrefix(k, prefix) {
				return 0, false
			}
			if len(k) != len(prefix)+8 {
				continue
			}
			seq := btoi(k[len(prefix):])
			if seq <= lo || seq >= hi {
				return 0, false
			}
			return seq, true
		}
	}
}

// logCandidates walks the topic log itself in sequence order.
func logCandidates(tx *bolt.Tx, num uint32, t Topic, lo, hi uint64, backward bool) candidates {
	prefix := topicPrefix(num, t)
	c := tx.Bucket(bucketEntries).Cursor()
	started := false
	return func() (uint64, bool) {
		var k []byte
		switch {
		case !started && !backward:
			k, _ = c.Seek(seqKey(num, t, lo+1))
		case !started:
			k, _ = c.Seek(seqKey(num, t, hi))
			if k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		case backward:
			k, _ = c.Prev()
		default:
			k, _ = c.Next()
		}
		started = true
		if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != prefixLen+8 {
			return 0, false
		}
		seq := btoi(k[prefixLen:])
		if seq <= lo || seq >= hi {
			return 0, false
		}
		return seq, true
	}
}

// timeCandidates reads the time index rows of [from, to) — they sort by
// time, not sequence — and yields their sequences in (lo, hi) in the order of
// paging. ok is false, with nothing read beyond timeCollectMax+1 rows, when
// the range holds more than timeCollectMax entries.
func timeCandidates(tx *bolt.Tx, num uint32, t Topic, from, to int64, lo, hi uint64, backward bool) (candidates, bool) {
	end := timeKey(num, t, to, 0)
	c := tx.Bucket(bucketTimes).Cursor()
	var seqs []uint64
	n := 0
	for k, _ := c.Seek(timeKey(num, t, from, 0)); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
		if n++; n > timeCollectMax {
			return nil, false
		}
		if seq := btoi(k[prefixLen+8:]); seq > lo && seq < hi {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	if backward {
		slices.Reverse(seqs)
	}
	i := 0
	return func() (uint64, bool) {
		if i == len(seqs) {
			return 0, false
		}
		i++
		return seqs[i-1], true
	}, true
}

// typeCandidates walks the topic log date by date (the dates index gives
// each date's sequence range) in the order of paging, and yields the
// sequences of each date that may hold one of types: an unsealed date, or a
// sealed one whose stored summary counts one of them.
func typeCandidates(tx *bolt.Tx, rec *ledgerRecord, t Topic, types []string, lo, hi uint64, backward bool) (candidates, error) {
	prefix := topicPrefix(rec.Num, t)
	dates := tx.Bucket(bucketDates).Cursor()
	seals := tx.Bucket(bucketSeals)
	// Position the date cursor on the date of the page's edge.
	var k, v []byte
	edge := lo + 1
	if backward {
		edge = hi - 1
	}
	var e Entry
	switch {
	case !backward && lo == 0:
		k, v = dates.Seek(prefix)
	case backward && hi == math.MaxUint64:
		k, v = dates.Seek(dateKey(rec.Num, t, Date(math.MaxInt32)))
		if k == nil {
			k, v = dates.Last()
		} else {
			k, v = dates.Prev()
		}
	case tx.Bucket(bucketEntries).Get(seqKey(rec.Num, t, edge)) == nil:
		// The edge is beyond the log (forward) or before it (backward, hi 1).
		return func() (uint64, bool) { return 0, false }, nil
	default:
		if err := readStored(tx, rec, t, edge, &e); err != nil {
			return nil, err
		}
		k, v = dates.Seek(dateKey(rec.Num, t, e.LedgerDate))
	}
	var next, end uint64 // the current date's sequences still to yield, next → end
	have := false
	step := func() {
		if backward {
			k, v = dates.Prev()
		} else {
			k, v = dates.Next()
		}
	}
	wanted := func(d Date) bool {
		sv := seals.Get(sealKey(rec.Num, d))
		if sv == nil {
			return true
		}
		sr, err := unmarshalSeal(sv)
		if err != nil {
			return true // the entries decide
		}
		ts := sr.Funds
		if t == TopicFees {
			ts = sr.Fees
		}
		for _, s := range ts.EntryTypes {
			if slices.Contains(types, s.EntryType) {
				return true
			}
		}
		return false
	}
	return func() (uint64, bool) {
		for {
			if have {
				seq := next
				if next == end {
					have = false
				} else if backward {
					next--
				} else {
					next++
				}
				return seq, true
			}
			if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != prefixLen+4 || len(v) != 16 {
				return 0, false
			}
			rowFirst, rowLast := btoi(v[:8]), btoi(v[8:])
			first, last := max(rowFirst, lo+1), min(rowLast, hi-1)
			d := Date(binary.BigEndian.Uint32(k[prefixLen:]))
			step()
			if first > last {
				if backward && rowLast <= lo || !backward && rowFirst >= hi {
					return 0, false // past the page's far bound
				}
				continue
			}
			if !wanted(d) {
				continue
			}
			have = true
			if backward {
				next, end = last, first
			} else {
				next, end = first, last
			}
		}
	}, nil
}
