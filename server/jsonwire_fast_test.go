package server

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// wireStringPieces are the parts random strings are made of: plain text,
// everything appendString escapes, HTML characters it leaves alone,
// multi-byte and invalid UTF-8.
var wireStringPieces = []string{
	"", "a", "NO:123455", "3343121302", " ", `"`, `\`, "/", "<", ">", "&", "'",
	"\n", "\r", "\t", "\x00", "\x01", "\x1f", "\x7f", "\u2028", "\u2029", "\u2027", "\u202a",
	"é", "ø", "日本", "😀", "\ufffd", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	"<script>alert(1)</script>", "Ola \"O\" Nordmann",
}

func randWireString(r *rand.Rand) string {
	if r.IntN(8) == 0 { // raw random bytes
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	var sb strings.Builder
	for n := r.IntN(6); n > 0; n-- {
		sb.WriteString(wireStringPieces[r.IntN(len(wireStringPieces))])
	}
	return sb.String()
}

func randOptString(r *rand.Rand) *string {
	switch r.IntN(3) {
	case 0:
		return nil
	case 1:
		return proto.String("")
	}
	return proto.String(randWireString(r))
}

var wireInt64s = []int64{0, 1, -1, 9, 10, -10, 100, math.MaxInt64, math.MinInt64, math.MaxInt32, math.MinInt32, 1 << 53, -(1 << 53) - 1}

func randInt64(r *rand.Rand) int64 {
	if r.IntN(2) == 0 {
		return wireInt64s[r.IntN(len(wireInt64s))]
	}
	return int64(r.Uint64())
}

var wireTimestamps = []*timestamppb.Timestamp{
	{Seconds: 0, Nanos: 0},                         // 1970-01-01
	{Seconds: 0, Nanos: 999999999},                 // 1970, last nanosecond
	{Seconds: -1, Nanos: 999999999},                // 1969-12-31T23:59:59.999999
	{Seconds: 253402300799, Nanos: 999999999},      // 9999-12-31T23:59:59.999999
	{Seconds: 253402300800, Nanos: 0},              // 10000-01-01: fallback
	{Seconds: -62135596800, Nanos: 0},              // 0001-01-01
	{Seconds: -62135596801, Nanos: 0},              // year 0: fallback
	{Seconds: 951782400, Nanos: 1000},              // 2000-02-29
	{Seconds: 1601856000, Nanos: 123456789},        // 2020-10-05
	{Seconds: 4107542400, Nanos: 999},              // 2100-03-01
	{Seconds: 1, Nanos: -1},                        // not normalized: fallback
	{Seconds: 1, Nanos: 1000000000},                // not normalized: fallback
	{Seconds: math.MaxInt64 / 4, Nanos: 0},         // far out: fallback
	{Seconds: math.MinInt64 / 4, Nanos: 500000000}, // far out: fallback
	{},
}

func randTimestamp(r *rand.Rand) *timestamppb.Timestamp {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return wireTimestamps[r.IntN(len(wireTimestamps))]
	}
	// Anywhere in 0001..9999 (and a little beyond), any nanos.
	return &timestamppb.Timestamp{
		Seconds: -62135596800 - 86400 + r.Int64N(253402300799+62135596800+2*86400),
		Nanos:   r.Int32N(1000000000),
	}
}

func randEntry(r *rand.Rand) *v1.Entry {
	if r.IntN(20) == 0 {
		return nil // written as an empty Entry
	}
	return &v1.Entry{
		PspReference:    randWireString(r),
		Time:            randTimestamp(r),
		LedgerDate:      randWireString(r),
		EntryType:       randWireString(r),
		Reference:       randWireString(r),
		Currency:        randWireString(r),
		Amount:          randInt64(r),
		BalanceBefore:   randInt64(r),
		BalanceAfter:    randInt64(r),
		RecipientHandle: randOptString(r),
		Name:            randOptString(r),
		MaskedPhoneNo:   randOptString(r),
		Message:         randOptString(r),
	}
}

func randEntries(r *rand.Rand) []*v1.Entry {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []*v1.Entry{}
	}
	items := make([]*v1.Entry, 1+r.IntN(8))
	for i := range items {
		items[i] = randEntry(r)
	}
	return items
}

func randStrings(r *rand.Rand) []string {
	if r.IntN(3) == 0 {
		return nil
	}
	s := make([]string, r.IntN(4))
	for i := range s {
		s[i] = randWireString(r)
	}
	return s
}

func randLedger(r *rand.Rand) *v1.Ledger {
	if r.IntN(20) == 0 {
		return nil
	}
	l := &v1.Ledger{LedgerId: randWireString(r), Currency: randWireString(r), SettlesForRecipientHandles: randStrings(r)}
	if r.IntN(2) == 0 {
		l.PayoutBankAccount = &v1.BankAccount{Scheme: randWireString(r), Id: randWireString(r)}
	}
	if r.IntN(2) == 0 {
		l.Owner = &v1.Organization{Scheme: randWireString(r), Id: randWireString(r)}
	}
	for n := r.IntN(3); n > 0; n-- {
		u := &v1.SalesUnit{Name: randWireString(r), RecipientHandle: randWireString(r)}
		switch r.IntN(3) {
		case 0:
			u.BusinessIdentifier = &v1.BusinessIdentifier{Scheme: randWireString(r), Id: randWireString(r)}
		case 1:
			u = nil
		}
		l.SalesUnits = append(l.SalesUnits, u)
	}
	return l
}

func randFastMessage(r *rand.Rand) proto.Message {
	switch r.IntN(3) {
	case 0:
		return &v1.GetFeedResponse{Items: randEntries(r), TryLater: r.IntN(2) == 0, Cursor: randWireString(r)}
	case 1:
		m := &v1.GetDateReportResponse{Items: randEntries(r), HasMore: r.IntN(2) == 0, TryLater: r.IntN(2) == 0}
		if r.IntN(2) == 0 {
			m.Cursor = randWireString(r)
		}
		return m
	}
	m := &v1.ListLedgersResponse{Cursor: randWireString(r)}
	for n := r.IntN(4); n > 0; n-- {
		m.Items = append(m.Items, randLedger(r))
	}
	return m
}

func TestWireJSON_FastPathMatchesGeneric(t *testing.T) {
	check := func(t *testing.T, m proto.Message) {
		t.Helper()
		fast, ok := appendFast(nil, m)
		if !ok {
			t.Fatalf("%T: no fast path", m)
		}
		if generic := marshalGeneric(m); !bytes.Equal(fast, generic) {
			i := 0
			for i < len(fast) && i < len(generic) && fast[i] == generic[i] {
				i++
			}
			from := max(0, i-80)
			t.Fatalf("%T: fast path differs at byte %d\nfast    …%q\ngeneric …%q", m, i,
				fast[from:min(len(fast), i+80)], generic[from:min(len(generic), i+80)])
		}
		got, err := wireJSON{}.Marshal(m)
		if err != nil || !bytes.Equal(got, fast) {
			t.Fatalf("Marshal does not use the fast path: %q, %v", got, err)
		}
	}

	t.Run("edge cases", func(t *testing.T) {
		var entries []*v1.Entry
		for _, ts := range append(wireTimestamps, nil) {
			entries = append(entries, &v1.Entry{Time: ts})
		}
		for _, s := range wireStringPieces {
			entries = append(entries, &v1.Entry{
				PspReference: s, LedgerDate: s, EntryType: s, Reference: s, Currency: s,
				RecipientHandle: proto.String(s), Name: proto.String(s), MaskedPhoneNo: proto.String(s), Message: proto.String(s),
			})
		}
		for _, n := range wireInt64s {
			entries = append(entries, &v1.Entry{Amount: n, BalanceBefore: -n, BalanceAfter: n})
		}
		entries = append(entries, nil, &v1.Entry{})
		// Every byte value, alone and inside text.
		for c := 0; c < 256; c++ {
			entries = append(entries, &v1.Entry{Reference: string(rune(0)) + string([]byte{byte(c)}) + "x", Message: proto.String(string([]byte{byte(c)}))})
		}
		for _, m := range []proto.Message{
			&v1.GetFeedResponse{}, &v1.GetDateReportResponse{}, &v1.ListLedgersResponse{},
			(*v1.GetFeedResponse)(nil), (*v1.GetDateReportResponse)(nil), (*v1.ListLedgersResponse)(nil),
			&v1.GetFeedResponse{Items: []*v1.Entry{}, TryLater: true, Cursor: "c"},
			&v1.GetDateReportResponse{Items: []*v1.Entry{}, HasMore: true, Cursor: "c"},
			&v1.GetFeedResponse{Items: entries, Cursor: "\u2028<&>"},
			&v1.GetDateReportResponse{Items: entries, TryLater: true},
			&v1.ListLedgersResponse{Items: []*v1.Ledger{nil, {}, {SalesUnits: []*v1.SalesUnit{nil, {}}, SettlesForRecipientHandles: []string{}}}},
		} {
			check(t, m)
		}
	})

	t.Run("random", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 20000; i++ {
			check(t, randFastMessage(r))
		}
	})
}

// feedPage is a realistic 1000-entry GetFeed page.
func feedPage() *v1.GetFeedResponse {
	m := &v1.GetFeedResponse{Cursor: "eyJsIjoiMzAyMzIxIiwidCI6ImZlZXMiLCJzIjoxMjM0NTY3fQ"}
	for i := 0; i < 1000; i++ {
		e := &v1.Entry{
			PspReference:  "3343121302",
			Time:          &timestamppb.Timestamp{Seconds: 1601856000 + int64(i)*37, Nanos: int32(i) * 123457},
			LedgerDate:    "2020-10-05",
			EntryType:     "capture",
			Reference:     "order-" + string(rune('a'+i%26)) + "-12345",
			Currency:      "NOK",
			Amount:        int64(i)*1999 - 50000,
			BalanceBefore: 123456789 + int64(i)*1000,
			BalanceAfter:  123457789 + int64(i)*1000,
		}
		if i%5 != 0 {
			e.RecipientHandle = proto.String("NO:123455")
		}
		if i%3 == 0 {
			e.Name, e.MaskedPhoneNo, e.Message = proto.String("Åse Nordmann"), proto.String("xxxx 5678"), proto.String("Takk for \"maten\"")
		}
		m.Items = append(m.Items, e)
	}
	return m
}

func BenchmarkWireJSON_FeedPage(b *testing.B) {
	m := feedPage()
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (wireJSON{}).Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("generic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			marshalGeneric(m)
		}
	})
}
