package server

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// TestFeedREST_SameAsGateway answers a table of feed requests, good and
// bad, once through the server's routes (feedREST in front of the gateway)
// and once through the gateway alone, and requires the same status,
// headers and bytes. It also checks which requests feedREST answered
// itself, so that the comparison covers its own path and not only its
// hand-over.
func TestFeedREST_SameAsGateway(t *testing.T) {
	e := newReportEnv(t, Limits{MaxLongPollsPerClient: 8})
	e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 7)
	e.add(ledgerA, ledger.TopicFees, "2024-01-01", 2)
	e.add(ledgerA2, ledger.TopicFunds, "2024-01-02", 3)
	_, first := e.get(feedPath(ledgerA, "funds"), url.Values{"pageSize": {"3"}})
	_, fees := e.get(feedPath(ledgerA, "fees"), url.Values{"pageSize": {"1"}})
	_, end := e.get(feedPath(ledgerA, "funds"), url.Values{"from": {"now"}})

	s := e.srv
	maxBody := s.limits.MaxBodyBytes
	var handedOver atomic.Int64
	gw := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handedOver.Add(1)
		s.gateway.ServeHTTP(w, r)
	})
	routes := http.NewServeMux() // as registerHTTPAPI
	routes.Handle("/report/", s.rest(maxBody, reportQuery(s.gateway)))
	routes.Handle(feedPattern, s.rest(maxBody, reportQuery(s.feedREST(gw))))
	gatewayOnly := http.NewServeMux()
	gatewayOnly.Handle("/report/", s.rest(maxBody, reportQuery(s.gateway)))

	feedA := feedPath(ledgerA, "funds")
	type req struct {
		method, target string
		hdr            map[string]string // beside Authorization: Bearer <partner>, unless set
		own            bool              // feedREST answers it itself
	}
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return feedA + "?" + v.Encode()
	}
	cases := []req{
		{"GET", feedA, nil, true},
		{"GET", q("pageSize", "2"), nil, true},
		{"GET", q("pageSize", "1000"), nil, true},
		{"GET", q("pageSize", "1001"), nil, true},
		{"GET", q("cursor", *first.Cursor), nil, true},
		{"GET", q("cursor", *first.Cursor, "pageSize", "2", "includeGDPRSensitiveData", "true"), nil, true},
		{"GET", q("includeGDPRSensitiveData", "false"), nil, true},
		{"GET", q("cursor", *end.Cursor, "wait", "1ms"), nil, true},
		{"GET", q("cursor", *end.Cursor, "wait", "0s"), nil, true},
		{"GET", q("wait", "61s"), nil, true},
		{"GET", q("wait", "-1s"), nil, true},
		{"GET", q("wait", "soon"), nil, false},
		{"GET", q("from", "now"), nil, true},
		{"GET", q("from", "then"), nil, true},
		{"GET", q("fromLedgerDate", "2024-01-01"), nil, true},
		{"GET", q("fromLedgerDate", "2024-13-01"), nil, true},
		{"GET", q("from", "now", "fromLedgerDate", "2024-01-01"), nil, true},
		{"GET", q("cursor", "garbage"), nil, true},
		{"GET", q("cursor", *fees.Cursor), nil, true}, // a fees cursor on funds
		{"GET", q("cursor", ""), nil, true},
		{"GET", feedPath(ledgerA2, "funds") + "?includeGDPRSensitiveData=true", nil, true}, // no consent
		{"GET", feedPath(ledgerB, "funds"), nil, true},                                     // not granted
		{"GET", feedPath("999999", "funds"), nil, true},
		{"GET", feedPath(ledgerA, "bogus"), nil, true},
		{"GET", feedA, map[string]string{"Authorization": ""}, true},
		{"GET", feedA, map[string]string{"Authorization": "Bearer nope"}, true},
		{"GET", feedA, map[string]string{"Authorization": "Basic abc"}, true},
		{"GET", feedA, map[string]string{"Vipps-System-Name": "erp", "Vipps-System-Version": "1.2"}, true},
		// Handed over to the gateway.
		{"GET", q("pageSize", "0"), nil, false},
		{"GET", q("pageSize", "-1"), nil, false},
		{"GET", q("pageSize", "010"), nil, false},
		{"GET", q("pageSize", "+5"), nil, false},
		{"GET", q("pageSize", "abc"), nil, false},
		{"GET", q("pageSize", "99999999999"), nil, false},
		{"GET", q("page_size", "2"), nil, false},
		{"GET", q("pageSize", "1", "pageSize", "2"), nil, false},
		{"GET", q("includeGDPRSensitiveData", "1"), nil, false},
		{"GET", q("includeGDPRSensitiveData", "yes"), nil, false},
		{"GET", q("include_gdpr_sensitive_data", "true"), nil, false},
		{"GET", q("unknown", "x"), nil, false},
		{"GET", q("ledgerId", ledgerB), nil, false},
		{"GET", feedA + "?cursor=%zz", nil, false},
		{"GET", feedA + "?pageSize=2;from=now", nil, false},
		{"GET", "/report/v2/ledgers/30232%31/funds/feed", nil, false},
		{"GET", feedA, map[string]string{"Authorization": "Bearer \x01"}, false},
		{"GET", feedA, map[string]string{"Te": "trailers"}, false},
		{"GET", feedA, map[string]string{"Grpc-Metadata-Foo": "bar"}, false},
		{"GET", feedA, map[string]string{"Grpc-Timeout": "1S"}, false},
		{"GET", feedA, map[string]string{"Vipps-System-Plugin-Bin": "not base64!"}, false},
		{"HEAD", feedA, nil, false},
	}
	const id = "1b4e28ba-2fa1-41d2-883f-0e1dd2e8b2c0" // both answers name the same request
	answer := func(h http.Handler, c req) *httptest.ResponseRecorder {
		r := httptest.NewRequest(c.method, c.target, nil)
		r.Header.Set("Authorization", "Bearer "+e.partner)
		r.Header.Set(headerRequestID, id)
		for k, v := range c.hdr {
			if v == "" {
				r.Header.Del(k)
			} else {
				r.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	own := 0
	for _, c := range cases {
		name := fmt.Sprintf("%s %s %v", c.method, c.target, c.hdr)
		before := handedOver.Load()
		got := answer(routes, c)
		tookOwn := handedOver.Load() == before
		want := answer(gatewayOnly, c)
		if tookOwn != c.own {
			t.Errorf("%s: answered by feedREST itself: %v, want %v", name, tookOwn, c.own)
		}
		if tookOwn {
			own++
		}
		if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
			t.Errorf("%s:\n feedREST %d %s\n gateway  %d %s", name, got.Code, got.Body.Bytes(), want.Code, want.Body.Bytes())
			continue
		}
		if g, w := fmt.Sprint(got.Header()), fmt.Sprint(want.Header()); g != w {
			t.Errorf("%s: headers\n feedREST %s\n gateway  %s", name, g, w)
		}
	}
	if own < 20 {
		t.Errorf("feedREST answered %d requests itself, want the 28 plain ones", own)
	}
}
