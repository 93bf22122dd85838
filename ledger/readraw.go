package ledger

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// RawEntry is a stored entry as VisitEntries shows it: the stored fields
// without copying or decoding them. Its byte slices point into the store's
// memory and are valid only until the visit's fn returns; fn must not keep
// them or change them. The fields mean what Entry's do.
type RawEntry struct {
	Sequence        uint64
	Currency        string // the ledger's
	PSPReference    []byte
	TimeMicros      int64 // µs since 1970-01-01T00:00:00Z (Entry.Time)
	LedgerDate      Date
	EntryType       []byte
	Reference       []byte
	Amount          int64
	BalanceBefore   int64
	BalanceAfter    int64
	HasRecipient    bool   // false: recipientHandle is null
	RecipientHandle []byte // when HasRecipient
	HasGDPR         bool
	GDPR            *GDPR // as Entry.GDPR: when asked for, posted and not erased
}

// VisitEntries calls fn with each of up to limit entries of a topic log
// with sequence ≥ from, in sequence order: the entries Entries returns for
// the same arguments, shown in place instead of copied into Entry values, so
// that a caller writing them out (the REST pages) allocates nothing per
// entry. It returns how many it visited; none means the log ends before
// from. fn runs inside the read transaction: it must be quick, and must not
// call the store. Its error ends the visit and is returned as it is. The
// same *RawEntry is passed each time.
func (s *Store) VisitEntries(ledgerID string, topic Topic, from uint64, limit int, gdpr bool, fn func(*RawEntry) error) (int, error) {
	if _, err := ParseTopic(string(topic)); err != nil {
		return 0, err
	}
	n := 0
	err := s.view(ledgerID, func(tx *bolt.Tx, rec *ledgerRecord) error {
		prefix := topicPrefix(rec.Num, topic)
		c := tx.Bucket(bucketEntries).Cursor()
		e := RawEntry{Currency: rec.Currency}
		for k, v := c.Seek(seqKey(rec.Num, topic, max(from, 1))); k != nil && bytes.HasPrefix(k, prefix) && n < limit; k, v = c.Next() {
			e.Sequence = btoi(k[prefixLen:])
			if err := decodeRaw(v, &e); err != nil {
				return fmt.Errorf("%w: ledger %s %s sequence %d: %v", ErrDamaged, rec.ID, topic, e.Sequence, err)
			}
			e.GDPR = nil
			if gdpr && e.HasGDPR {
				g, err := s.readGDPR(tx, k)
				if err != nil {
					return err
				}
				e.GDPR = g
			}
			if err := fn(&e); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
