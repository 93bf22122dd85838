package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// wireMicros are instants (µs since 1970) at the edges of appendWireTime's
// fast range and of the calendar.
var wireMicros = []int64{
	0, -1, 1, 999999, -999999, -1000000, 86400e6 - 1, 951782400e6, 1601856000123456,
	253402300799999999, 253402300800000000, -62135596800000000, -62135596800000001,
	math.MaxInt64, math.MinInt64, (time.Time{}).UnixMicro(),
}

func randMicros(r *rand.Rand) int64 {
	switch r.IntN(4) {
	case 0:
		return wireMicros[r.IntN(len(wireMicros))]
	case 1:
		return int64(r.Uint64())
	}
	return 1.6e15 + r.Int64N(1e15) // 2020..2051
}

// randLedgerEntry is an entry as a read returns it, with anything in its
// fields: escapes, non-ASCII and invalid UTF-8, extreme numbers, zero and
// far-out times in other zones, GDPR fields or not, null recipient handle.
func randLedgerEntry(r *rand.Rand, seq uint64) ledger.Entry {
	e := ledger.Entry{Sequence: seq, PSPReference: randWireString(r), LedgerDate: ledger.Date(r.Int32N(1 << 22)),
		EntryType: randWireString(r), Reference: randWireString(r), Currency: randWireString(r),
		Amount: randInt64(r), BalanceBefore: randInt64(r), BalanceAfter: randInt64(r)}
	switch r.IntN(5) {
	case 0: // zero time
	case 1:
		e.Time = time.Unix(int64(r.Uint64())>>r.IntN(30), int64(r.IntN(1e9))).In(time.FixedZone("x", 3600*r.IntN(12)))
	default:
		e.Time = time.UnixMicro(randMicros(r)).UTC()
	}
	if r.IntN(3) > 0 {
		h := randWireString(r)
		e.RecipientHandle = &h
	}
	if r.IntN(2) == 0 {
		e.HasGDPR = true
		if r.IntN(4) > 0 {
			e.GDPR = &ledger.GDPR{Name: randWireString(r), MaskedPhoneNo: randWireString(r), Message: randWireString(r)}
		}
	}
	if r.IntN(4) == 0 {
		e.LedgerDate = ledger.Date(int32(r.Uint32()))
	}
	return e
}

// asRaw is e as VisitEntries shows it (e.Time to the microsecond).
func asRaw(e *ledger.Entry) *ledger.RawEntry {
	raw := &ledger.RawEntry{Sequence: e.Sequence, Currency: e.Currency, PSPReference: []byte(e.PSPReference),
		TimeMicros: e.Time.UnixMicro(), LedgerDate: e.LedgerDate, EntryType: []byte(e.EntryType), Reference: []byte(e.Reference),
		Amount: e.Amount, BalanceBefore: e.BalanceBefore, BalanceAfter: e.BalanceAfter, HasGDPR: e.HasGDPR, GDPR: e.GDPR}
	if e.RecipientHandle != nil {
		raw.HasRecipient, raw.RecipientHandle = true, []byte(*e.RecipientHandle)
	}
	return raw
}

// genericFeed is the answer the gateway's generic marshaler writes for a
// feed page of es: what REST answered before pages were written directly.
func genericFeed(es []ledger.Entry, tryLater bool, cursor string) []byte {
	return marshalGeneric(&v1.GetFeedResponse{Items: entriesToProto(es), TryLater: tryLater, Cursor: cursor})
}

func diffAt(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-80)
	t.Fatalf("%s differs at byte %d\ngot     …%q\ngeneric …%q", what, i, got[from:min(len(got), i+80)], want[from:min(len(want), i+80)])
}

// TestPageJSON_MatchesGeneric: a page written from entries, and from the
// same entries as raw records, is byte for byte the generic marshaler's
// answer for the page of messages made of them.
func TestPageJSON_MatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	// Edge cases first, then random pages.
	var edge []ledger.Entry
	for _, s := range wireStringPieces {
		h := s
		edge = append(edge, ledger.Entry{PSPReference: s, EntryType: s, Reference: s, Currency: s, RecipientHandle: &h,
			GDPR: &ledger.GDPR{Name: s, MaskedPhoneNo: s, Message: s}})
	}
	for c := 0; c < 256; c++ {
		edge = append(edge, ledger.Entry{Reference: "ab" + string([]byte{byte(c)}) + "cdefghij", PSPReference: "0123456" + string([]byte{byte(c)})})
	}
	for _, n := range wireInt64s {
		edge = append(edge, ledger.Entry{Amount: n, BalanceBefore: -n, BalanceAfter: n, LedgerDate: ledger.Date(n)})
	}
	for _, us := range wireMicros {
		edge = append(edge, ledger.Entry{Time: time.UnixMicro(us).UTC()})
	}
	edge = append(edge, ledger.Entry{}, ledger.Entry{Time: time.Date(2020, 10, 5, 0, 0, 0, 999, time.FixedZone("y", -7200))})
	pages := [][]ledger.Entry{nil, edge}
	for i := 0; i < 1500; i++ {
		es := make([]ledger.Entry, r.IntN(12))
		for j := range es {
			es[j] = randLedgerEntry(r, uint64(j+1))
		}
		pages = append(pages, es)
	}
	for i, es := range pages {
		tryLater, cursor := r.IntN(2) == 0, randWireString(r)
		want := genericFeed(es, tryLater, cursor)
		end := func(p *pageJSON) []byte {
			b := append(p.b, `],"tryLater":`...)
			b = strconv.AppendBool(b, tryLater)
			b = append(b, `,"cursor":`...)
			return append(appendStringFast(b, cursor), '}')
		}
		p := &pageJSON{b: []byte(`{"items":[`)}
		p.entries(es)
		diffAt(t, fmt.Sprintf("page %d from entries", i), end(p), want)

		// Raw records hold the time to the microsecond, in UTC.
		for j := range es {
			es[j].Time = time.UnixMicro(es[j].Time.UnixMicro()).UTC()
		}
		want = genericFeed(es, tryLater, cursor)
		p = &pageJSON{b: []byte(`{"items":[`)}
		for j := range es {
			if err := p.raw(asRaw(&es[j])); err != nil {
				t.Fatal(err)
			}
		}
		diffAt(t, fmt.Sprintf("page %d from raw records", i), end(p), want)
		if len(es) > 0 && (p.n != len(es) || p.last != es[len(es)-1].Sequence) {
			t.Fatalf("page %d: n %d last %d", i, p.n, p.last)
		}
	}
}

// TestPlain8 checks the 8-byte test against the byte-by-byte one on every
// byte value in every lane, and on random words.
func TestPlain8(t *testing.T) {
	plain := func(w uint64) bool {
		for i := 0; i < 8; i++ {
			c := byte(w >> (8 * i))
			if c >= 0x80 || !jsonSafe[c] {
				return false
			}
		}
		return true
	}
	r := rand.New(rand.NewPCG(9, 10))
	for lane := 0; lane < 8; lane++ {
		for c := 0; c < 256; c++ {
			for _, fill := range []uint64{lanes01 * 'a', lanes01 * 0x20, lanes01 * 0x7f, lanes01 * 0x21, lanes01 * 0x5d} {
				w := fill&^(0xff<<(8*lane)) | uint64(c)<<(8*lane)
				if plain8(w) != plain(w) {
					t.Fatalf("plain8(%#x) = %v", w, plain8(w))
				}
			}
		}
	}
	for i := 0; i < 1e6; i++ {
		w := r.Uint64() & (lanes01 * uint64(0x7f>>r.IntN(3)))
		if plain8(w) != plain(w) {
			t.Fatalf("plain8(%#x) = %v", w, plain8(w))
		}
	}
}

// hideVisit is a store without the in-place read (as pgstore): REST pages
// are written from the entries it reads.
type hideVisit struct{ ledger.Backend }

// TestPageJSON_REST_MatchesGRPC: over a real server, every REST feed and
// date page (GDPR on and off, random page sizes, walked by cursor) is the
// generic marshaler's JSON of the gRPC answer to the same request, whether
// the store shows its records in place (bbolt) or not (the Entries path).
func TestPageJSON_REST_MatchesGRPC(t *testing.T) {
	e := newAPIEnv(t, nil, Limits{})
	ctx := context.Background()
	const id = "302399"
	if _, _, err := e.store.PutLedger(ctx, ledger.Ledger{ID: id, Currency: "NOK", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	adm := e.adminToken()
	secret := e.createClient(adm, "pages", []string{"read"}, map[string]any{"ledgerId": id, "gdprConsent": true})
	tok := e.token("pages", secret)

	// Six dates of entries, each named, so earlier dates close;
	// text with quotes, backslashes, HTML and non-ASCII; amounts near the
	// int64 limits; null recipient handles; GDPR fields on some.
	r := rand.New(rand.NewPCG(11, 12))
	now := time.Now().UTC()
	today := ledger.Date(now.Unix() / 86400)
	texts := []string{"plain", `quote " and \ back`, "<b>&amp;</b>", "Ærlig ø å", "emoji 😀", "\u2028sep", ""}
	var dates []ledger.Date
	for d := 0; d < 6; d++ {
		date := today - 5 + ledger.Date(d) // the last one stays open
		dates = append(dates, date)
		n := []int{0, 7, 1, 30, 12, 5}[d]
		in := make([]ledger.EntryInput, n)
		for i := range in {
			amt := int64(r.IntN(2e6)) - 1e6
			if i%5 == 1 && i+1 < n {
				amt = math.MaxInt64 / 2
			} else if i%5 == 2 {
				amt = -(math.MaxInt64 / 2)
			}
			in[i] = ledger.EntryInput{EntryID: fmt.Sprintf("p-%d-%d", d, i), PSPReference: strconv.Itoa(1e9 + d*100 + i),
				Time:       now.Add(-time.Duration(r.IntN(3600e6)) * time.Microsecond),
				LedgerDate: date, EntryType: []string{"capture", "refund", "correction"}[i%3], Reference: texts[r.IntN(len(texts))], Amount: amt}
			if i%4 != 0 {
				h := "NO:123455"
				in[i].RecipientHandle = &h
			}
			if i%3 == 0 {
				in[i].Name, in[i].PhoneNumber, in[i].Message = texts[r.IntN(len(texts))], "+47 912 34 567", texts[r.IntN(len(texts))]
			}
		}
		if n > 0 {
			if _, err := e.store.Append(ctx, id, ledger.TopicFunds, in); err != nil {
				t.Fatalf("day %d: %v", d, err)
			}
		}
	}

	// A second server on the same store and keys, without the in-place read.
	srv2, err := New(Config{Store: hideVisit{e.store}, Auth: e.auth, DataDir: e.dir, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv2.Serve(sctx) }()
	t.Cleanup(func() { cancel(); <-done })
	conn2, err := grpc.NewClient(srv2.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn2.Close() })
	e2 := &apiEnv{t: t, dir: e.dir, store: e.store, auth: e.auth, srv: srv2, base: "http://" + srv2.HTTPAddr().String(),
		conn: conn2, rep: v1.NewReportServiceClient(conn2)}

	for _, env := range []*apiEnv{e, e2} {
		for _, gdpr := range []bool{false, true} {
			// The feed, walked to its end with random page sizes.
			cursor, pages := "", 0
			for ; pages < 100; pages++ {
				size := 1 + r.IntN(16)
				q := url.Values{"pageSize": {strconv.Itoa(size)}, "includeGDPRSensitiveData": {strconv.FormatBool(gdpr)}}
				if cursor != "" {
					q.Set("cursor", cursor)
				}
				got := env.do("GET", "/report/v2/ledgers/"+id+"/funds/feed?"+q.Encode(), tok, nil)
				g, err := env.rep.GetFeed(bearer(tok), &v1.GetFeedRequest{LedgerId: id, Topic: "funds", Cursor: cursor,
					PageSize: int32(size), IncludeGdprSensitiveData: gdpr})
				if err != nil || got.code != 200 {
					t.Fatalf("feed page: %d %s / %v", got.code, got.body, err)
				}
				diffAt(t, fmt.Sprintf("%s feed page %d (gdpr %v)", env.base, pages, gdpr), got.body, marshalGeneric(g))
				if got.hdr.Get("Vipps-Feed-Page-Size") != strconv.Itoa(size) {
					t.Fatalf("Vipps-Feed-Page-Size %q, want %d", got.hdr.Get("Vipps-Feed-Page-Size"), size)
				}
				if g.TryLater {
					break
				}
				cursor = g.Cursor
			}
			if pages < 5 {
				t.Fatalf("feed ended after %d pages", pages)
			}
			// Every date, the day before the first and two after the last.
			for _, d := range append([]ledger.Date{dates[0] - 1, dates[5] + 1, dates[5] + 2}, dates...) {
				cursor := ""
				for pages := 0; pages < 50; pages++ {
					size := 1 + r.IntN(12)
					q := url.Values{"pageSize": {strconv.Itoa(size)}, "includeGDPRSensitiveData": {strconv.FormatBool(gdpr)}}
					if cursor != "" {
						q.Set("cursor", cursor)
					}
					got := env.do("GET", "/report/v2/ledgers/"+id+"/funds/dates/"+d.String()+"?"+q.Encode(), tok, nil)
					g, err := env.rep.GetDateReport(bearer(tok), &v1.GetDateReportRequest{LedgerId: id, Topic: "funds", LedgerDate: d.String(),
						Cursor: cursor, PageSize: int32(size), IncludeGdprSensitiveData: gdpr})
					if err != nil || got.code != 200 {
						t.Fatalf("date %s: %d %s / %v", d, got.code, got.body, err)
					}
					diffAt(t, fmt.Sprintf("%s date %s page %d (gdpr %v)", env.base, d, pages, gdpr), got.body, marshalGeneric(g))
					if !g.HasMore {
						break
					}
					cursor = g.Cursor
				}
			}
		}
		// Errors read the same on both paths: a cursor of another date,
		// an unknown ledger.
		c := env.do("GET", "/report/v2/ledgers/"+id+"/funds/dates/"+dates[3].String()+"?pageSize=2", tok, nil)
		var first struct{ Cursor string }
		if err := json.Unmarshal(c.body, &first); err != nil || first.Cursor == "" {
			t.Fatalf("first page of %s: %s", dates[3], c.body)
		}
		if got := env.do("GET", "/report/v2/ledgers/"+id+"/funds/dates/"+dates[4].String()+"?cursor="+first.Cursor, tok, nil); got.code != 400 {
			t.Errorf("cursor of another date: %d %s", got.code, got.body)
		}
		if got := env.do("GET", "/report/v2/ledgers/nope/funds/feed", tok, nil); got.code != 404 {
			t.Errorf("unknown ledger: %d %s", got.code, got.body)
		}
	}

	// A long poll at the end of the feed answers the entries appended while
	// it waits, written as the gRPC answer for its cursor.
	end := e.do("GET", "/report/v2/ledgers/"+id+"/funds/feed?from=now", tok, nil)
	var at struct{ Cursor string }
	if err := json.Unmarshal(end.body, &at); err != nil || at.Cursor == "" {
		t.Fatalf("from=now: %s", end.body)
	}
	for i, env := range []*apiEnv{e, e2} {
		polled := make(chan resp, 1)
		go func() {
			polled <- env.do("GET", "/report/v2/ledgers/"+id+"/funds/feed?wait=20s&includeGDPRSensitiveData=true&cursor="+at.Cursor, tok, nil)
		}()
		time.Sleep(50 * time.Millisecond) // most likely waiting by now; either way it answers the entry
		h := "NO:123455"
		in := []ledger.EntryInput{{EntryID: fmt.Sprintf("poll-%d", i), PSPReference: "77", Time: now, LedgerDate: today, EntryType: "capture",
			Reference: texts[1], Amount: 5, RecipientHandle: &h, Name: texts[3], PhoneNumber: "+47 912 34 567", Message: texts[2]}}
		if _, err := e.store.Append(ctx, id, ledger.TopicFunds, in); err != nil {
			t.Fatal(err)
		}
		got := <-polled
		g, err := env.rep.GetFeed(bearer(tok), &v1.GetFeedRequest{LedgerId: id, Topic: "funds", Cursor: at.Cursor, IncludeGdprSensitiveData: true})
		if err != nil || got.code != 200 || len(g.Items) != 1 {
			t.Fatalf("long poll: %d %s / %v %v", got.code, got.body, g, err)
		}
		diffAt(t, env.base+" long poll", got.body, marshalGeneric(g))
		at.Cursor = g.Cursor
	}
}

// BenchmarkPageJSON: writing a realistic 1000-entry page (feedPage's
// entries) from raw records, from ledger entries, and the protobuf path it
// replaces for REST (messages, then the typed marshaler).
func BenchmarkPageJSON(b *testing.B) {
	m := feedPage()
	es := make([]ledger.Entry, len(m.Items))
	for i, it := range m.Items {
		es[i] = ledger.Entry{Sequence: uint64(i + 1), PSPReference: it.PspReference, Time: it.Time.AsTime(), EntryType: it.EntryType,
			Reference: it.Reference, Currency: it.Currency, Amount: it.Amount, BalanceBefore: it.BalanceBefore, BalanceAfter: it.BalanceAfter,
			RecipientHandle: it.RecipientHandle, LedgerDate: ledger.Date(18540)}
		if it.Name != nil {
			es[i].GDPR = &ledger.GDPR{Name: *it.Name, MaskedPhoneNo: *it.MaskedPhoneNo, Message: *it.Message}
		}
	}
	raws := make([]*ledger.RawEntry, len(es))
	for i := range es {
		raws[i] = asRaw(&es[i])
	}
	buf := make([]byte, 0, 512<<10)
	// cpu_us/op is the process's CPU time per page: on a busy machine
	// ns/op also counts waiting for a core.
	run := func(name string, page func()) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := rbCPU()
			for b.Loop() {
				page()
			}
			b.ReportMetric(float64(rbCPU()-cpu0)/1e3/float64(b.N), "cpu_us/op")
		})
	}
	run("raw", func() {
		p := &pageJSON{b: append(buf[:0], `{"items":[`...)}
		for _, r := range raws {
			p.raw(r)
		}
	})
	run("entries", func() {
		p := &pageJSON{b: append(buf[:0], `{"items":[`...)}
		p.entries(es)
	})
	run("protobuf", func() { appendFast(buf[:0], &v1.GetFeedResponse{Items: entriesToProto(es)}) })
}

func TestAppendInt(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	vs := append([]int64{}, wireInt64s...)
	for p := int64(1); p > 0 && p < math.MaxInt64/10; p *= 10 {
		vs = append(vs, p, p-1, -p, 1-p, 10*p-1)
	}
	for i := 0; i < 100000; i++ {
		vs = append(vs, int64(r.Uint64())>>r.IntN(64))
	}
	for _, v := range vs {
		if got, want := string(appendInt([]byte("x"), v)), "x"+strconv.FormatInt(v, 10); got != want {
			t.Fatalf("appendInt(%d) = %s", v, got)
		}
	}
}
