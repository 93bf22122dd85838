package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgerfeed/ledgerfeed/feed"
	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// reportAPI is the ReportService's Vipps-compatible reads: ListLedgers,
// GetDateReport, GetFeed (with the wait long poll) and SubscribeFeed. The
// chain has authenticated the caller, checked scope read and the rate limit,
// and audits each call. Every handler checks the ledger grant first
// (requireLedger), before it looks at anything else of the request, so that a
// ledger without a grant answers exactly like an unknown one. A REST
// GetFeed or GetDateReport writes its answer's JSON straight from the store
// (page_json.go); gRPC builds the messages. The extensions are in
// manifest.go, search.go and files.go.
type reportAPI struct {
	v1.UnimplementedReportServiceServer
	srv     *Server
	store   ledger.Backend
	reader  *feed.Reader
	cursors *feed.Cursors
}

// Report API limits and names.
const (
	maxFeedWait            = 60 * time.Second
	defaultHeartbeat       = 15 * time.Second
	minHeartbeat           = time.Second
	maxHeartbeat           = 5 * time.Minute
	defaultLedgersPageSize = 1000
	mdFeedPageSize         = "vipps-feed-page-size" // REST: Vipps-Feed-Page-Size
	queryPageSize          = "pageSize"
)

// readTarget checks the grant, topic and GDPR flag of a read of
// (ledgerID, topic).
func readTarget(ctx context.Context, ledgerID, topicName string, gdpr bool) (ledger.Topic, ledger.ReadOptions, error) {
	if err := requireLedger(ctx, ledgerID); err != nil {
		return "", ledger.ReadOptions{}, err
	}
	topic, err := ledger.ParseTopic(topicName)
	if err != nil {
		return "", ledger.ReadOptions{}, err
	}
	if gdpr {
		if err := requireGDPR(ctx, ledgerID); err != nil {
			return "", ledger.ReadOptions{}, err
		}
	}
	return topic, ledger.ReadOptions{GDPR: gdpr}, nil
}

// storeErr makes a store's NotFound of ledgerID read like requireLedger's.
func storeErr(ledgerID string, err error) error {
	if errors.Is(err, ledger.ErrNotFound) {
		return ledgerNotFound(ledgerID)
	}
	return err
}

// sendPageSize sends the page size in force as header metadata (REST:
// the Vipps-Feed-Page-Size header).
func sendPageSize(ctx context.Context, n int) {
	grpc.SetHeader(ctx, metadata.Pairs(mdFeedPageSize, strconv.Itoa(n)))
}

func (a *reportAPI) ListLedgers(ctx context.Context, req *v1.ListLedgersRequest) (*v1.ListLedgersResponse, error) {
	p := principalOf(ctx)
	if p == nil {
		return nil, errors.New("report call without a principal")
	}
	size, err := pageSize(req.GetPageSize(), defaultLedgersPageSize, feed.MaxPageSize)
	if err != nil {
		return nil, err
	}
	filter := req.GetSettlesForRecipientHandles()
	scope := append([]string{p.ClientID}, filter...)
	var after string
	if c := req.GetCursor(); c != "" {
		if after, err = a.cursors.ParseList(c, scope); err != nil {
			return nil, err
		}
	}
	ids := make([]string, 0, len(p.Client.Grants))
	for _, g := range p.Client.Grants {
		if g.LedgerID > after && p.CanRead(g.LedgerID) {
			ids = append(ids, g.LedgerID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := &v1.ListLedgersResponse{Items: []*v1.Ledger{}}
	for _, id := range ids {
		l, err := a.store.GetLedger(id)
		if errors.Is(err, ledger.ErrNotFound) {
			continue // a grant for a ledger not made (yet)
		}
		if err != nil {
			return nil, err
		}
		if !settlesFor(l, filter) {
			continue
		}
		if len(out.Items) == size {
			out.Cursor = a.cursors.List(scope, out.Items[len(out.Items)-1].GetLedgerId())
			break
		}
		out.Items = append(out.Items, publicLedger(l))
	}
	return out, nil
}

// settlesFor reports whether l settles for one of handles (all when none).
func settlesFor(l ledger.Ledger, handles []string) bool {
	if len(handles) == 0 {
		return true
	}
	for _, h := range handles {
		if slices.Contains(l.SettlesForRecipientHandles, h) {
			return true
		}
	}
	return false
}

func (a *reportAPI) GetFeed(ctx context.Context, req *v1.GetFeedRequest) (*v1.GetFeedResponse, error) {
	id := req.GetLedgerId()
	topic, opt, err := readTarget(ctx, id, req.GetTopic(), req.GetIncludeGdprSensitiveData())
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize(), feed.MaxPageSize, feed.MaxPageSize)
	if err != nil {
		return nil, err
	}
	var wait time.Duration
	if w := req.GetWait(); w != nil {
		if err := w.CheckValid(); err != nil {
			return nil, &ledger.FieldError{Field: "wait", Reason: "not a duration"}
		}
		wait = w.AsDuration()
		if wait < 0 || wait > maxFeedWait {
			return nil, &ledger.FieldError{Field: "wait", Reason: "must be 0s–60s"}
		}
	}
	from, cursor, err := a.feedStart(id, topic, req.GetCursor(), req.GetFrom(), req.GetFromLedgerDate())
	if err != nil {
		return nil, err
	}
	sendPageSize(ctx, size)
	if st, pg := restStateOf(ctx), restPageOf(ctx); st != nil && pg != nil {
		return a.restFeed(ctx, st, pg, id, topic, from, cursor, size, opt, wait) // page_json.go
	}
	buf := getEntryBuf(size)
	defer putEntryBuf(buf) // the answer holds nothing of it (pool.go)
	opt.Buf = *buf
	var page feed.Page
	if wait > 0 {
		page, err = a.reader.Feed(id, topic, from, size, opt)
		if err == nil && page.TryLater {
			release, perr := a.srv.polls.acquire(principalOf(ctx).ClientID)
			if perr != nil {
				return nil, perr
			}
			page, err = a.reader.WaitFeed(ctx, id, topic, from, size, opt, wait, a.srv.stopping)
			release()
		}
	} else {
		page, err = a.reader.Feed(id, topic, from, size, opt)
	}
	if err != nil {
		return nil, storeErr(id, err)
	}
	out := &v1.GetFeedResponse{Items: pageToProto(ctx, page.Entries), TryLater: page.TryLater, Cursor: cursor}
	if !page.TryLater || cursor == "" {
		out.Cursor = a.cursors.Feed(id, topic, page.Next)
	}
	return out, nil
}

// feedStart returns the sequence a feed read starts at and the caller's
// cursor ("" when it sent none): the cursor's position, else the start
// position of from / fromLedgerDate.
func (a *reportAPI) feedStart(id string, topic ledger.Topic, cursor, from, fromDate string) (uint64, string, error) {
	if cursor != "" {
		seq, err := a.cursors.ParseFeed(cursor, id, topic)
		return seq, cursor, err
	}
	var now bool
	var d ledger.Date
	switch {
	case from != "" && fromDate != "":
		return 0, "", &ledger.FieldError{Field: "from", Reason: "from and fromLedgerDate exclude each other"}
	case from == "now":
		now = true
	case from != "":
		return 0, "", &ledger.FieldError{Field: "from", Reason: fmt.Sprintf("%q is not a start position (now)", from)}
	case fromDate != "":
		var err error
		if d, err = ledger.ParseDate(fromDate); err != nil {
			return 0, "", &ledger.FieldError{Field: "fromLedgerDate", Reason: err.Error()}
		}
	}
	seq, err := a.reader.Start(id, topic, now, d)
	return seq, "", storeErr(id, err)
}

func (a *reportAPI) GetDateReport(ctx context.Context, req *v1.GetDateReportRequest) (*v1.GetDateReportResponse, error) {
	id := req.GetLedgerId()
	topic, opt, err := readTarget(ctx, id, req.GetTopic(), req.GetIncludeGdprSensitiveData())
	if err != nil {
		return nil, err
	}
	d, err := ledger.ParseDate(req.GetLedgerDate())
	if err != nil {
		return nil, &ledger.FieldError{Field: "ledgerDate", Reason: err.Error()}
	}
	size, err := pageSize(req.GetPageSize(), feed.MaxPageSize, feed.MaxPageSize)
	if err != nil {
		return nil, err
	}
	var from uint64
	if c := req.GetCursor(); c != "" {
		if from, err = a.cursors.ParseDate(c, id, topic, d); err != nil {
			return nil, err
		}
	}
	sendPageSize(ctx, size)
	if st, pg := restStateOf(ctx), restPageOf(ctx); st != nil && pg != nil {
		return a.restDate(st, pg, id, topic, d, from, size, opt) // page_json.go
	}
	buf := getEntryBuf(size)
	defer putEntryBuf(buf) // the answer holds nothing of it (pool.go)
	opt.Buf = *buf
	page, err := a.reader.Date(id, topic, d, from, size, opt)
	if err != nil {
		return nil, storeErr(id, err)
	}
	out := &v1.GetDateReportResponse{Items: pageToProto(ctx, page.Entries), HasMore: page.HasMore, TryLater: page.TryLater}
	if page.HasMore {
		out.Cursor = a.cursors.Date(id, topic, d, page.Next)
	}
	return out, nil
}

// publicLedger is a ledger as the report API shows it.
func publicLedger(l ledger.Ledger) *v1.Ledger {
	out := &v1.Ledger{
		LedgerId:                   l.ID,
		Currency:                   l.Currency,
		PayoutBankAccount:          &v1.BankAccount{Scheme: l.PayoutBankAccount.Scheme, Id: l.PayoutBankAccount.ID},
		Owner:                      &v1.Organization{Scheme: l.Owner.Scheme, Id: l.Owner.ID},
		SettlesForRecipientHandles: nonNil(l.SettlesForRecipientHandles),
		SalesUnits:                 make([]*v1.SalesUnit, 0, len(l.SalesUnits)),
	}
	for _, u := range l.SalesUnits {
		out.SalesUnits = append(out.SalesUnits, &v1.SalesUnit{
			Name:               u.Name,
			RecipientHandle:    u.RecipientHandle,
			BusinessIdentifier: &v1.BusinessIdentifier{Scheme: u.BusinessIdentifier.Scheme, Id: u.BusinessIdentifier.ID},
		})
	}
	return out
}

// entriesToProto converts entries as read; GDPR fields only where the read
// returned them.
func entriesToProto(es []ledger.Entry) []*v1.Entry {
	// A page is hundreds of entries: their messages and timestamps are
	// allocated in one block each.
	return fillEntries(make([]*v1.Entry, len(es)), make([]v1.Entry, len(es)), make([]timestamppb.Timestamp, len(es)), es)
}

// fillEntries sets out[i] to msgs[i], with tss[i] as its time, converted
// from es[i], and returns out. Every field is set, so msgs may be reused
// (pool.go); a date's string is made once for the run of entries that share
// it.
func fillEntries(out []*v1.Entry, msgs []v1.Entry, tss []timestamppb.Timestamp, es []ledger.Entry) []*v1.Entry {
	var date ledger.Date
	var dateStr string
	for i := range es {
		e := &es[i]
		if i == 0 || e.LedgerDate != date {
			date, dateStr = e.LedgerDate, e.LedgerDate.String()
		}
		ts := &tss[i]
		ts.Seconds, ts.Nanos = e.Time.Unix(), int32(e.Time.Nanosecond())
		pe := &msgs[i]
		pe.PspReference = e.PSPReference
		pe.Time = ts
		pe.LedgerDate = dateStr
		pe.EntryType = e.EntryType
		pe.Reference = e.Reference
		pe.Currency = e.Currency
		pe.Amount = e.Amount
		pe.BalanceBefore = e.BalanceBefore
		pe.BalanceAfter = e.BalanceAfter
		pe.RecipientHandle = e.RecipientHandle
		pe.Name, pe.MaskedPhoneNo, pe.Message = nil, nil, nil
		if g := e.GDPR; g != nil {
			pe.Name, pe.MaskedPhoneNo, pe.Message = &g.Name, &g.MaskedPhoneNo, &g.Message
		}
		out[i] = pe
	}
	return out
}

// reportQuery checks, for REST report calls, what the gateway's query
// parsing cannot tell apart from "unset": an explicit pageSize=0. The error
// is kept in the request's state and reported by the chain after the caller
// is authenticated (like a bad body), so a caller without a valid token gets
// 401 first.
func reportQuery(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if vs, ok := r.URL.Query()[queryPageSize]; ok {
			for _, v := range vs {
				if n, err := strconv.Atoi(v); err == nil && n <= 0 {
					if st := restStateOf(r.Context()); st != nil && st.decodeErr == nil {
						st.decodeErr = &ledger.FieldError{Field: queryPageSize, Reason: fmt.Sprintf("must be 1–%d", feed.MaxPageSize)}
					}
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}
