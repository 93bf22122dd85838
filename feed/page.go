package feed

import (
	"context"
	"errors"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// MaxPageSize is the most items a page holds.
const MaxPageSize = 1000

// Reader reads pages of a store's logs. Its waits (WaitFeed, Follow) share
// their reads through one fan-out (fanout.go): use one Reader per store.
type Reader struct {
	store ledger.EntryReader
	fan   *fanout
}

// NewReader returns a Reader of store.
func NewReader(store ledger.EntryReader) *Reader {
	return &Reader{store: store, fan: newFanout(store)}
}

// Page is one page of a feed. A page from WaitFeed or Follow may be shared
// with other followers (Shared, Memo): its Entries are read-only.
type Page struct {
	Entries []ledger.Entry // in sequence order; empty at the end of the log
	Next    uint64         // the sequence the next page starts at
	// TryLater: the page is empty because the log ends before Next.
	TryLater bool

	memo *memo // set on a page handed to several followers
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
// Callers waiting at the same position share one read (fanout.go): the
// page answered is never in opt.Buf.
func (r *Reader) WaitFeed(ctx context.Context, ledgerID string, topic ledger.Topic, from uint64, limit int, opt ledger.ReadOptions, wait time.Duration, stop <-chan struct{}) (Page, error) {
	from = max(from, 1)
	if wait <= 0 {
		return r.Feed(ledgerID, topic, from, limit, opt)
	}
	rd := r.fan.join(ledgerID, topic, from, limit, opt)
	select {
	case <-rd.done:
		return rd.page, rd.err
	default:
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	select {
	case <-rd.done:
		return rd.page, rd.err
	case <-deadline.C:
	case <-stop:
	case <-ctx.Done():
		r.fan.leave(ledgerID, topic, rd)
		return Page{}, ctx.Err()
	}
	r.fan.leave(ledgerID, topic, rd)
	select {
	case <-rd.done: // published as the wait ended: answer it
		return rd.page, rd.err
	default:
		return Page{Next: from, TryLater: true}, nil
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
