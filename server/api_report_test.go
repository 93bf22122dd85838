package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ledgerfeed/ledgerfeed/feed"
	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// reportEnv is an apiEnv with ledgers A (302321) and A2 (302323) granted to
// the partner "acme" (GDPR consent on A only) and B (302322) granted to no
// one but "other".
type reportEnv struct {
	*apiEnv
	partner string // token of acme
	n       atomic.Int64
}

const (
	ledgerA  = "302321"
	ledgerB  = "302322"
	ledgerA2 = "302323"
)

func newReportEnv(t *testing.T, limits Limits) *reportEnv {
	t.Helper()
	e := &reportEnv{apiEnv: newAPIEnv(t, nil, limits)}
	admin := e.adminToken()
	for _, id := range []string{ledgerA, ledgerB, ledgerA2} {
		e.putLedger(admin, id)
	}
	secret := e.createClient(admin, "acme", []string{"read"},
		map[string]any{"ledgerId": ledgerA, "gdprConsent": true},
		map[string]any{"ledgerId": ledgerA2, "gdprConsent": false})
	e.createClient(admin, "other", []string{"read"}, map[string]any{"ledgerId": ledgerB, "gdprConsent": true})
	e.partner = e.token("acme", secret)
	return e
}

// add appends n entries to (id, topic) on date day (YYYY-MM-DD), with GDPR
// data and a recipient handle on every other one.
func (e *reportEnv) add(id string, topic ledger.Topic, day string, n int) {
	e.t.Helper()
	d, err := ledger.ParseDate(day)
	if err != nil {
		e.t.Fatal(err)
	}
	in := make([]ledger.EntryInput, n)
	for i := range in {
		k := e.n.Add(1)
		in[i] = ledger.EntryInput{
			EntryID: fmt.Sprintf("e%d", k), PSPReference: fmt.Sprintf("psp%d", k), Reference: fmt.Sprintf("order-%d", k),
			Time:       time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC).AddDate(0, 0, int(d-19723)).Add(time.Duration(k) * time.Microsecond),
			LedgerDate: d, EntryType: "capture", Amount: k,
		}
		if k%2 == 0 {
			h := "api:123456"
			in[i].RecipientHandle = &h
			in[i].Name, in[i].PhoneNumber, in[i].Message = "Ola Nordmann", "+4712345678", "takk"
		}
	}
	if _, err := e.store.Append(context.Background(), id, topic, in); err != nil {
		e.t.Fatalf("append %s/%s %s: %v", id, topic, day, err)
	}
}

// page is a report answer as JSON.
type page struct {
	Items    []map[string]any `json:"items"`
	TryLater *bool            `json:"tryLater"`
	HasMore  *bool            `json:"hasMore"`
	Cursor   *string          `json:"cursor"`
}

func (e *reportEnv) get(path string, q url.Values) (resp, page) {
	e.t.Helper()
	if q != nil {
		path += "?" + q.Encode()
	}
	r := e.do("GET", path, e.partner, nil)
	var p page
	if r.code == http.StatusOK {
		if err := json.Unmarshal(r.body, &p); err != nil {
			e.t.Fatalf("GET %s: %v\n%s", path, err, r.body)
		}
	}
	return r, p
}

func feedPath(id, topic string) string { return "/report/v2/ledgers/" + id + "/" + topic + "/feed" }
func datePath(id, topic, d string) string {
	return "/report/v2/ledgers/" + id + "/" + topic + "/dates/" + d
}

var wireTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

// checkItem checks an item's names and types; gdpr: whether the three GDPR
// fields must be there (on entries that have them).
func checkItem(t *testing.T, it map[string]any, gdpr bool) {
	t.Helper()
	want := []string{"amount", "balanceAfter", "balanceBefore", "currency", "entryType", "ledgerDate", "pspReference", "recipientHandle", "reference", "time"}
	if gdpr && it["recipientHandle"] != nil {
		want = append(want, "maskedPhoneNo", "message", "name")
	}
	var got []string
	for k := range it {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("item names %v, want %v: %v", got, want, it)
	}
	for _, k := range []string{"amount", "balanceBefore", "balanceAfter"} {
		if _, ok := it[k].(float64); !ok {
			t.Fatalf("%s is %T, want a JSON number", k, it[k])
		}
	}
	if s, _ := it["time"].(string); !wireTime.MatchString(s) {
		t.Fatalf("time %q", it["time"])
	}
	if gdpr && it["recipientHandle"] != nil && it["maskedPhoneNo"] != "xxxx 5678" {
		t.Fatalf("maskedPhoneNo %v", it["maskedPhoneNo"])
	}
}

func TestReportAPI_PartnerIsolation(t *testing.T) {
	e := newReportEnv(t, Limits{})
	e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 2)
	e.add(ledgerB, ledger.TopicFunds, "2024-01-01", 2)

	// The list shows only the granted ledgers, in the public shape.
	r := e.do("GET", "/settlement/v1/ledgers", e.partner, nil)
	if r.code != 200 {
		t.Fatalf("list: %d %s", r.code, r.body)
	}
	var list struct {
		Items  []map[string]any `json:"items"`
		Cursor *string          `json:"cursor"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 || list.Items[0]["ledgerId"] != ledgerA || list.Items[1]["ledgerId"] != ledgerA2 || list.Cursor == nil || *list.Cursor != "" {
		t.Fatalf("list: %s", r.body)
	}
	for _, k := range []string{"ledgerId", "currency", "payoutBankAccount", "owner", "settlesForRecipientHandles", "salesUnits"} {
		if _, ok := list.Items[0][k]; !ok {
			t.Errorf("ledger JSON lacks %s: %s", k, r.body)
		}
	}
	// Paged one by one: A, then A2 with an empty cursor.
	r = e.do("GET", "/settlement/v1/ledgers?pageSize=1", e.partner, nil)
	json.Unmarshal(r.body, &list)
	if len(list.Items) != 1 || list.Items[0]["ledgerId"] != ledgerA || *list.Cursor == "" {
		t.Fatalf("list page 1: %s", r.body)
	}
	r = e.do("GET", "/settlement/v1/ledgers?pageSize=1&cursor="+*list.Cursor, e.partner, nil)
	json.Unmarshal(r.body, &list)
	if len(list.Items) != 1 || list.Items[0]["ledgerId"] != ledgerA2 || *list.Cursor != "" {
		t.Fatalf("list page 2: %s", r.body)
	}
	// A filter no ledger matches.
	r = e.do("GET", "/settlement/v1/ledgers?settlesForRecipientHandles=api:999", e.partner, nil)
	json.Unmarshal(r.body, &list)
	if r.code != 200 || len(list.Items) != 0 {
		t.Fatalf("filtered list: %d %s", r.code, r.body)
	}

	// Every endpoint answers B exactly as an unknown ledger.
	for _, suffix := range []string{
		"/funds/feed", "/funds/feed?cursor=garbage", "/funds/feed?includeGDPRSensitiveData=true", "/fees/feed?wait=1s",
		"/funds/dates/2024-01-01", "/funds/dates/2024-01-01?cursor=x", "/funds/dates/not-a-date", "/nosuchtopic/feed",
	} {
		rb := e.do("GET", "/report/v2/ledgers/"+ledgerB+suffix, e.partner, nil)
		ru := e.do("GET", "/report/v2/ledgers/999999"+suffix, e.partner, nil)
		wantB := withoutContextID(t, ru.body)
		gotB := withoutContextID(t, rb.body)
		// The instance names the path, which differs by the id only.
		if rb.code != http.StatusNotFound || ru.code != rb.code || gotB != regexp.MustCompile(`999999`).ReplaceAllString(wantB, ledgerB) {
			t.Errorf("%s: B %d %s; unknown %d %s", suffix, rb.code, rb.body, ru.code, ru.body)
		}
	}
	ctx := bearer(e.partner)
	_, errB := e.rep.GetFeed(ctx, &v1.GetFeedRequest{LedgerId: ledgerB, Topic: "funds"})
	_, errU := e.rep.GetFeed(ctx, &v1.GetFeedRequest{LedgerId: "999999", Topic: "funds"})
	if status.Code(errB) != codes.NotFound || status.Convert(errB).Message() != "ledger "+ledgerB+": not found" || status.Convert(errU).Message() != "ledger 999999: not found" {
		t.Errorf("gRPC GetFeed: B %v, unknown %v", errB, errU)
	}
	_, errB = e.rep.GetDateReport(ctx, &v1.GetDateReportRequest{LedgerId: ledgerB, Topic: "funds", LedgerDate: "2024-01-01"})
	if status.Code(errB) != codes.NotFound {
		t.Errorf("gRPC GetDateReport B: %v", errB)
	}
	for _, id := range []string{ledgerB, "999999"} {
		st, err := e.rep.SubscribeFeed(ctx, &v1.SubscribeFeedRequest{LedgerId: id, Topic: "funds"})
		if err == nil {
			_, err = st.Recv()
		}
		if status.Code(err) != codes.NotFound || status.Convert(err).Message() != "ledger "+id+": not found" {
			t.Errorf("SubscribeFeed %s: %v", id, err)
		}
	}
	// The reads are audited.
	if err := e.auth.FlushAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs, _, err := e.store.ListAudit(ledger.AuditFilter{ClientID: "acme", Action: "feed.read"}, 0, 1000)
	if err != nil || len(evs) == 0 {
		t.Errorf("audit of feed reads: %d events, %v", len(evs), err)
	}
}

func TestReportAPI_GDPR(t *testing.T) {
	e := newReportEnv(t, Limits{})
	e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 4)
	e.add(ledgerA2, ledger.TopicFunds, "2024-01-01", 4)
	// Without consent (A2): 403 on both endpoints, REST and gRPC.
	for _, p := range []string{feedPath(ledgerA2, "funds"), datePath(ledgerA2, "funds", "2024-01-01")} {
		if r, _ := e.get(p, url.Values{"includeGDPRSensitiveData": {"true"}}); r.code != http.StatusForbidden {
			t.Errorf("%s without consent: %d %s", p, r.code, r.body)
		}
	}
	if _, err := e.rep.GetFeed(bearer(e.partner), &v1.GetFeedRequest{LedgerId: ledgerA2, Topic: "funds", IncludeGdprSensitiveData: true}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC without consent: %v", err)
	}
	// With consent: present. Without the flag: absent (with consent too).
	for _, tc := range []struct {
		id   string
		flag string
		gdpr bool
	}{{ledgerA, "true", true}, {ledgerA, "false", false}, {ledgerA, "", false}, {ledgerA2, "", false}} {
		q := url.Values{}
		if tc.flag != "" {
			q.Set("includeGDPRSensitiveData", tc.flag)
		}
		for _, p := range []string{feedPath(tc.id, "funds"), datePath(tc.id, "funds", "2024-01-01")} {
			r, pg := e.get(p, q)
			if r.code != 200 || len(pg.Items) != 4 {
				t.Fatalf("%s %v: %d %s", p, q, r.code, r.body)
			}
			for _, it := range pg.Items {
				checkItem(t, it, tc.gdpr)
			}
		}
	}
}

func TestReportAPI_FeedWalk(t *testing.T) {
	e := newReportEnv(t, Limits{})
	const writers, batches = 3, 15
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 1+(w+b)%4)
				time.Sleep(time.Millisecond)
			}
		})
	}
	total := 0
	for w := range writers {
		for b := range batches {
			total += 1 + (w+b)%4
		}
	}
	var writing atomic.Bool
	writing.Store(true)
	go func() { wg.Wait(); writing.Store(false) }()

	rng := rand.New(rand.NewPCG(1, 2))
	var seen []map[string]any
	cursor, lastAnswer := "", ""
	for {
		n := 1 + rng.IntN(7)
		q := url.Values{"pageSize": {strconv.Itoa(n)}}
		if cursor != "" || rng.IntN(2) == 0 {
			q.Set("cursor", cursor) // an empty cursor= is no cursor
		}
		r, pg := e.get(feedPath(ledgerA, "funds"), q)
		if r.code != 200 || pg.TryLater == nil || pg.Cursor == nil || *pg.Cursor == "" {
			t.Fatalf("feed: %d %s", r.code, r.body)
		}
		if r.hdr.Get("Vipps-Feed-Page-Size") != strconv.Itoa(n) || len(pg.Items) > n {
			t.Fatalf("page size header %q, %d items, asked %d", r.hdr.Get("Vipps-Feed-Page-Size"), len(pg.Items), n)
		}
		seen = append(seen, pg.Items...)
		if *pg.TryLater {
			if len(pg.Items) != 0 || (cursor != "" && *pg.Cursor != cursor) {
				t.Fatalf("tryLater answer: %s (cursor sent %q)", r.body, cursor)
			}
			lastAnswer = *pg.Cursor
			if !writing.Load() && len(seen) == total {
				break
			}
			if !writing.Load() && len(seen) > total {
				t.Fatalf("%d entries seen, %d appended", len(seen), total)
			}
		}
		cursor = *pg.Cursor
	}
	if lastAnswer != cursor {
		t.Fatalf("last answer's cursor %q, sent %q", lastAnswer, cursor)
	}
	var bal float64
	psp := map[any]bool{}
	for i, it := range seen {
		checkItem(t, it, false)
		if it["balanceBefore"].(float64) != bal {
			t.Fatalf("item %d: balanceBefore %v, previous balanceAfter %v", i, it["balanceBefore"], bal)
		}
		bal = it["balanceAfter"].(float64)
		if bal != it["balanceBefore"].(float64)+it["amount"].(float64) {
			t.Fatalf("item %d: balances do not add up: %v", i, it)
		}
		if psp[it["pspReference"]] {
			t.Fatalf("item %d seen twice: %v", i, it)
		}
		psp[it["pspReference"]] = true
	}
	h, _ := e.store.Head(ledgerA, ledger.TopicFunds)
	if int(h.Sequence) != total || int64(bal) != h.Balance {
		t.Fatalf("walked to balance %v over %d entries; head %+v, %d appended", bal, len(seen), h, total)
	}
	// The default page size is 1000, and said so.
	if r, _ := e.get(feedPath(ledgerA, "funds"), nil); r.hdr.Get("Vipps-Feed-Page-Size") != "1000" {
		t.Errorf("default page size header %q", r.hdr.Get("Vipps-Feed-Page-Size"))
	}
}

func TestReportAPI_LongPoll(t *testing.T) {
	e := newReportEnv(t, Limits{})
	e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 2)
	_, pg := e.get(feedPath(ledgerA, "funds"), nil)
	_, end := e.get(feedPath(ledgerA, "funds"), url.Values{"cursor": {*pg.Cursor}})
	if !*end.TryLater {
		t.Fatalf("not at the end: %+v", end)
	}
	// A commit during the wait answers it at once.
	go func() {
		time.Sleep(300 * time.Millisecond)
		e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 1)
	}()
	start := time.Now()
	r, got := e.get(feedPath(ledgerA, "funds"), url.Values{"cursor": {*end.Cursor}, "wait": {"30s"}})
	if took := time.Since(start); r.code != 200 || len(got.Items) != 1 || *got.TryLater || took > 15*time.Second {
		t.Fatalf("long poll after %v: %d %s", took, r.code, r.body)
	}
	if got.Items[0]["pspReference"] != "psp3" {
		t.Fatalf("long poll item %v", got.Items[0])
	}
	// A wait that ends: the same cursor, tryLater.
	start = time.Now()
	r, again := e.get(feedPath(ledgerA, "funds"), url.Values{"cursor": {*got.Cursor}, "wait": {"1s"}})
	if took := time.Since(start); r.code != 200 || !*again.TryLater || *again.Cursor != *got.Cursor || took < 900*time.Millisecond {
		t.Fatalf("expired long poll after %v: %d %s", took, r.code, r.body)
	}
	// gRPC too.
	go func() {
		time.Sleep(300 * time.Millisecond)
		e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 1)
	}()
	gr, err := e.rep.GetFeed(bearer(e.partner), &v1.GetFeedRequest{LedgerId: ledgerA, Topic: "funds", Cursor: *got.Cursor, Wait: durationpb.New(30 * time.Second)})
	if err != nil || len(gr.Items) != 1 || gr.Items[0].PspReference != "psp4" {
		t.Fatalf("gRPC long poll: %v %v", gr, err)
	}
	// Bad waits.
	for _, w := range []string{"61s", "-1s", "abc", "5"} {
		if r, _ := e.get(feedPath(ledgerA, "funds"), url.Values{"wait": {w}}); r.code != http.StatusBadRequest {
			t.Errorf("wait=%s: %d %s", w, r.code, r.body)
		}
	}
}

func TestReportAPI_Cursors(t *testing.T) {
	e := newReportEnv(t, Limits{})
	e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 3)
	e.add(ledgerA, ledger.TopicFees, "2024-01-01", 3)
	e.add(ledgerA2, ledger.TopicFunds, "2024-01-01", 3)
	e.add(ledgerA, ledger.TopicFunds, "2024-01-02", 1) // closes 2024-01-01
	_, fp := e.get(feedPath(ledgerA, "funds"), url.Values{"pageSize": {"1"}})
	_, dp := e.get(datePath(ledgerA, "funds", "2024-01-01"), url.Values{"pageSize": {"1"}})
	feedCur, dateCur := *fp.Cursor, *dp.Cursor
	if r, _ := e.get(feedPath(ledgerA, "funds"), url.Values{"cursor": {feedCur}}); r.code != 200 {
		t.Fatalf("own feed cursor: %d %s", r.code, r.body)
	}
	if r, _ := e.get(datePath(ledgerA, "funds", "2024-01-01"), url.Values{"cursor": {dateCur}}); r.code != 200 {
		t.Fatalf("own date cursor: %d %s", r.code, r.body)
	}
	edited := []byte(feedCur)
	if edited[3] == 'A' {
		edited[3] = 'B'
	} else {
		edited[3] = 'A'
	}
	for _, tc := range []struct{ path, cursor string }{
		{feedPath(ledgerA, "funds"), string(edited)},
		{feedPath(ledgerA, "funds"), "garbage!"},
		{feedPath(ledgerA, "funds"), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{feedPath(ledgerA, "funds"), dateCur},
		{feedPath(ledgerA, "fees"), feedCur},
		{feedPath(ledgerA2, "funds"), feedCur},
		{datePath(ledgerA, "funds", "2024-01-02"), dateCur},
		{datePath(ledgerA, "fees", "2024-01-01"), dateCur},
		{datePath(ledgerA2, "funds", "2024-01-01"), dateCur},
		{datePath(ledgerA, "funds", "2024-01-01"), feedCur},
		{"/settlement/v1/ledgers", feedCur},
	} {
		r, _ := e.get(tc.path, url.Values{"cursor": {tc.cursor}})
		if r.code != http.StatusBadRequest || r.json(t)["errorCode"] != float64(codeValidation) {
			t.Errorf("%s with cursor %q: %d %s", tc.path, tc.cursor, r.code, r.body)
		}
	}
	// An empty cursor is no cursor.
	if r, pg := e.get(feedPath(ledgerA, "funds"), url.Values{"cursor": {""}}); r.code != 200 || len(pg.Items) != 4 {
		t.Errorf("empty cursor: %d %s", r.code, r.body)
	}
	// Page sizes.
	for _, p := range []string{feedPath(ledgerA, "funds"), datePath(ledgerA, "funds", "2024-01-01")} {
		for _, n := range []string{"1001", "0", "-1", "abc"} {
			if r, _ := e.get(p, url.Values{"pageSize": {n}}); r.code != http.StatusBadRequest {
				t.Errorf("%s pageSize=%s: %d %s", p, n, r.code, r.body)
			}
		}
		if r, _ := e.get(p, url.Values{"pageSize": {"1000"}}); r.code != 200 || r.hdr.Get("Vipps-Feed-Page-Size") != "1000" {
			t.Errorf("%s pageSize=1000: %d %s", p, r.code, r.body)
		}
	}
	// gRPC: a cursor of another topic is INVALID_ARGUMENT.
	if _, err := e.rep.GetFeed(bearer(e.partner), &v1.GetFeedRequest{LedgerId: ledgerA, Topic: "fees", Cursor: feedCur}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("gRPC moved cursor: %v", err)
	}
}

func TestReportAPI_DateReports(t *testing.T) {
	e := newReportEnv(t, Limits{})
	// Before the ledger begins, every date answers like a future one.
	r, pg := e.get(datePath(ledgerA, "funds", "2024-01-01"), nil)
	if r.code != 200 || string(r.body) != `{"items":[],"hasMore":false,"tryLater":true}` {
		t.Fatalf("not begun: %d %s", r.code, r.body)
	}
	e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 5)
	e.add(ledgerA, ledger.TopicFunds, "2024-01-03", 2) // closes 01 and 02; 03 open

	// Closed date, paged by 2: 2, 2, 1; the last page without cursor.
	var items []map[string]any
	cursor := ""
	for i := 0; ; i++ {
		q := url.Values{"pageSize": {"2"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r, pg = e.get(datePath(ledgerA, "funds", "2024-01-01"), q)
		if r.code != 200 || *pg.TryLater || r.hdr.Get("Vipps-Feed-Page-Size") != "2" {
			t.Fatalf("closed page %d: %d %s", i, r.code, r.body)
		}
		items = append(items, pg.Items...)
		if !*pg.HasMore {
			if pg.Cursor != nil {
				t.Fatalf("last page with a cursor: %s", r.body)
			}
			break
		}
		if pg.Cursor == nil || *pg.Cursor == "" || len(pg.Items) != 2 {
			t.Fatalf("hasMore page: %s", r.body)
		}
		cursor = *pg.Cursor
	}
	// The report equals the feed's entries of that date.
	_, fp := e.get(feedPath(ledgerA, "funds"), nil)
	if len(items) != 5 {
		t.Fatalf("closed date: %d items", len(items))
	}
	for i := range items {
		checkItem(t, items[i], false)
		a, _ := json.Marshal(items[i])
		b, _ := json.Marshal(fp.Items[i])
		if string(a) != string(b) {
			t.Fatalf("date item %d %s, feed %s", i, a, b)
		}
	}
	// The closed date's amounts sum to its balance change.
	var sum float64
	for _, it := range items {
		sum += it["amount"].(float64)
	}
	if items[len(items)-1]["balanceAfter"].(float64)-items[0]["balanceBefore"].(float64) != sum {
		t.Fatalf("amounts sum to %v; balances %v → %v", sum, items[0]["balanceBefore"], items[len(items)-1]["balanceAfter"])
	}
	// Closed and empty.
	r, _ = e.get(datePath(ledgerA, "funds", "2024-01-02"), nil)
	if string(r.body) != `{"items":[],"hasMore":false,"tryLater":false}` {
		t.Fatalf("closed empty: %s", r.body)
	}
	// Open: what it has, tryLater; paged the same way.
	r, pg = e.get(datePath(ledgerA, "funds", "2024-01-03"), url.Values{"pageSize": {"1"}})
	if r.code != 200 || len(pg.Items) != 1 || !*pg.HasMore || !*pg.TryLater {
		t.Fatalf("open page 1: %s", r.body)
	}
	r, pg = e.get(datePath(ledgerA, "funds", "2024-01-03"), url.Values{"pageSize": {"1"}, "cursor": {*pg.Cursor}})
	if r.code != 200 || len(pg.Items) != 1 || *pg.HasMore || !*pg.TryLater {
		t.Fatalf("open page 2: %s", r.body)
	}
	// The other topic: same dates, no entries.
	r, _ = e.get(datePath(ledgerA, "fees", "2024-01-01"), nil)
	if string(r.body) != `{"items":[],"hasMore":false,"tryLater":false}` {
		t.Fatalf("fees, closed empty: %s", r.body)
	}
	// Future.
	r, _ = e.get(datePath(ledgerA, "funds", "2024-01-04"), nil)
	if string(r.body) != `{"items":[],"hasMore":false,"tryLater":true}` {
		t.Fatalf("future: %s", r.body)
	}
	// Bad dates.
	for _, d := range []string{"2024-13-01", "yesterday", "2024-1-1", "1970-01-01"} {
		if r, _ := e.get(datePath(ledgerA, "funds", d), nil); r.code != http.StatusBadRequest {
			t.Errorf("date %s: %d %s", d, r.code, r.body)
		}
	}
	// gRPC sends the page size as metadata.
	var md metadata.MD
	gr, err := e.rep.GetDateReport(bearer(e.partner), &v1.GetDateReportRequest{LedgerId: ledgerA, Topic: "funds", LedgerDate: "2024-01-01", PageSize: 3}, grpc.Header(&md))
	if err != nil || len(gr.Items) != 3 || !gr.HasMore || gr.TryLater || gr.Cursor == "" || !slices.Equal(md.Get("vipps-feed-page-size"), []string{"3"}) {
		t.Fatalf("gRPC date report: %v %v %v", gr, md, err)
	}
}

func TestReportAPI_SubscribeFeed(t *testing.T) {
	e := newReportEnv(t, Limits{})
	e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 5)
	var got []string
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // appends while the streams run
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 1+i%3)
			}
		}
	})
	// receive reads pages until it holds n more entries or a heartbeat
	// comes; it returns the cursor of the last page.
	receive := func(cursor string, n int, wantBeat bool) string {
		ctx, cancel := context.WithCancel(bearer(e.partner))
		defer cancel() // the disconnect
		st, err := e.rep.SubscribeFeed(ctx, &v1.SubscribeFeedRequest{LedgerId: ledgerA, Topic: "funds", Cursor: cursor, PageSize: 2, HeartbeatInterval: durationpb.New(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		hdr, err := st.Header()
		if err != nil || len(hdr.Get("vipps-feed-page-size")) == 0 || hdr.Get("vipps-feed-page-size")[0] != "2" {
			t.Fatalf("stream header %v, %v", hdr, err)
		}
		for k := 0; ; {
			m, err := st.Recv()
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			if hb := m.GetHeartbeat(); hb != nil {
				if hb.GetCursor() != cursor || hb.GetTime() == nil {
					t.Fatalf("heartbeat %v at cursor %q", hb, cursor)
				}
				if wantBeat {
					return cursor
				}
				continue
			}
			p := m.GetPage()
			if len(p.GetItems()) == 0 || p.GetCursor() == "" || len(p.GetItems()) > 2 {
				t.Fatalf("page %v", p)
			}
			mu.Lock()
			for _, it := range p.GetItems() {
				got = append(got, it.GetPspReference())
			}
			mu.Unlock()
			cursor = p.GetCursor()
			if k += len(p.GetItems()); !wantBeat && k >= n {
				return cursor
			}
		}
	}
	cur := receive("", 7, false)
	cur = receive(cur, 9, false)
	close(stop)
	wg.Wait()
	// After the appends stop: the rest, then a heartbeat.
	cur = receive(cur, 0, true)
	h, _ := e.store.Head(ledgerA, ledger.TopicFunds)
	if len(got) != int(h.Sequence) {
		t.Fatalf("%d entries streamed, %d appended", len(got), h.Sequence)
	}
	for i, psp := range got {
		if i > 0 && psp == got[i-1] {
			t.Fatalf("entry %s twice", psp)
		}
	}
	// The feed's entries in the feed's order.
	var want []string
	entries, _ := e.store.Entries(ledgerA, ledger.TopicFunds, 1, 10000, ledger.ReadOptions{})
	for _, en := range entries {
		want = append(want, en.PSPReference)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("streamed %v\nfeed %v", got, want)
	}
	// The stream's cursor is a feed cursor.
	if r, pg := e.get(feedPath(ledgerA, "funds"), url.Values{"cursor": {cur}}); r.code != 200 || !*pg.TryLater {
		t.Fatalf("stream cursor on the feed: %d %s", r.code, r.body)
	}
}

// TestReportAPI_ShutdownEndsWaits: a long poll and a stream do not hold up
// a graceful shutdown.
func TestReportAPI_ShutdownEndsWaits(t *testing.T) {
	e := newReportEnv(t, Limits{})
	st, err := e.rep.SubscribeFeed(bearer(e.partner), &v1.SubscribeFeedRequest{LedgerId: ledgerA, Topic: "funds"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Header(); err != nil {
		t.Fatal(err)
	}
	poll := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", e.base+feedPath(ledgerA, "funds")+"?wait=60s", nil)
		req.Header.Set("Authorization", "Bearer "+e.partner)
		hr, err := http.DefaultClient.Do(req)
		if err != nil {
			poll <- -1
			return
		}
		io.Copy(io.Discard, hr.Body)
		hr.Body.Close()
		poll <- hr.StatusCode
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	e.srv.shutdown()
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("shutdown took %v", took)
	}
	if code := <-poll; code != 200 {
		t.Errorf("long poll during shutdown: %d", code)
	}
	if _, err := st.Recv(); err == nil {
		t.Error("stream still open after shutdown")
	}
}

func TestReportAPI_FeedStart(t *testing.T) {
	e := newReportEnv(t, Limits{})
	e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 2)
	e.add(ledgerA, ledger.TopicFunds, "2024-01-03", 3)
	for _, tc := range []struct {
		q     url.Values
		items int
	}{
		{url.Values{"from": {"now"}}, 0},
		{url.Values{"fromLedgerDate": {"2024-01-02"}}, 3},
		{url.Values{"fromLedgerDate": {"2023-12-01"}}, 5},
		{url.Values{"fromLedgerDate": {"2024-02-01"}}, 0},
	} {
		r, pg := e.get(feedPath(ledgerA, "funds"), tc.q)
		if r.code != 200 || len(pg.Items) != tc.items || pg.Cursor == nil || *pg.Cursor == "" || *pg.TryLater != (tc.items == 0) {
			t.Errorf("%v: %d %s", tc.q, r.code, r.body)
		}
	}
	// from=now, then an append: the feed carries only the new entry.
	_, pg := e.get(feedPath(ledgerA, "funds"), url.Values{"from": {"now"}})
	e.add(ledgerA, ledger.TopicFunds, "2024-01-03", 1)
	if r, next := e.get(feedPath(ledgerA, "funds"), url.Values{"cursor": {*pg.Cursor}}); len(next.Items) != 1 || next.Items[0]["pspReference"] != "psp6" {
		t.Errorf("after from=now: %s", r.body)
	}
	for _, q := range []url.Values{{"from": {"later"}}, {"fromLedgerDate": {"x"}}, {"from": {"now"}, "fromLedgerDate": {"2024-01-01"}}} {
		if r, _ := e.get(feedPath(ledgerA, "funds"), q); r.code != http.StatusBadRequest {
			t.Errorf("%v: %d %s", q, r.code, r.body)
		}
	}
	// The cursor key is kept in the data directory, private.
	if fi, err := os.Stat(filepath.Join(e.dir, feed.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cursor key: %v %v", fi, err)
	}
}

// TestReportAPI_LongPollSlots: a client holds at most its long poll slots;
// a stream takes one, and a long poll beyond them is a 429.
func TestReportAPI_LongPollSlots(t *testing.T) {
	e := newReportEnv(t, Limits{MaxLongPollsPerClient: 1})
	ctx, cancel := context.WithCancel(bearer(e.partner))
	defer cancel()
	st, err := e.rep.SubscribeFeed(ctx, &v1.SubscribeFeedRequest{LedgerId: ledgerA, Topic: "funds"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Header(); err != nil { // sent once the slot is taken
		t.Fatal(err)
	}
	r := e.do("GET", feedPath(ledgerA, "fees")+"?wait=1s", e.partner, nil)
	if r.code != http.StatusTooManyRequests || r.hdr.Get("Retry-After") == "" {
		t.Fatalf("long poll beyond the slots: %d %v %s", r.code, r.hdr, r.body)
	}
	// A read without wait is not a long poll.
	if r := e.do("GET", feedPath(ledgerA, "fees"), e.partner, nil); r.code != 200 {
		t.Errorf("plain read while streaming: %d %s", r.code, r.body)
	}
	// The stream's end frees the slot.
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.do("GET", feedPath(ledgerA, "fees")+"?wait=1s", e.partner, nil)
		if r.code == http.StatusOK {
			break
		}
		if r.code != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("long poll after the stream ended: %d %s", r.code, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
