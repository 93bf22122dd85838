package server

import (
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// Typed fast path of wireJSON.Marshal for the large pages (GetFeed,
// GetDateReport, ListLedgers). Each appender writes exactly the bytes the
// generic protoreflect walk (appendMessage) writes for the same message —
// same field order, wireOmit rules, null for an unset recipientHandle,
// time layout and string escaping; TestWireJSON_FastPathMatchesGeneric
// holds the two together. A change to these messages in the .proto needs a
// change here too (the test fails otherwise).

// appendFast appends v's JSON and reports true when v has a fast path.
func appendFast(b []byte, v any) ([]byte, bool) {
	switch m := v.(type) {
	case *v1.GetFeedResponse:
		return appendFeedResponse(grow(b, 64+entryJSONSize*len(m.GetItems())), m), true
	case *v1.GetDateReportResponse:
		return appendDateReportResponse(grow(b, 64+entryJSONSize*len(m.GetItems())), m), true
	case *v1.ListLedgersResponse:
		return appendListLedgersResponse(grow(b, 64+ledgerJSONSize*len(m.GetItems())), m), true
	}
	return b, false
}

// Rough sizes of one item's JSON, to allocate a page's buffer once.
const (
	entryJSONSize  = 320
	ledgerJSONSize = 256
)

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		return nb
	}
	return b
}

// marshalGeneric is the protoreflect path, for tests and benchmarks.
func marshalGeneric(m proto.Message) []byte {
	return appendMessage(nil, m.ProtoReflect())
}

func appendFeedResponse(b []byte, m *v1.GetFeedResponse) []byte {
	b = append(b, `{"items":`...)
	b = appendEntries(b, m.GetItems())
	b = append(b, `,"tryLater":`...)
	b = strconv.AppendBool(b, m.GetTryLater())
	b = append(b, `,"cursor":`...)
	b = appendStringFast(b, m.GetCursor())
	return append(b, '}')
}

func appendDateReportResponse(b []byte, m *v1.GetDateReportResponse) []byte {
	b = append(b, `{"items":`...)
	b = appendEntries(b, m.GetItems())
	b = append(b, `,"hasMore":`...)
	b = strconv.AppendBool(b, m.GetHasMore())
	b = append(b, `,"tryLater":`...)
	b = strconv.AppendBool(b, m.GetTryLater())
	if c := m.GetCursor(); c != "" { // wireOmit
		b = append(b, `,"cursor":`...)
		b = appendStringFast(b, c)
	}
	return append(b, '}')
}

func appendEntries(b []byte, items []*v1.Entry) []byte {
	b = append(b, '[')
	for i, e := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEntry(b, e)
	}
	return append(b, ']')
}

// appendEntry appends e; a nil e is written as an empty Entry, as the
// generic path does.
func appendEntry(b []byte, e *v1.Entry) []byte {
	b = append(b, `{"pspReference":`...)
	b = appendStringFast(b, e.GetPspReference())
	if ts := e.GetTime(); ts != nil {
		b = append(b, `,"time":`...)
		b = appendTimestamp(b, ts)
	}
	b = append(b, `,"ledgerDate":`...)
	b = appendStringFast(b, e.GetLedgerDate())
	b = append(b, `,"entryType":`...)
	b = appendStringFast(b, e.GetEntryType())
	b = append(b, `,"reference":`...)
	b = appendStringFast(b, e.GetReference())
	b = append(b, `,"currency":`...)
	b = appendStringFast(b, e.GetCurrency())
	b = append(b, `,"amount":`...)
	b = strconv.AppendInt(b, e.GetAmount(), 10)
	b = append(b, `,"balanceBefore":`...)
	b = strconv.AppendInt(b, e.GetBalanceBefore(), 10)
	b = append(b, `,"balanceAfter":`...)
	b = strconv.AppendInt(b, e.GetBalanceAfter(), 10)
	b = append(b, `,"recipientHandle":`...)
	if e != nil && e.RecipientHandle != nil {
		b = appendStringFast(b, *e.RecipientHandle)
	} else {
		b = append(b, "null"...)
	}
	if e != nil {
		// wireOmit: the GDPR fields only when set.
		if e.Name != nil {
			b = append(b, `,"name":`...)
			b = appendStringFast(b, *e.Name)
		}
		if e.MaskedPhoneNo != nil {
			b = append(b, `,"maskedPhoneNo":`...)
			b = appendStringFast(b, *e.MaskedPhoneNo)
		}
		if e.Message != nil {
			b = append(b, `,"message":`...)
			b = appendStringFast(b, *e.Message)
		}
	}
	return append(b, '}')
}

func appendListLedgersResponse(b []byte, m *v1.ListLedgersResponse) []byte {
	b = append(b, `{"items":[`...)
	for i, l := range m.GetItems() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLedger(b, l)
	}
	b = append(b, `],"cursor":`...)
	b = appendStringFast(b, m.GetCursor())
	return append(b, '}')
}

func appendLedger(b []byte, l *v1.Ledger) []byte {
	b = append(b, `{"ledgerId":`...)
	b = appendStringFast(b, l.GetLedgerId())
	b = append(b, `,"currency":`...)
	b = appendStringFast(b, l.GetCurrency())
	if a := l.GetPayoutBankAccount(); a != nil {
		b = append(b, `,"payoutBankAccount":{"scheme":`...)
		b = appendStringFast(b, a.GetScheme())
		b = append(b, `,"id":`...)
		b = appendStringFast(b, a.GetId())
		b = append(b, '}')
	}
	if o := l.GetOwner(); o != nil {
		b = append(b, `,"owner":{"scheme":`...)
		b = appendStringFast(b, o.GetScheme())
		b = append(b, `,"id":`...)
		b = appendStringFast(b, o.GetId())
		b = append(b, '}')
	}
	b = append(b, `,"settlesForRecipientHandles":[`...)
	for i, h := range l.GetSettlesForRecipientHandles() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStringFast(b, h)
	}
	b = append(b, `],"salesUnits":[`...)
	for i, u := range l.GetSalesUnits() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendStringFast(b, u.GetName())
		b = append(b, `,"recipientHandle":`...)
		b = appendStringFast(b, u.GetRecipientHandle())
		if bi := u.GetBusinessIdentifier(); bi != nil {
			b = append(b, `,"businessIdentifier":{"scheme":`...)
			b = appendStringFast(b, bi.GetScheme())
			b = append(b, `,"id":`...)
			b = appendStringFast(b, bi.GetId())
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range in
// which the hand-written appender matches time.Format's four-digit year.
const (
	minFastUnix = -62135596800
	maxFastUnix = 253402300799
)

// appendTimestamp appends ts as wireTimeLayout (UTC, six fraction digits,
// truncated), as appendMessage does via time.Format (page_json.go).
func appendTimestamp(b []byte, ts *timestamppb.Timestamp) []byte {
	var c dayCache
	return appendWireTime(b, ts.GetSeconds(), ts.GetNanos(), &c)
}

func put2(p []byte, v int64) {
	p[0] = byte('0' + v/10)
	p[1] = byte('0' + v%10)
}

func put4(p []byte, v int64) {
	p[0] = byte('0' + v/1000)
	p[1] = byte('0' + v/100%10)
	p[2] = byte('0' + v/10%10)
	p[3] = byte('0' + v%10)
}

// civilFromDays converts days since 1970-01-01 to a proleptic Gregorian
// date (H. Hinnant's civil_from_days).
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// jsonSafe marks the ASCII bytes appendString copies as they are.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendStringFast is appendString with a fast scan over plain ASCII; it
// hands any string that needs escaping or holds non-ASCII bytes to
// appendString, so the output is the same for every input.
func appendStringFast(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || !jsonSafe[c] {
			return appendString(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
