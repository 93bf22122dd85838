package server

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgerfeed/ledgerfeed/feed"
	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// REST pages straight from the store. A REST GetFeed or GetDateReport does
// not build a page of *v1.Entry messages only for the marshaler to walk
// them: the handler writes the answer's JSON itself, from the store's
// records as the read visits them (ledger.Store.VisitEntries; a store
// without it, such as pgstore, from the []ledger.Entry it reads), into a
// pooled buffer, and leaves it in the request's restPage; preEncode
// (pool.go) hands those bytes to the gateway's writer for exactly that
// response message. The message itself carries tryLater, hasMore and the
// cursor but no items. gRPC calls keep the protobuf path. The bytes are
// those the generic marshaler (appendMessage) writes for the same page;
// TestPageJSON_* hold the two together.

// entryVisitor is a store that shows a read's entries in place.
type entryVisitor interface {
	VisitEntries(ledgerID string, topic ledger.Topic, from uint64, limit int, gdpr bool, fn func(*ledger.RawEntry) error) (int, error)
}

// restPage is a REST call's answer as its handler wrote it: json is the
// answer of resp.
type restPage struct {
	resp proto.Message
	json []byte
}

type restPageKey struct{}

// restPageOf returns the REST call's page slot (nil for a gRPC call).
func restPageOf(ctx context.Context) *restPage {
	p, _ := ctx.Value(restPageKey{}).(*restPage)
	return p
}

// pageJSON is a page answer being written: the items, then the rest.
type pageJSON struct {
	b    []byte
	n    int    // items written
	last uint64 // sequence of the last item written
	// Parts that repeat from item to item, each made once per run of
	// entries that share them.
	currency string
	curPart  []byte // ,"currency":"NOK","amount":
	date     ledger.Date
	datePart []byte // ,"ledgerDate":"2020-10-05","entryType":
	day      dayCache
	// The last balanceAfter written, in afterText[afterAt:]: the next
	// item's balanceBefore.
	afterOK   bool
	after     int64
	afterAt   int
	afterText [20]byte
}

// newPageJSON starts a page answer in a pooled buffer, given back once the
// answer has been written (st.onDone).
func newPageJSON(st *restState, head string) *pageJSON {
	bp := jsonBufs.Get().(*[]byte)
	p := &pageJSON{b: grow((*bp)[:0], 64+entryJSONSize*1000)}
	st.onDone(func() {
		*bp = p.b[:0]
		if cap(*bp) <= maxPooledJSON {
			jsonBufs.Put(bp)
		}
	})
	p.b = append(p.b, head...)
	return p
}

// raw appends one visited entry.
func (p *pageJSON) raw(e *ledger.RawEntry) error {
	if p.n > 0 {
		p.b = append(p.b, ',')
	}
	secs, micros := e.TimeMicros/1e6, e.TimeMicros%1e6
	if micros < 0 {
		secs, micros = secs-1, micros+1e6
	}
	p.b = appendEntryJSON(p, e.PSPReference, secs, int32(micros)*1000, e.LedgerDate, e.EntryType, e.Reference,
		e.Currency, e.Amount, e.BalanceBefore, e.BalanceAfter, e.HasRecipient, e.RecipientHandle, e.GDPR)
	p.n++
	p.last = e.Sequence
	return nil
}

// entries appends entries as read.
func (p *pageJSON) entries(es []ledger.Entry) {
	for i := range es {
		e := &es[i]
		if p.n > 0 {
			p.b = append(p.b, ',')
		}
		var rh string
		if e.RecipientHandle != nil {
			rh = *e.RecipientHandle
		}
		p.b = appendEntryJSON(p, e.PSPReference, e.Time.Unix(), int32(e.Time.Nanosecond()), e.LedgerDate, e.EntryType, e.Reference,
			e.Currency, e.Amount, e.BalanceBefore, e.BalanceAfter, e.RecipientHandle != nil, rh, e.GDPR)
		p.n++
		p.last = e.Sequence
	}
}

// appendEntryJSON appends one item as appendEntry writes the *v1.Entry
// that fillEntries makes of the same entry; S is string for ledger.Entry
// fields, []byte for a RawEntry's.
func appendEntryJSON[S ~string | ~[]byte](p *pageJSON, psp S, secs int64, nanos int32, date ledger.Date, typ, ref S,
	currency string, amount, before, after int64, hasRH bool, rh S, g *ledger.GDPR) []byte {
	b := append(p.b, `{"pspReference":`...)
	b = appendJSONString(b, psp)
	b = append(b, `,"time":`...)
	b = appendWireTime(b, secs, nanos, &p.day)
	if p.datePart == nil || date != p.date {
		p.date = date
		p.datePart = append(appendStringFast(append(p.datePart[:0], `,"ledgerDate":`...), date.String()), `,"entryType":`...)
	}
	b = append(b, p.datePart...)
	b = appendJSONString(b, typ)
	b = append(b, `,"reference":`...)
	b = appendJSONString(b, ref)
	if p.curPart == nil || currency != p.currency {
		p.currency = currency
		p.curPart = append(appendStringFast(append(p.curPart[:0], `,"currency":`...), currency), `,"amount":`...)
	}
	b = append(b, p.curPart...)
	b = appendInt(b, amount)
	b = append(b, `,"balanceBefore":`...)
	if p.afterOK && before == p.after { // balances chain: the last item's balanceAfter
		b = append(b, p.afterText[p.afterAt:]...)
	} else {
		b = appendInt(b, before)
	}
	b = append(b, `,"balanceAfter":`...)
	n := len(b)
	b = appendInt(b, after)
	p.afterOK, p.after, p.afterAt = true, after, len(p.afterText)-(len(b)-n)
	copy(p.afterText[p.afterAt:], b[n:])
	b = append(b, `,"recipientHandle":`...)
	if hasRH {
		b = appendJSONString(b, rh)
	} else {
		b = append(b, "null"...)
	}
	if g != nil {
		b = append(b, `,"name":`...)
		b = appendJSONString(b, g.Name)
		b = append(b, `,"maskedPhoneNo":`...)
		b = appendJSONString(b, g.MaskedPhoneNo)
		b = append(b, `,"message":`...)
		b = appendJSONString(b, g.Message)
	}
	return append(b, '}')
}

// readPage appends up to limit entries of (id, topic) from sequence from:
// visited in place where the store can, else read and converted.
func (a *reportAPI) readPage(p *pageJSON, id string, topic ledger.Topic, from uint64, limit int, opt ledger.ReadOptions) error {
	if v, ok := a.store.(entryVisitor); ok {
		_, err := v.VisitEntries(id, topic, from, limit, opt.GDPR, p.raw)
		return err
	}
	buf := getEntryBuf(limit)
	defer putEntryBuf(buf)
	opt.Buf = *buf
	es, err := a.store.Entries(id, topic, from, limit, opt)
	if err != nil {
		return err
	}
	p.entries(es)
	return nil
}

// restFeed is GetFeed for a REST call, from the checked request: as the
// protobuf path (feed.Reader.Feed, WaitFeed), with the answer written as
// JSON into pg.
func (a *reportAPI) restFeed(ctx context.Context, st *restState, pg *restPage, id string, topic ledger.Topic,
	from uint64, cursor string, size int, opt ledger.ReadOptions, wait time.Duration) (*v1.GetFeedResponse, error) {
	from = max(from, 1)
	p := newPageJSON(st, `{"items":[`)
	if err := a.readPage(p, id, topic, from, size, opt); err != nil {
		return nil, storeErr(id, err)
	}
	next, tryLater := from, p.n == 0
	if p.n > 0 {
		next = p.last + 1
	}
	waited := tryLater && wait > 0
	if waited {
		release, err := a.srv.polls.acquire(principalOf(ctx).ClientID)
		if err != nil {
			return nil, err
		}
		// WaitFeed's page is never in opt.Buf (the fan-out reads its own).
		page, err := a.reader.WaitFeed(ctx, id, topic, from, size, opt, wait, a.srv.stopping)
		release()
		if err != nil {
			return nil, storeErr(id, err)
		}
		next, tryLater = page.Next, page.TryLater
		if page.Shared() && !tryLater && len(page.Entries) >= minSharedBody {
			out, err := a.sharedFeed(pg, id, topic, page, opt.GDPR)
			if err == nil {
				sendEarly(st, size, pg.json)
			}
			return out, err
		}
		p.entries(page.Entries)
	}
	out := &v1.GetFeedResponse{TryLater: tryLater, Cursor: cursor}
	if !tryLater || cursor == "" {
		out.Cursor = a.cursors.Feed(id, topic, next)
	}
	p.b = appendFeedTail(p.b, out)
	pg.resp, pg.json = out, p.b
	if waited && !tryLater {
		sendEarly(st, size, p.b) // woken by a commit
	}
	return out, nil
}

// sendEarly sends a long poll's answer, woken by a commit, as soon as it is
// written, rather than after the chain and the gateway have finished the
// call: a commit wakes every poll parked at the log's end at once, and each
// of them then answers before any does its bookkeeping (audit, metrics,
// the connection's own finishing). The answer is the same as the gateway's:
// status 200 and the headers it sets (Content-Type of wireJSON,
// Vipps-Feed-Page-Size from sendPageSize, Content-Length);
// TestReportAPI_LongPollEarlyAnswer compares them. After it, the gateway
// writes nothing (preEncode) and an error is only logged (answered).
func sendEarly(st *restState, size int, body []byte) {
	if st.w == nil || st.sent {
		return
	}
	h := st.w.Header()
	h.Set("Content-Type", wireJSON{}.ContentType(nil))
	h.Set(restHeaders[mdFeedPageSize], strconv.Itoa(size))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	st.w.WriteHeader(http.StatusOK)
	st.sent = true
	_, _ = st.w.Write(body)
	_ = http.NewResponseController(st.w).Flush()
	runtime.Gosched() // the other answers of the commit next
}

// appendFeedTail appends what follows a feed answer's items.
func appendFeedTail(b []byte, out *v1.GetFeedResponse) []byte {
	b = append(b, `],"tryLater":`...)
	b = strconv.AppendBool(b, out.TryLater)
	b = append(b, `,"cursor":`...)
	b = appendStringFast(b, out.Cursor)
	return append(b, '}')
}

// minSharedBody is the fewest items of a shared page whose JSON the long
// polls that got it share. Sharing makes every poll of the round wait for
// the one that writes the body, which on 2 busy cores may not be running;
// a page of a few items (a long poll's usual answer: what one commit
// brought) each poll writes in a few microseconds, less than that wait
// can cost. A big page (a backlog, a large batch) is written once.
const minSharedBody = 32

// sharedFeedKey names a long poll's answer made of a shared page
// (feed.Page.Memo): everything the answer's bytes depend on besides the
// page's entries. The page fixes them already (a round is one ledger,
// topic, position and GDPR flag); the key says so again, so that a page
// could never give one caller an answer written for another.
type sharedFeedKey struct {
	ledgerID string
	topic    ledger.Topic
	next     uint64
	gdpr     bool
}

// sharedFeedBody is the answer's JSON made once for every long poll that
// got one shared page, with its cursor.
type sharedFeedBody struct {
	cursor string
	json   []byte
}

// sharedFeed answers a long poll whose page was handed to several followers
// (a page with entries, so tryLater is false and the cursor is that of
// page.Next, the same for all of them): the first of them writes the JSON
// and every other one answers the same bytes. The bytes are a buffer of
// their own, not pooled (many answers write them at once, and none can
// tell when the last has finished), and capped at their length so that
// nothing appends into them. Each caller has its own message (the chain
// and the gateway see it), equal to the others.
func (a *reportAPI) sharedFeed(pg *restPage, id string, topic ledger.Topic, page feed.Page, gdpr bool) (*v1.GetFeedResponse, error) {
	key := sharedFeedKey{ledgerID: id, topic: topic, next: page.Next, gdpr: gdpr}
	v, err := page.Memo(key, func() (any, error) {
		out := &v1.GetFeedResponse{TryLater: false, Cursor: a.cursors.Feed(id, topic, page.Next)}
		p := &pageJSON{b: make([]byte, 0, 128+entryJSONSize*len(page.Entries))}
		p.b = append(p.b, `{"items":[`...)
		p.entries(page.Entries)
		b := appendFeedTail(p.b, out)
		return &sharedFeedBody{cursor: out.Cursor, json: b[:len(b):len(b)]}, nil
	})
	if err != nil {
		return nil, err
	}
	body := v.(*sharedFeedBody)
	out := &v1.GetFeedResponse{TryLater: false, Cursor: body.cursor}
	pg.resp, pg.json = out, body.json
	return out, nil
}

// restDate is GetDateReport for a REST call, from the checked request: as
// the protobuf path (feed.Reader.Date, which this follows step by step),
// with the answer written as JSON into pg.
func (a *reportAPI) restDate(st *restState, pg *restPage, id string, topic ledger.Topic, d ledger.Date,
	from uint64, size int, opt ledger.ReadOptions) (*v1.GetDateReportResponse, error) {
	// The head first: a date seen closed here was closed before DateRange
	// reads its run, so that run is complete.
	h, err := a.store.Head(id, topic)
	if err != nil {
		return nil, storeErr(id, err)
	}
	out := &v1.GetDateReportResponse{TryLater: h.OpenDate.IsZero() || d >= h.OpenDate}
	first, last, ok, err := a.store.DateRange(id, topic, d)
	if err != nil {
		return nil, storeErr(id, err)
	}
	p := newPageJSON(st, `{"items":[`)
	if ok {
		if from == 0 {
			from = first
		}
		if from < first || from > last+1 {
			return nil, &ledger.FieldError{Field: "cursor", Reason: "not a cursor of this date report"}
		}
		if from <= last {
			if err := a.readPage(p, id, topic, from, int(min(uint64(size), last-from+1)), opt); err != nil {
				return nil, storeErr(id, err)
			}
			if p.n == 0 {
				return nil, errors.New("date run indexed but entries missing")
			}
			if next := p.last + 1; next <= last {
				out.HasMore, out.Cursor = true, a.cursors.Date(id, topic, d, next)
			}
		}
	}
	b := append(p.b, `],"hasMore":`...)
	b = strconv.AppendBool(b, out.HasMore)
	b = append(b, `,"tryLater":`...)
	b = strconv.AppendBool(b, out.TryLater)
	if out.Cursor != "" { // wireOmit
		b = append(b, `,"cursor":`...)
		b = appendStringFast(b, out.Cursor)
	}
	p.b = append(b, '}')
	pg.resp, pg.json = out, p.b
	return out, nil
}

// ---- times and strings

// dayCache keeps the part of the last time written up to its second
// (`"2020-10-05T12:34:56.`): a page's times mostly share their day, often
// their second.
type dayCache struct {
	ok   bool
	day  int64
	sec  int64 // second of the day, -1 when head holds only the day
	head [21]byte
}

// appendWireTime appends the instant secs.nanos as wireTimeLayout (UTC, six
// fraction digits, truncated), as appendMessage does via time.Format.
func appendWireTime(b []byte, secs int64, nanos int32, c *dayCache) []byte {
	if secs < minFastUnix || secs > maxFastUnix || nanos < 0 || nanos > 999999999 {
		// Out of the common range (or not normalized): let time do it.
		ts := timestamppb.Timestamp{Seconds: secs, Nanos: nanos}
		return appendString(b, ts.AsTime().UTC().Format(wireTimeLayout))
	}
	days, rem := secs/86400, secs%86400
	if rem < 0 {
		rem += 86400
		days--
	}
	h := &c.head
	if !c.ok || c.day != days {
		y, mo, d := civilFromDays(days)
		h[0] = '"'
		put4(h[1:], y)
		h[5] = '-'
		put2(h[6:], mo)
		h[8] = '-'
		put2(h[9:], d)
		h[11] = 'T'
		c.ok, c.day, c.sec = true, days, -1
	}
	if c.sec != rem {
		put2(h[12:], rem/3600)
		h[14] = ':'
		put2(h[15:], rem/60%60)
		h[17] = ':'
		put2(h[18:], rem%60)
		h[20] = '.'
		c.sec = rem
	}
	us := uint32(nanos) / 1000
	var t [8]byte // 000000Z"
	copy(t[0:2], digits2[2*(us/10000):])
	copy(t[2:4], digits2[2*(us/100%100):])
	copy(t[4:6], digits2[2*(us%100):])
	t[6] = 'Z'
	t[7] = '"'
	b = append(b, h[:]...)
	return append(b, t[:]...)
}

// digits2 is "00" to "99".
const digits2 = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// appendInt appends v in decimal, as strconv.AppendInt(b, v, 10).
func appendInt(b []byte, v int64) []byte {
	var buf [20]byte
	u := uint64(v)
	if v < 0 {
		u = -u
	}
	i := len(buf)
	for u >= 100 {
		q := u / 100
		r := u - q*100
		i -= 2
		buf[i], buf[i+1] = digits2[2*r], digits2[2*r+1]
		u = q
	}
	if u >= 10 {
		i -= 2
		buf[i], buf[i+1] = digits2[2*u], digits2[2*u+1]
	} else {
		i--
		buf[i] = byte('0' + u)
	}
	if v < 0 {
		i--
		buf[i] = '-'
	}
	return append(b, buf[i:]...)
}

// SWAR constants: a byte of 0x01 and of 0x80 in each of 8 lanes.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// plain8 reports whether none of the 8 bytes of w needs escaping or is
// non-ASCII: no byte ≥ 0x80, < 0x20, '"' or '\\'. Once no byte has its top
// bit set, x − 0x01… (x − 0x20…) sets the top bit of some lane exactly when
// a lane of x is zero (below 0x20): the classic SWAR zero-byte test.
func plain8(w uint64) bool {
	if w&lanes80 != 0 {
		return false
	}
	q := w ^ (lanes01 * '"')
	s := w ^ (lanes01 * '\\')
	return ((w-lanes01*0x20)|(q-lanes01)|(s-lanes01))&lanes80 == 0
}

// appendJSONString is appendString for string or []byte: plain ASCII (the
// common case, checked 8 bytes at a time) is copied as it is; anything
// else goes to appendString, so the output is the same for every input.
func appendJSONString[S ~string | ~[]byte](b []byte, s S) []byte {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if !plain8(w) {
			return appendString(b, string(s))
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || !jsonSafe[c] {
			return appendString(b, string(s))
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
