package client

import (
	"context"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"time"
)

// Topics are the two topics of every ledger.
var Topics = []string{"funds", "fees"}

// Ledgers yields every ledger the caller may read, following the list's
// cursor. An error ends the iteration.
func (c *Client) Ledgers(ctx context.Context) iter.Seq2[Ledger, error] {
	return func(yield func(Ledger, error) bool) {
		cursor := ""
		for {
			var page struct {
				Items  []Ledger `json:"items"`
				Cursor string   `json:"cursor"`
			}
			q := url.Values{}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			if err := c.get(ctx, "/settlement/v1/ledgers", q, &page); err != nil {
				yield(Ledger{}, err)
				return
			}
			for _, l := range page.Items {
				if !yield(l, nil) {
					return
				}
			}
			if page.Cursor == "" || page.Cursor == cursor {
				return
			}
			cursor = page.Cursor
		}
	}
}

// DateRequest names one page of a date report.
type DateRequest struct {
	LedgerID   string
	Topic      string // "funds" or "fees"
	LedgerDate string // "YYYY-MM-DD"
	Cursor     string // from the previous page; "" for the first
	PageSize   int    // 0: the server's (1000)
	GDPR       bool   // includeGDPRSensitiveData (needs consent)
}

// GetDateReport fetches one page of a date report.
func (c *Client) GetDateReport(ctx context.Context, r DateRequest) (*DatePage, error) {
	q := url.Values{}
	if r.Cursor != "" {
		q.Set("cursor", r.Cursor)
	}
	if r.PageSize > 0 {
		q.Set("pageSize", strconv.Itoa(r.PageSize))
	}
	if r.GDPR {
		q.Set("includeGDPRSensitiveData", "true")
	}
	var p DatePage
	path := "/report/v2/ledgers/" + url.PathEscape(r.LedgerID) + "/" + url.PathEscape(r.Topic) + "/dates/" + url.PathEscape(r.LedgerDate)
	if err := c.get(ctx, path, q, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// DateReport yields the entries of one ledger date in append order,
// following the pages. When the date is not closed yet it yields what the
// date has so far and then ErrDateOpen. Any other error ends the iteration
// too.
func (c *Client) DateReport(ctx context.Context, ledgerID, topic, ledgerDate string) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		r := DateRequest{LedgerID: ledgerID, Topic: topic, LedgerDate: ledgerDate}
		for {
			p, err := c.GetDateReport(ctx, r)
			if err != nil {
				yield(Entry{}, err)
				return
			}
			for _, e := range p.Items {
				if !yield(e, nil) {
					return
				}
			}
			if !p.HasMore || p.Cursor == "" {
				if p.TryLater {
					yield(Entry{}, fmt.Errorf("%s %s %s: %w", ledgerID, topic, ledgerDate, ErrDateOpen))
				}
				return
			}
			r.Cursor = p.Cursor
		}
	}
}

// FeedRequest asks for a feed page, or (FeedPages, FeedFrom) a walk.
type FeedRequest struct {
	LedgerID string
	Topic    string // "funds" or "fees"
	Cursor   string // resume after this page cursor; "" starts at the beginning
	PageSize int    // 0: the server's (1000)
	GDPR     bool   // includeGDPRSensitiveData (needs consent)
	// Wait makes the server hold a request at the end of the log until new
	// entries arrive or Wait has passed (long poll, at most 60 s).
	Wait time.Duration
	// From "now" starts at the current end of the log, FromLedgerDate at
	// the first entry of that date; both only when Cursor is "".
	From           string
	FromLedgerDate string
	// Follow makes FeedPages and FeedFrom go on past the end of the log,
	// long polling (Wait, default 30 s) until ctx ends. Without it they stop
	// at the first page that says tryLater.
	Follow bool
}

// GetFeed fetches one feed page (over gRPC when Config.FeedConn is set).
func (c *Client) GetFeed(ctx context.Context, r FeedRequest) (*FeedPage, error) {
	if c.cfg.FeedConn != nil {
		return c.getFeedGRPC(ctx, c.cfg.FeedConn, r)
	}
	q := url.Values{}
	if r.Cursor != "" {
		q.Set("cursor", r.Cursor)
	} else {
		if r.From != "" {
			q.Set("from", r.From)
		}
		if r.FromLedgerDate != "" {
			q.Set("fromLedgerDate", r.FromLedgerDate)
		}
	}
	if r.PageSize > 0 {
		q.Set("pageSize", strconv.Itoa(r.PageSize))
	}
	if r.GDPR {
		q.Set("includeGDPRSensitiveData", "true")
	}
	if r.Wait > 0 {
		q.Set("wait", strconv.FormatFloat(min(r.Wait, 60*time.Second).Seconds(), 'f', -1, 64)+"s")
	}
	var p FeedPage
	path := "/report/v2/ledgers/" + url.PathEscape(r.LedgerID) + "/" + url.PathEscape(r.Topic) + "/feed"
	if err := c.get(ctx, path, q, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// FeedPages walks a feed page by page from r.Cursor. Pages with no items
// are yielded only when they end a walk that does not follow (the last,
// tryLater page carries the cursor to resume from). An error ends the walk.
func (c *Client) FeedPages(ctx context.Context, r FeedRequest) iter.Seq2[*FeedPage, error] {
	return func(yield func(*FeedPage, error) bool) {
		wait := r.Wait
		if r.Follow && wait <= 0 {
			wait = 30 * time.Second
		}
		r.Wait = 0
		for {
			p, err := c.GetFeed(ctx, r)
			if err != nil {
				yield(nil, err)
				return
			}
			if len(p.Items) > 0 || !r.Follow {
				if !yield(p, nil) {
					return
				}
			}
			if p.Cursor != "" {
				r.Cursor = p.Cursor
			}
			if p.TryLater {
				if !r.Follow {
					return
				}
				r.Wait = wait
			} else {
				r.Wait = 0
			}
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
		}
	}
}

// FeedEntry is one entry of a feed walk. Cursor is set on the last entry of
// each page only: resuming from it continues right after that entry. An
// entry with an empty Cursor cannot be resumed after on its own.
type FeedEntry struct {
	Entry
	Cursor string
}

// Feed follows the feed of a ledger's topic from cursor ("" is the
// beginning) until ctx ends, long polling at the end of the log:
//
//	for e, err := range c.Feed(ctx, "302321", "funds", "") { … }
//
// Every entry comes exactly once, in append order. The iteration ends with
// the first error (ctx's when it is canceled).
func (c *Client) Feed(ctx context.Context, ledgerID, topic, cursor string) iter.Seq2[FeedEntry, error] {
	return c.FeedFrom(ctx, FeedRequest{LedgerID: ledgerID, Topic: topic, Cursor: cursor, Follow: true})
}

// FeedFrom is Feed with every option of r; without r.Follow it stops at the
// end of the log.
func (c *Client) FeedFrom(ctx context.Context, r FeedRequest) iter.Seq2[FeedEntry, error] {
	return func(yield func(FeedEntry, error) bool) {
		for p, err := range c.FeedPages(ctx, r) {
			if err != nil {
				yield(FeedEntry{}, err)
				return
			}
			for i, e := range p.Items {
				fe := FeedEntry{Entry: e}
				if i == len(p.Items)-1 {
					fe.Cursor = p.Cursor
				}
				if !yield(fe, nil) {
					return
				}
			}
		}
	}
}

// GetDateManifest fetches the date manifest of a ledger: one item per date
// from fromDate to toDate (both "YYYY-MM-DD", inclusive; "" lets the server
// choose: 30 dates back, up to the open date), oldest first. A server
// without the manifest answers an error for which IsNotImplemented (501) or
// IsNotFound (404) is true.
func (c *Client) GetDateManifest(ctx context.Context, ledgerID, fromDate, toDate string) ([]DateManifest, error) {
	q := url.Values{}
	if fromDate != "" {
		q.Set("fromLedgerDate", fromDate)
	}
	if toDate != "" {
		q.Set("toLedgerDate", toDate)
	}
	var ans struct {
		Items []DateManifest `json:"items"`
	}
	if err := c.get(ctx, "/report/v2/ledgers/"+url.PathEscape(ledgerID)+"/dates", q, &ans); err != nil {
		return nil, err
	}
	return ans.Items, nil
}
