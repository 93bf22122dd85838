package feed

import (
	"context"
	"errors"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// MaxPageSize is the most items a page holds.
const MaxPageSize = 1000

// Reader reads pages of a store's logs.
type Reader struct {
	store ledger.EntryReader
}

// NewReader returns a Reader of store.
func NewReader(store ledger.EntryReader) *Reader { return &Reader{store: store} }

// Page is one page of a feed.
type Page struct {
	Entries []ledger.Entry // in sequence order; empty at the end of the log
	Next    uint64         // the sequence the next page starts at
	// TryLater: the page is empty because the log ends before Next.
	TryLater bool
}

// Feed reads up to limit entries of (ledgerID, topic) from sequence from.
// An empty page is the end of the log: TryLater, Next = from.
func (r *Reader) Feed(ledgerID string, topic ledger.Topic, from uint64, limit int, opt ledger.ReadOptions) (Page, error) {
	from = max(from, 1)
	es, err := r.store.Entries(ledgerID, topic, from, limit, opt)
	if err != nil {
		return Page{}, err
	}
	if len(es) == 0 {
		return Page{Next: from, TryLater: true}, nil
	}
	return Page{Entries: es, Next: es[len(es)-1].Sequence + 1}, nil
}

// WaitFeed is Feed that, at the end of the log, waits up to wait for an
// entry at from to be appended, and then answers it. It answers the empty
// page when the wait ends or stop is closed first; ctx ending is its error.
func (r *Reader) WaitFeed(ctx context.Context, ledgerID string, topic ledger.Topic, from uint64, limit int, opt ledger.ReadOptions, wait time.Duration, stop <-chan struct{}) (Page, error) {
	from = max(from, 1)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		ch := r.store.Changed(ledgerID, topic) // before the read: no commit is missed
		p, err := r.Feed(ledgerID, topic, from, limit, opt)
		if err != nil || !p.TryLater || wait <= 0 {
			return p, err
		}
		select {
		case <-ch:
			if !r.store.Ready() {
				return Page{}, ledger.ErrClosed
			}
		case <-deadline.C:
			return p, nil
		case <-stop:
			return p, nil
		case <-ctx.Done():
			return Page{}, ctx.Err()
		}
	}
}

// Start returns the sequence a feed starts at without a cursor: the
// beginning; with now set, the current end of the log; with fromDate set,
// the first entry of that ledger date or of the first later date.
func (r *Reader) Start(ledgerID string, topic ledger.Topic, now bool, fromDate ledger.Date) (uint64, error) {
	if !now && fromDate.IsZero() {
		// Check the ledger exists, so that a start answers like a read.
		_, err := r.store.Head(ledgerID, topic)
		return 1, err
	}
	h, err := r.store.Head(ledgerID, topic)
	if err != nil {
		return 0, err
	}
	if now || h.Sequence == 0 || fromDate > h.LedgerDate {
		return h.Sequence + 1, nil
	}
	// Dates are non-decreasing along the log, so the first date from
	// fromDate on that has entries starts there. The walk spans at most the
	// log's own dates.
	first, err := r.store.Entries(ledgerID, topic, 1, 1, ledger.ReadOptions{})
	if err != nil {
		return 0, err
	}
	if len(first) == 0 || fromDate <= first[0].LedgerDate {
		return 1, nil
	}
	for d := fromDate; d <= h.LedgerDate; d++ {
		seq, _, ok, err := r.store.DateRange(ledgerID, topic, d)
		if err != nil {
			return 0, err
		}
		if ok {
			return seq, nil
		}
	}
	return h.Sequence + 1, nil
}

// DatePage is one page of the report of a ledger date.
type DatePage struct {
	Entries []ledger.Entry
	// HasMore: more entries of the date are there now, from Next.
	HasMore bool
	Next    uint64
	// TryLater: the date is not closed; its report may still grow.
	TryLater bool
}

// Date reads up to limit entries of ledger date d of (ledgerID, topic) from
// sequence from (0: the date's first). A closed date (before the ledger's
// open date) is complete: TryLater false. The open date, a later one, and
// every date of a ledger that has not begun answer TryLater with what they
// hold so far.
func (r *Reader) Date(ledgerID string, topic ledger.Topic, d ledger.Date, from uint64, limit int, opt ledger.ReadOptions) (DatePage, error) {
	// The head first: a date seen closed here was closed before DateRange
	// reads its run, so that run is complete.
	h, err := r.store.Head(ledgerID, topic)
	if err != nil {
		return DatePage{}, err
	}
	closed := !h.OpenDate.IsZero() && d < h.OpenDate
	p := DatePage{TryLater: !closed}
	first, last, ok, err := r.store.DateRange(ledgerID, topic, d)
	if err != nil || !ok {
		return p, err
	}
	if from == 0 {
		from = first
	}
	if from < first || from > last+1 {
		return DatePage{}, &ledger.FieldError{Field: "cursor", Reason: "not a cursor of this date report"}
	}
	if from > last {
		return p, nil
	}
	n := int(min(uint64(limit), last-from+1))
	es, err := r.store.Entries(ledgerID, topic, from, n, opt)
	if err != nil {
		return DatePage{}, err
	}
	if len(es) == 0 {
		return DatePage{}, errors.New("date run indexed but entries missing")
	}
	p.Entries = es
	if next := es[len(es)-1].Sequence + 1; next <= last {
		p.HasMore, p.Next = true, next
	}
	return p, nil
}
