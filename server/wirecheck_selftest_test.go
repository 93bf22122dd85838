package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// Tests of the wire checker itself (wirecheck_test.go): it must accept
// what DESIGN.md says the report API answers and reject what it forbids.

const (
	wireItemCapture = `{"pspReference":"3343121302","time":"2020-10-05T00:00:00.000000Z","ledgerDate":"2020-10-05",` +
		`"entryType":"capture","reference":"acme-shop-123-order123abc","currency":"NOK",` +
		`"amount":3000000000,"balanceBefore":-1000,"balanceAfter":2999999000,"recipientHandle":"NO:123455"}`
	wireItemPayout = `{"pspReference":"3343121303","time":"2020-10-05T23:59:59.999999Z","ledgerDate":"2020-10-05",` +
		`"entryType":"scheduled-for-payout","reference":"payout-1","currency":"NOK",` +
		`"amount":-2999999000,"balanceBefore":2999999000,"balanceAfter":0,"recipientHandle":null}`
	wireItemGDPR = `{"pspReference":"3343121302","time":"2020-10-05T00:00:00.000000Z","ledgerDate":"2020-10-05",` +
		`"entryType":"capture","reference":"r1","currency":"NOK","amount":100,"balanceBefore":0,"balanceAfter":100,` +
		`"recipientHandle":"NO:123455","name":"Ola Nordmann","maskedPhoneNo":"xxxx 5678","message":"Takk"}`
	wireLedger = `{"ledgerId":"302321","currency":"NOK","payoutBankAccount":{"scheme":"BBAN:NO","id":"86011117947"},` +
		`"owner":{"scheme":"business:NO:ORG","id":"987654321"},"settlesForRecipientHandles":["NO:123455"],` +
		`"salesUnits":[{"name":"Acme","recipientHandle":"NO:123455","businessIdentifier":{"scheme":"business:NO:ORG","id":"987654321"}}]}`
	wireFeedPath  = "/report/v2/ledgers/302321/funds/feed"
	wireDatePath  = "/report/v2/ledgers/302321/funds/dates/2020-10-05"
	wireProblem   = `{"type":"about:blank","title":"Bad Request","status":400,"detail":"cursor: invalid","instance":"/report/v2/ledgers/302321/funds/feed","contextId":"req-1","errorCode":10002}`
	wireProblemID = "req-1"
)

type wireCase struct {
	name   string
	path   string
	status int
	hdr    map[string]string // nil: JSON with page size 1000
	body   string
	layer  string // for rejections: "spec" or "DESIGN.md", the layer that must object
}

func (c wireCase) check() error {
	req := httptest.NewRequest("GET", "http://ledgerfeed.test"+c.path, nil)
	status := c.status
	if status == 0 {
		status = http.StatusOK
	}
	h := http.Header{}
	if c.hdr == nil {
		h.Set("Content-Type", "application/json")
		h.Set("Vipps-Feed-Page-Size", "1000")
	}
	for k, v := range c.hdr {
		h.Set(k, v)
	}
	return vippsWireErr(req, status, h, []byte(c.body))
}

func TestVippsWire_Accepts(t *testing.T) {
	problemHdr := map[string]string{"Content-Type": "application/problem+json", headerRequestID: wireProblemID}
	for _, c := range []wireCase{
		{name: "feed page", path: wireFeedPath + "?cursor=abc", body: `{"items":[` + wireItemCapture + `,` + wireItemPayout + `],"tryLater":false,"cursor":"def"}`},
		{name: "feed end", path: wireFeedPath + "?cursor=abc&wait=30s", body: `{"items":[],"tryLater":true,"cursor":"abc"}`},
		{name: "feed GDPR", path: wireFeedPath + "?includeGDPRSensitiveData=true", body: `{"items":[` + wireItemGDPR + `],"tryLater":true,"cursor":"abc"}`},
		{name: "fees feed", path: "/report/v2/ledgers/302321/fees/feed?pageSize=1", hdr: map[string]string{"Content-Type": "application/json", "Vipps-Feed-Page-Size": "1"},
			body: `{"items":[` + wireItemPayout + `],"tryLater":false,"cursor":"def"}`},
		{name: "date with more", path: wireDatePath, body: `{"items":[` + wireItemCapture + `],"hasMore":true,"tryLater":false,"cursor":"def"}`},
		{name: "open date", path: wireDatePath, body: `{"items":[` + wireItemCapture + `],"hasMore":false,"tryLater":true}`},
		{name: "future date", path: "/report/v2/ledgers/302321/funds/dates/2999-01-01", body: `{"items":[],"hasMore":false,"tryLater":true}`},
		{name: "ledgers", path: "/settlement/v1/ledgers", body: `{"items":[` + wireLedger + `],"cursor":""}`},
		{name: "problem", path: wireFeedPath + "?cursor=x", status: 400, hdr: problemHdr, body: wireProblem},
		{name: "gone", path: "/report/v1/ledgertransactions", status: 410, hdr: problemHdr,
			body: strings.Replace(strings.Replace(wireProblem, `"status":400`, `"status":410`, 1), `"errorCode":10002`, `"errorCode":10001`, 1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.check(); err != nil {
				t.Errorf("rejected a correct answer: %v", err)
			}
		})
	}
}

func TestVippsWire_Rejects(t *testing.T) {
	item := func(from, to string) string {
		if !strings.Contains(wireItemCapture, from) {
			t.Fatalf("%q not in the item", from)
		}
		return strings.Replace(wireItemCapture, from, to, 1)
	}
	feed := func(items ...string) string {
		return `{"items":[` + strings.Join(items, ",") + `],"tryLater":false,"cursor":"def"}`
	}
	problemHdr := map[string]string{"Content-Type": "application/problem+json", headerRequestID: wireProblemID}
	for _, c := range []wireCase{
		{name: "amount as a string", path: wireFeedPath, layer: "spec", body: feed(item(`"amount":3000000000`, `"amount":"3000000000"`))},
		{name: "tryLater as a string", path: wireFeedPath, layer: "spec", body: `{"items":[],"tryLater":"true","cursor":"abc"}`},
		{name: "items not an array", path: wireFeedPath, layer: "spec", body: `{"items":{},"tryLater":true,"cursor":"abc"}`},
		{name: "recipientHandle a number", path: wireFeedPath, layer: "spec", body: feed(item(`"recipientHandle":"NO:123455"`, `"recipientHandle":123455`))},
		{name: "problem as application/json", path: wireFeedPath, status: 400, layer: "DESIGN.md",
			hdr: map[string]string{"Content-Type": "application/json", headerRequestID: wireProblemID}, body: wireProblem},
		{name: "problem status a string", path: wireFeedPath, status: 400, layer: "spec", hdr: problemHdr,
			body: strings.Replace(wireProblem, `"status":400`, `"status":"400"`, 1)},
		{name: "missing tryLater", path: wireFeedPath, layer: "DESIGN.md", body: `{"items":[],"cursor":"abc"}`},
		{name: "feed without cursor", path: wireFeedPath, layer: "DESIGN.md", body: `{"items":[],"tryLater":true}`},
		{name: "feed with empty cursor", path: wireFeedPath, layer: "DESIGN.md", body: `{"items":[],"tryLater":true,"cursor":""}`},
		{name: "feed with hasMore", path: wireFeedPath, layer: "DESIGN.md", body: `{"items":[],"tryLater":true,"hasMore":false,"cursor":"abc"}`},
		{name: "amount a fraction", path: wireFeedPath, layer: "DESIGN.md", body: feed(item(`"amount":3000000000`, `"amount":3000000000.5`))},
		{name: "amount in exponent form", path: wireFeedPath, layer: "DESIGN.md", body: feed(item(`"amount":3000000000`, `"amount":3e9`))},
		{name: "balances do not add up", path: wireFeedPath, layer: "DESIGN.md", body: feed(item(`"balanceAfter":2999999000`, `"balanceAfter":2999999001`))},
		{name: "balances not chained", path: wireFeedPath, layer: "DESIGN.md", body: feed(wireItemCapture, wireItemCapture)},
		{name: "time with three fraction digits", path: wireFeedPath, layer: "DESIGN.md", body: feed(item(`00:00:00.000000Z`, `00:00:00.000Z`))},
		{name: "time not UTC", path: wireFeedPath, layer: "DESIGN.md", body: feed(item(`00:00:00.000000Z`, `00:00:00.000000+01:00`))},
		{name: "recipientHandle missing", path: wireFeedPath, layer: "DESIGN.md", body: feed(item(`,"recipientHandle":"NO:123455"`, ``))},
		{name: "GDPR fields unasked", path: wireFeedPath, layer: "DESIGN.md", body: feed(wireItemGDPR)},
		{name: "unknown item member", path: wireFeedPath, layer: "DESIGN.md", body: feed(item(`"currency":"NOK"`, `"currency":"NOK","sequence":1`))},
		{name: "protojson names", path: wireFeedPath, layer: "DESIGN.md", body: feed(item(`"balanceBefore"`, `"balance_before"`))},
		{name: "no page size header", path: wireFeedPath, layer: "DESIGN.md", hdr: map[string]string{"Content-Type": "application/json"}, body: `{"items":[],"tryLater":true,"cursor":"abc"}`},
		{name: "more items than the page size", path: wireFeedPath, layer: "DESIGN.md", hdr: map[string]string{"Content-Type": "application/json", "Vipps-Feed-Page-Size": "1"}, body: feed(wireItemCapture, wireItemPayout)},
		{name: "date missing hasMore", path: wireDatePath, layer: "DESIGN.md", body: `{"items":[],"tryLater":true}`},
		{name: "date hasMore without cursor", path: wireDatePath, layer: "DESIGN.md", body: `{"items":[],"hasMore":true,"tryLater":false}`},
		{name: "date cursor without hasMore", path: wireDatePath, layer: "DESIGN.md", body: `{"items":[],"hasMore":false,"tryLater":false,"cursor":"abc"}`},
		{name: "date item of another date", path: "/report/v2/ledgers/302321/funds/dates/2020-10-06", layer: "DESIGN.md", body: `{"items":[` + wireItemCapture + `],"hasMore":false,"tryLater":false}`},
		{name: "ledgers without cursor", path: "/settlement/v1/ledgers", layer: "DESIGN.md", body: `{"items":[` + wireLedger + `]}`},
		{name: "ledger without salesUnits", path: "/settlement/v1/ledgers", layer: "DESIGN.md", body: `{"items":[` + strings.Replace(wireLedger, `,"salesUnits":[`, `,"x":[`, 1) + `],"cursor":""}`},
		{name: "problem without errorCode", path: wireFeedPath, status: 400, layer: "DESIGN.md", hdr: problemHdr, body: strings.Replace(wireProblem, `,"errorCode":10002`, ``, 1)},
		{name: "problem contextId not the header", path: wireFeedPath, status: 400, layer: "DESIGN.md",
			hdr: map[string]string{"Content-Type": "application/problem+json", headerRequestID: "other"}, body: wireProblem},
		{name: "not a Vipps path", path: "/report/v2/ledgers/302321/dates", layer: "not a Vipps", body: `{}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.check()
			if err == nil {
				t.Fatalf("accepted a wrong answer: %s", c.body)
			}
			if !strings.Contains(err.Error(), c.layer) {
				t.Errorf("rejected, but not by the %s layer: %v", c.layer, err)
			}
		})
	}
}

// The spec copy is the Vipps file with the fixes its README.md lists, and
// carries its licence.
func TestVippsWire_SpecCopy(t *testing.T) {
	spec, err := vippsSpec()
	if err != nil {
		t.Fatal(err)
	}
	tx := spec.doc.Components.Schemas["Transaction"].Value
	if !tx.Properties["recipientHandle"].Value.Nullable {
		t.Error("Transaction.recipientHandle is not nullable in the copy")
	}
	for _, f := range []string{"LICENSE", "README.md"} {
		b, err := os.ReadFile("testdata/vipps/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if f == "LICENSE" && !strings.Contains(string(b), "MIT License") {
			t.Error("testdata/vipps/LICENSE is not the MIT licence")
		}
	}
}

// The server's own error answers on Vipps paths pass the checker and are
// pinned.
func TestVippsWire_ServerErrors(t *testing.T) {
	e := newAPIEnv(t, nil, Limits{})
	r := e.getVipps("/report/v1/ledgertransactions?ledgerId=302321", "")
	if r.code != http.StatusGone {
		t.Fatalf("ledgertransactions: %d %s", r.code, r.body)
	}
	checkGolden(t, "ledgertransactions_gone", r.body)

	r = e.getVipps("/report/v2/ledgers/302321/funds/feed", "")
	if r.code != http.StatusUnauthorized {
		t.Fatalf("feed without a token: %d %s", r.code, r.body)
	}
	checkGolden(t, "feed_unauthorized", r.body)
}

func TestGolden_Normalise(t *testing.T) {
	got, err := normaliseJSON([]byte(`{"b":1,"a":{"contextId":"x","cursor":"","n":12345678901234567,
		"items":[{"action":"token","time":"2026-01-01T00:00:00Z","cursor":"abc"}],"time":"kept"},"t":"v"}`), "t")
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "a": {
    "contextId": "<contextId>",
    "cursor": "",
    "items": [
      {
        "action": "token",
        "cursor": "<cursor>",
        "time": "<time>"
      }
    ],
    "n": 12345678901234567,
    "time": "kept"
  },
  "b": 1,
  "t": "<t>"
}
`
	if string(got) != want {
		t.Errorf("normaliseJSON:\n%s\nwant:\n%s", got, want)
	}
}

// recordTB records Errorf instead of failing.
type recordTB struct {
	testing.TB
	errs []string
}

func (r *recordTB) Helper()                      {}
func (r *recordTB) Errorf(f string, args ...any) { r.errs = append(r.errs, fmt.Sprintf(f, args...)) }

func TestOwnWire_Rejects(t *testing.T) {
	req := httptest.NewRequest("PUT", "http://ledgerfeed.test/admin/v1/ledgers/302321", nil)
	answer := func(code int, ct string) *http.Response {
		return &http.Response{StatusCode: code, Header: http.Header{"Content-Type": {ct}}}
	}
	for _, c := range []struct {
		name     string
		code     int
		ct, body string
		ok       bool
	}{
		{"created", 201, "application/json", `{"ledgerId":"302321","currency":"NOK"}`, true},
		{"problem", 409, "application/problem+json", wireProblem, true},
		{"problem as application/json", 409, "application/json", wireProblem, false},
		{"undocumented status", 202, "application/json", `{}`, false},
		{"wrong type", 200, "application/json", `{"ledgerId":302321}`, false},
	} {
		rec := &recordTB{TB: t}
		checkOwnWire(rec, req, answer(c.code, c.ct), []byte(c.body))
		if ok := len(rec.errs) == 0; ok != c.ok {
			t.Errorf("%s: accepted %v, want %v: %v", c.name, ok, c.ok, rec.errs)
		}
	}
}

func TestOwnWire_PageSizeHeader(t *testing.T) {
	req := httptest.NewRequest("GET", "http://ledgerfeed.test"+wireFeedPath, nil)
	body := []byte(`{"items":[],"tryLater":true,"cursor":"abc"}`)
	for _, c := range []struct {
		size string
		ok   bool
	}{{"1000", true}, {"", false}, {"0", false}} {
		h := http.Header{"Content-Type": {"application/json"}}
		if c.size != "" {
			h.Set("Vipps-Feed-Page-Size", c.size)
		}
		rec := &recordTB{TB: t}
		checkOwnWire(rec, req, &http.Response{StatusCode: 200, Header: h}, body)
		if ok := len(rec.errs) == 0; ok != c.ok {
			t.Errorf("Vipps-Feed-Page-Size %q: accepted %v, want %v: %v", c.size, ok, c.ok, rec.errs)
		}
	}
}
