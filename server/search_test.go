package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// searchPage is a search answer as JSON.
type searchPage struct {
	Items         []map[string]any `json:"items"`
	HasMore       *bool            `json:"hasMore"`
	FirstObjectID *string          `json:"firstObjectId"`
	LastObjectID  *string          `json:"lastObjectId"`
}

func (e *reportEnv) search(id, topic string, q url.Values) (resp, searchPage) {
	e.t.Helper()
	r := e.do("GET", "/report/v2/ledgers/"+id+"/"+topic+"/entries?"+q.Encode(), e.partner, nil)
	var p searchPage
	if r.code == http.StatusOK {
		if err := json.Unmarshal(r.body, &p); err != nil || p.HasMore == nil || p.FirstObjectID == nil || p.LastObjectID == nil {
			e.t.Fatalf("search answer %v: %s", err, r.body)
		}
	}
	return r, p
}

// pspRefs lists the pspReferences of items (unique per entry here).
func pspRefs(items []map[string]any) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it["pspReference"].(string))
	}
	return out
}

func TestReportAPI_Search_PagesBothWays(t *testing.T) {
	e := newReportEnv(t, Limits{})
	types := []string{"capture", "refund", "capture", "correction", "capture", "capture", "refund"}
	for _, day := range []string{"2024-03-01", "2024-03-02", "2024-03-03"} {
		e.addTyped(ledgerA, ledger.TopicFunds, day, types...)
	}
	all := e.dateEntries(ledgerA, "funds", "2024-03-01")
	all = append(all, e.dateEntries(ledgerA, "funds", "2024-03-02")...)
	all = append(all, e.dateEntries(ledgerA, "funds", "2024-03-03")...)

	for _, q := range []url.Values{
		{},
		{"reference": {"order-1"}},
		{"pspReference": {all[5].PSPReference}},
		{"entryType": {"refund", "correction"}},
		{"fromTime": {all[3].Time}, "toTime": {all[17].Time}},
		{"reference": {"order-2"}, "entryType": {"capture"}, "fromTime": {all[4].Time}},
	} {
		var want []string
		for _, en := range all {
			if r := q.Get("reference"); r != "" && en.Reference != r ||
				q.Get("pspReference") != "" && en.PSPReference != q.Get("pspReference") ||
				q.Has("entryType") && !slices.Contains(q["entryType"], en.EntryType) ||
				q.Get("fromTime") != "" && en.Time < q.Get("fromTime") ||
				q.Get("toTime") != "" && en.Time >= q.Get("toTime") {
				continue
			}
			want = append(want, en.PSPReference)
		}
		if len(want) == 0 {
			t.Fatalf("%v matches nothing: a weak test", q)
		}
		for _, limit := range []int{1, 2, 5, 100} {
			// Forward from the start to the end…
			var fwd []string
			var last searchPage
			fq := url.Values{"limit": {strconv.Itoa(limit)}}
			for k, v := range q {
				fq[k] = v
			}
			for {
				r, p := e.search(ledgerA, "funds", fq)
				if r.code != 200 || len(p.Items) > limit {
					t.Fatalf("%v: %d %s", fq, r.code, r.body)
				}
				for _, it := range p.Items {
					checkItem(t, it, false)
				}
				fwd = append(fwd, pspRefs(p.Items)...)
				last = p
				if !*p.HasMore {
					break
				}
				fq.Set("startingAfter", *p.LastObjectID)
			}
			if !slices.Equal(fwd, want) {
				t.Fatalf("%v limit %d forward:\n got %v\nwant %v", q, limit, fwd, want)
			}
			// …then backward from the last page to the start.
			bwd := pspRefs(last.Items)
			bq := url.Values{"limit": {strconv.Itoa(limit)}, "endingBefore": {*last.FirstObjectID}}
			for k, v := range q {
				bq[k] = v
			}
			for more := len(bwd) < len(want); more; {
				r, p := e.search(ledgerA, "funds", bq)
				if r.code != 200 || len(p.Items) == 0 {
					t.Fatalf("%v: %d %s", bq, r.code, r.body)
				}
				bwd = append(pspRefs(p.Items), bwd...)
				more = *p.HasMore
				bq.Set("endingBefore", *p.FirstObjectID)
			}
			if !slices.Equal(bwd, want) {
				t.Fatalf("%v limit %d backward:\n got %v\nwant %v", q, limit, bwd, want)
			}
		}
	}

	// gRPC answers the same pages, with the same object ids.
	_, p := e.search(ledgerA, "funds", url.Values{"reference": {"order-1"}, "limit": {"2"}})
	g, err := e.rep.SearchEntries(bearer(e.partner), &v1.SearchEntriesRequest{LedgerId: ledgerA, Topic: "funds", Reference: "order-1", Limit: 2})
	if err != nil || len(g.GetItems()) != 2 || g.GetLastObjectId() != *p.LastObjectID || !g.GetHasMore() ||
		g.GetItems()[1].GetPspReference() != p.Items[1]["pspReference"] {
		t.Fatalf("grpc: %v %v", g, err)
	}
	g, err = e.rep.SearchEntries(bearer(e.partner), &v1.SearchEntriesRequest{LedgerId: ledgerA, Topic: "funds", Reference: "order-1", StartingAfter: g.GetLastObjectId(),
		FromTime: timestamppb.New(mustWireTime(t, all[0].Time))})
	if err != nil || len(g.GetItems()) == 0 || g.GetItems()[0].GetPspReference() == p.Items[1]["pspReference"] {
		t.Fatalf("grpc next page: %v %v", g, err)
	}
	// Nothing found: empty items and ids, no more.
	if r, p := e.search(ledgerA, "funds", url.Values{"reference": {"no-such-order"}}); r.code != 200 || len(p.Items) != 0 || *p.HasMore || *p.FirstObjectID != "" {
		t.Fatalf("no match: %s", r.body)
	}
}

func TestReportAPI_Search_Errors(t *testing.T) {
	e := newReportEnv(t, Limits{})
	e.addTyped(ledgerA, ledger.TopicFunds, "2024-03-01", "capture", "capture", "refund")
	e.addTyped(ledgerA, ledger.TopicFees, "2024-03-01", "capture-fee")
	e.addTyped(ledgerA2, ledger.TopicFunds, "2024-03-01", "capture", "capture")
	e.addTyped(ledgerB, ledger.TopicFunds, "2024-03-01", "capture")
	_, a := e.search(ledgerA, "funds", url.Values{"limit": {"1"}})
	_, a2 := e.search(ledgerA2, "funds", url.Values{"limit": {"1"}})
	_, fees := e.search(ledgerA, "fees", url.Values{})
	id := *a.LastObjectID
	edited := []byte(id)
	edited[len(edited)-3] ^= 1

	for _, tc := range []struct {
		path  string
		q     url.Values
		code  int
		field string
	}{
		{ledgerA + "/funds", url.Values{"startingAfter": {*a2.LastObjectID}}, 400, "startingAfter"}, // another ledger's id
		{ledgerA + "/funds", url.Values{"endingBefore": {*fees.LastObjectID}}, 400, "endingBefore"}, // another topic's id
		{ledgerA + "/funds", url.Values{"startingAfter": {string(edited)}}, 400, "startingAfter"},
		{ledgerA + "/funds", url.Values{"startingAfter": {"garbage"}}, 400, "startingAfter"},
		{ledgerA + "/funds", url.Values{"startingAfter": {id}, "endingBefore": {id}}, 400, "endingBefore"},
		{ledgerA + "/funds", url.Values{"limit": {"1001"}}, 400, "limit"},
		{ledgerA + "/funds", url.Values{"limit": {"-1"}}, 400, "limit"},
		{ledgerA + "/funds", url.Values{"entryType": {"Capture!"}}, 400, "entryType"},
		{ledgerA + "/funds", url.Values{"reference": {strings.Repeat("x", 257)}}, 400, "reference"},
		{ledgerA + "/funds", url.Values{"pspReference": {strings.Repeat("x", 257)}}, 400, "pspReference"},
		{ledgerA + "/funds", url.Values{"fromTime": {"2024-03-02T00:00:00Z"}, "toTime": {"2024-03-01T00:00:00Z"}}, 400, "toTime"},
		{ledgerA + "/nope", url.Values{}, 400, "topic"},
		{ledgerA2 + "/funds", url.Values{"includeGDPRSensitiveData": {"true"}}, 403, ""}, // no GDPR consent
		{ledgerB + "/funds", url.Values{}, 404, ""},                                      // no grant
		{"999999/funds", url.Values{}, 404, ""},
	} {
		r := e.do("GET", "/report/v2/ledgers/"+tc.path+"/entries?"+tc.q.Encode(), e.partner, nil)
		d, _ := r.json(t)["detail"].(string)
		if r.code != tc.code || tc.field != "" && !strings.HasPrefix(d, tc.field+":") {
			t.Errorf("%s %v: %d %s", tc.path, tc.q, r.code, r.body)
		}
	}
	// The same over gRPC: InvalidArgument with the same text.
	_, err := e.rep.SearchEntries(bearer(e.partner), &v1.SearchEntriesRequest{LedgerId: ledgerA, Topic: "funds", StartingAfter: *a2.LastObjectID})
	if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "startingAfter:") {
		t.Errorf("grpc foreign id: %v", err)
	}
	// With consent, GDPR fields come along.
	r, p := e.search(ledgerA, "funds", url.Values{"includeGDPRSensitiveData": {"true"}})
	if r.code != 200 || len(p.Items) != 3 || p.Items[0]["name"] != "Kari Nordmann" {
		t.Errorf("gdpr: %s", r.body)
	}
}

func mustWireTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
