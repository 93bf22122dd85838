package pgstore

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Search returns one page of the entries of a topic log that match q, as
// the bbolt store does: forward pages hold the first q.Limit matches after
// q.After, backward pages the last q.Limit matches before q.Before, either
// way in sequence order; HasMore says more matches lie beyond the page in
// the direction of paging. One statement, so one snapshot: the filters go
// to PostgreSQL, which reads the reference, pspReference or time index, or
// walks the log by sequence for an entry type filter alone (stopping once
// the page is full; a rare type on a long log reads the log).
func (s *Store) Search(ledgerID string, topic ledger.Topic, q ledger.SearchQuery) (ledger.SearchPage, error) {
	if _, err := ledger.ParseTopic(string(topic)); err != nil {
		return ledger.SearchPage{}, err
	}
	if q.Limit <= 0 {
		return ledger.SearchPage{}, &ledger.FieldError{Field: "limit", Reason: "must be positive"}
	}
	if err := s.checkOpen(); err != nil {
		return ledger.SearchPage{}, err
	}
	out := ledger.SearchPage{Entries: []ledger.Entry{}}
	num, currency, err := s.fixedLedger(ledgerID)
	if err != nil || num == 0 {
		return out, err // not found, or no entries yet
	}
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.FromTime.IsZero() {
		from = q.FromTime.UnixMicro()
	}
	if !q.ToTime.IsZero() {
		to = q.ToTime.UnixMicro()
	}
	lo, hi := int64(min(q.After, math.MaxInt64)), int64(math.MaxInt64)
	if q.Before != 0 {
		hi = int64(min(q.Before, math.MaxInt64))
	}
	args := []any{num, topicCode(topic), lo, hi}
	where := "e.num = $1 AND e.topic = $2 AND e.seq > $3 AND e.seq < $4"
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if from != math.MinInt64 || to != math.MaxInt64 {
		where += " AND e.time_us >= " + arg(from) + " AND e.time_us < " + arg(to)
	}
	if q.Reference != "" {
		where += " AND e.reference = " + arg(q.Reference) + " AND e.reference <> ''"
	}
	if q.PSPReference != "" {
		where += " AND e.psp_reference = " + arg(q.PSPReference)
	}
	if len(q.EntryTypes) > 0 {
		where += " AND e.entry_type = ANY(" + arg(q.EntryTypes) + "::text[])"
	}
	order := "e.seq"
	if q.Backward {
		order = "e.seq DESC"
	}
	gdprCols, gdprJoin := "", ""
	if q.GDPR {
		gdprCols = ", g.sealed, k.key"
		gdprJoin = ` LEFT JOIN gdpr g ON g.num = e.num AND g.topic = e.topic AND g.seq = e.seq
			LEFT JOIN gdpr_keys k ON k.num = e.num AND k.topic = e.topic AND k.seq = e.seq`
	}
	rows, err := s.pool.Query(context.Background(), `SELECT `+entryCols+gdprCols+` FROM entries e`+gdprJoin+`
		WHERE `+where+` ORDER BY `+order+` LIMIT `+arg(int64(q.Limit)+1), args...)
	if err != nil {
		return ledger.SearchPage{}, err
	}
	defer rows.Close()
	for rows.Next() {
		if len(out.Entries) == q.Limit {
			out.HasMore = true
			break
		}
		e := ledger.Entry{LedgerID: ledgerID, Topic: topic, Currency: currency}
		sealed, key, err := scanEntry(rows, &e, q.GDPR)
		if err != nil {
			return ledger.SearchPage{}, err
		}
		if q.GDPR {
			if e.GDPR, err = openEntryGDPR(&e, num, sealed, key); err != nil {
				return ledger.SearchPage{}, err
			}
		}
		out.Entries = append(out.Entries, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return ledger.SearchPage{}, err
	}
	if q.Backward {
		slices.Reverse(out.Entries)
	}
	return out, nil
}
