package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// entry is a valid ingest entry as JSON, with overrides.
func entry(id string, kv ...any) map[string]any {
	e := map[string]any{
		"entryId": id, "pspReference": "psp-" + id, "time": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano),
		"entryType": "capture", "reference": "order-" + id, "amount": 1000, "recipientHandle": "NO:123455",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(e, kv[i].(string))
		} else {
			e[kv[i].(string)] = kv[i+1]
		}
	}
	return e
}

func TestAPI_Admin_EndToEnd(t *testing.T) {
	e := newAPIEnv(t, nil, Limits{})
	admin := e.adminToken()

	// PutLedger: 201, then 200; the answer is the ledger.
	body := map[string]any{
		"currency": "NOK", "timeZone": "Europe/Oslo", "cutoff": "04:00",
		"payoutBankAccount":          map[string]any{"scheme": "BBAN:NO", "id": "86011117947"},
		"owner":                      map[string]any{"scheme": "business:NO:ORG", "id": "987654321"},
		"settlesForRecipientHandles": []string{"NO:123455"},
		"salesUnits": []any{map[string]any{"name": "Shop", "recipientHandle": "NO:123455",
			"businessIdentifier": map[string]any{"scheme": "business:NO:ORG", "id": "987654321"}}},
	}
	r := e.do("PUT", "/admin/v1/ledgers/302321", admin, body)
	if r.code != http.StatusCreated {
		t.Fatalf("put ledger: %d %s", r.code, r.body)
	}
	l := r.json(t)
	if l["ledgerId"] != "302321" || l["cutoff"] != "04:00" || l["payoutBankAccount"].(map[string]any)["id"] != "86011117947" {
		t.Errorf("put ledger answer %s", r.body)
	}
	if r := e.do("PUT", "/admin/v1/ledgers/302321", admin, body); r.code != http.StatusOK {
		t.Errorf("put ledger again: %d %s, want 200", r.code, r.body)
	}
	body["ledgerId"] = "999"
	if r := e.do("PUT", "/admin/v1/ledgers/302321", admin, body); r.code != 400 || !strings.Contains(string(r.body), "ledgerId") {
		t.Errorf("body id differs from path: %d %s", r.code, r.body)
	}
	if r := e.do("GET", "/admin/v1/ledgers/302321", admin, nil); r.code != 200 || r.json(t)["currency"] != "NOK" {
		t.Errorf("get ledger: %d %s", r.code, r.body)
	}

	// AppendEntries, with a retry counted as duplicates.
	batch := map[string]any{"entries": []any{
		entry("e1", "name", "Ola Nordmann", "phoneNumber", "+47 912 34 567", "message", "takk"),
		entry("e2", "amount", -250, "recipientHandle", nil),
		entry("e3", "amount", int64(1)<<53+1),
	}}
	r = e.do("POST", "/admin/v1/ledgers/302321/funds/entries", admin, batch)
	if r.code != 200 {
		t.Fatalf("append: %d %s", r.code, r.body)
	}
	if got := strings.TrimSpace(string(r.body)); got != `{"appended":3,"duplicates":0,"firstSequence":1,"lastSequence":3}` {
		t.Errorf("append answer %s", got)
	}
	r = e.do("POST", "/admin/v1/ledgers/302321/funds/entries", admin, batch)
	if got := strings.TrimSpace(string(r.body)); r.code != 200 || got != `{"appended":0,"duplicates":3,"firstSequence":1,"lastSequence":3}` {
		t.Errorf("append again: %d %s", r.code, got)
	}
	h, err := e.store.Head("302321", ledger.TopicFunds)
	if err != nil || h.Sequence != 3 || h.Balance != 1000-250+(int64(1)<<53+1) {
		t.Errorf("head %+v %v", h, err)
	}
	// Same id, other content: 409.
	r = e.do("POST", "/admin/v1/ledgers/302321/funds/entries", admin, map[string]any{"entries": []any{entry("e1", "amount", 7)}})
	if r.code != http.StatusConflict || r.json(t)["errorCode"] != float64(codeConflict) {
		t.Errorf("conflicting retry: %d %s", r.code, r.body)
	}
	if r := e.do("POST", "/admin/v1/ledgers/404404/funds/entries", admin, batch); r.code != 404 {
		t.Errorf("append to unknown ledger: %d %s", r.code, r.body)
	}
	if r := e.do("POST", "/admin/v1/ledgers/302321/taxes/entries", admin, batch); r.code != 400 || !strings.Contains(string(r.body), "topic") {
		t.Errorf("unknown topic: %d %s", r.code, r.body)
	}

	// CloseDate.
	today := time.Now().In(mustZone(t, "Europe/Oslo")).Add(-4 * time.Hour).Format("2006-01-02")
	r = e.do("POST", "/admin/v1/ledgers/302321/dates/"+today+"/close", admin, nil)
	if r.code != 200 {
		t.Fatalf("close: %d %s", r.code, r.body)
	}
	c := r.json(t)
	if c["closedThrough"] != today || c["openLedgerDate"] == "" {
		t.Errorf("close answer %s", r.body)
	}
	if r := e.do("POST", "/admin/v1/ledgers/302321/dates/2999-01-01/close", admin, nil); r.code != 400 {
		t.Errorf("close a future date: %d %s", r.code, r.body)
	}

	// EraseGDPR: by reference; exactly one selector.
	r = e.do("POST", "/admin/v1/ledgers/302321/gdpr-erasures", admin, map[string]any{"reference": "order-e1"})
	if got := strings.TrimSpace(string(r.body)); r.code != 200 || got != `{"erased":1}` {
		t.Errorf("erase: %d %s", r.code, got)
	}
	r = e.do("POST", "/admin/v1/ledgers/302321/gdpr-erasures", admin, `{"reference":"a","pspReference":"b"}`)
	if r.code != 400 || !strings.Contains(string(r.body), "only one of") {
		t.Errorf("two selectors: %d %s", r.code, r.body)
	}
	entries, err := e.store.Entries("302321", ledger.TopicFunds, 1, 10, ledger.ReadOptions{GDPR: true})
	if err != nil || len(entries) != 3 || entries[0].GDPR != nil {
		t.Errorf("after erasure: %+v %v", entries, err)
	}

	// Clients: create (secret once), get, list (never a secret), update,
	// rotate (old secret fails, new works), delete.
	r = e.do("POST", "/admin/v1/clients", admin, map[string]any{"clientId": "acme-accounting", "scopes": []string{"read"},
		"grants": []any{map[string]any{"ledgerId": "302321", "gdprConsent": true}}})
	if r.code != http.StatusCreated {
		t.Fatalf("create client: %d %s", r.code, r.body)
	}
	cc := r.json(t)
	secret, _ := cc["clientSecret"].(string)
	if secret == "" || cc["clientId"] != "acme-accounting" || fmt.Sprint(cc["grants"]) != "[map[gdprConsent:true ledgerId:302321]]" {
		t.Errorf("create answer %s", r.body)
	}
	if r := e.do("POST", "/admin/v1/clients", admin, map[string]any{"clientId": "acme-accounting", "scopes": []string{"read"}}); r.code != http.StatusConflict {
		t.Errorf("create twice: %d %s", r.code, r.body)
	}
	if _, err := e.admin.CreateClient(bearer(admin), &v1.CreateClientRequest{ClientId: "acme-accounting", Scopes: []string{"read"}}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("gRPC create twice: %v, want AlreadyExists", err)
	}
	partner := e.token("acme-accounting", secret)
	r = e.do("GET", "/admin/v1/clients", admin, nil)
	if r.code != 200 || strings.Contains(strings.ToLower(string(r.body)), "secret") || strings.Contains(string(r.body), "argon2") {
		t.Errorf("list clients: %d %s", r.code, r.body)
	}
	var list struct {
		Items []struct {
			ClientID string `json:"clientId"`
		} `json:"items"`
		Cursor *string `json:"cursor"`
	}
	json.Unmarshal(r.body, &list)
	if len(list.Items) != 2 || list.Cursor == nil || *list.Cursor != "" {
		t.Errorf("list clients %s", r.body)
	}
	r = e.do("GET", "/admin/v1/clients?pageSize=1", admin, nil)
	json.Unmarshal(r.body, &list)
	if len(list.Items) != 1 || list.Items[0].ClientID != "acme-accounting" || *list.Cursor == "" {
		t.Fatalf("page 1: %s", r.body)
	}
	r = e.do("GET", "/admin/v1/clients?pageSize=1&cursor="+*list.Cursor, admin, nil)
	json.Unmarshal(r.body, &list)
	if len(list.Items) != 1 || list.Items[0].ClientID != "admin" || *list.Cursor != "" {
		t.Errorf("page 2: %s", r.body)
	}
	if r := e.do("GET", "/admin/v1/clients/acme-accounting", admin, nil); r.code != 200 || r.json(t)["clientId"] != "acme-accounting" || strings.Contains(string(r.body), "ecret") {
		t.Errorf("get client: %d %s", r.code, r.body)
	}
	r = e.do("PUT", "/admin/v1/clients/acme-accounting", admin, map[string]any{"scopes": []string{"read"}, "grants": []any{}})
	if r.code != 200 || fmt.Sprint(r.json(t)["grants"]) != "[]" {
		t.Errorf("update client: %d %s", r.code, r.body)
	}
	if r := e.do("PUT", "/admin/v1/clients/acme-accounting", admin, map[string]any{"clientId": "x", "scopes": []string{"read"}}); r.code != 400 {
		t.Errorf("update with an id in the body: %d %s", r.code, r.body)
	}
	r = e.do("POST", "/admin/v1/clients/acme-accounting/secret", admin, nil)
	rot := r.json(t)
	newSecret, _ := rot["clientSecret"].(string)
	if r.code != 200 || rot["clientId"] != "acme-accounting" || newSecret == "" || newSecret == secret {
		t.Fatalf("rotate: %d %s", r.code, r.body)
	}
	if r := e.do("POST", "/accesstoken/get", "", "", "client_id", "acme-accounting", "client_secret", secret); r.code != 401 {
		t.Errorf("old secret after rotation: %d", r.code)
	}
	if r := e.do("POST", "/accesstoken/get", "", "", "client_id", "acme-accounting", "client_secret", newSecret); r.code != 200 {
		t.Errorf("new secret after rotation: %d %s", r.code, r.body)
	}
	r = e.do("DELETE", "/admin/v1/clients/acme-accounting", admin, nil)
	if r.code != http.StatusNoContent || len(r.body) != 0 {
		t.Errorf("delete: %d %q", r.code, r.body)
	}
	if r := e.do("GET", "/settlement/v1/ledgers", partner, nil); r.code != 401 {
		t.Errorf("a deleted client's token: %d %s, want 401", r.code, r.body)
	}
	if r := e.do("DELETE", "/admin/v1/clients/acme-accounting", admin, nil); r.code != 404 {
		t.Errorf("delete twice: %d %s", r.code, r.body)
	}
	if r := e.do("DELETE", "/admin/v1/clients/admin", admin, nil); r.code != http.StatusConflict {
		t.Errorf("delete oneself: %d %s", r.code, r.body)
	}

	// Routing.
	if r := e.do("GET", "/admin/v1/nothing-here", admin, nil); r.code != 404 || r.hdr.Get("Content-Type") != "application/problem+json" {
		t.Errorf("unknown admin path: %d %s", r.code, r.body)
	}
	if r := e.do("PATCH", "/admin/v1/clients/admin", admin, nil); r.code != 405 && r.code != 404 {
		t.Errorf("wrong method: %d %s", r.code, r.body)
	}

	// The same over gRPC, for one call of each kind.
	pl, err := e.admin.PutLedger(bearer(admin), &v1.PutLedgerRequest{LedgerId: "7", Ledger: &v1.LedgerConfig{Currency: "SEK", TimeZone: "Europe/Stockholm"}})
	if err != nil || !pl.GetCreated() || pl.GetLedger().GetCutoff() != "00:00" {
		t.Fatalf("gRPC PutLedger: %v %v", pl, err)
	}
	ae, err := e.admin.AppendEntries(bearer(admin), &v1.AppendEntriesRequest{LedgerId: "7", Topic: "fees", Entries: []*v1.NewEntry{{
		EntryId: "f1", PspReference: "p", Time: timestamppb.New(time.Now().Add(-time.Minute)), EntryType: "capture-fee", Amount: -3,
	}}})
	if err != nil || ae.GetAppended() != 1 || ae.GetLastSequence() != 1 {
		t.Errorf("gRPC AppendEntries: %v %v", ae, err)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestAPI_Admin_StrictIngest(t *testing.T) {
	e := newAPIEnv(t, nil, Limits{})
	admin := e.adminToken()
	e.putLedger(admin, "302321")
	if r := e.do("POST", "/admin/v1/ledgers/302321/funds/entries", admin, map[string]any{"entries": []any{entry("e0")}}); r.code != 200 {
		t.Fatalf("first append: %d %s", r.code, r.body)
	}
	good := `{"entryId":"e1","pspReference":"p1","time":"2024-05-01T10:00:00Z","entryType":"capture","reference":"r1","amount":100,"recipientHandle":"NO:1"}`
	withField := func(extra string) string { return good[:len(good)-1] + "," + extra + "}" }
	batch := func(entries ...string) string { return `{"entries":[` + strings.Join(entries, ",") + `]}` }

	for _, tc := range []struct {
		name, body, field string
	}{
		{"duplicate key", batch(good, `{"entryId":"e2","amount":1,"amount":9}`), "entries[1].amount"},
		{"duplicate key, escaped", batch(withField(`"\u0061mount":9`)), "entries[0].amount"},
		{"duplicate top-level key", `{"entries":[` + good + `],"entries":[]}`, "entries"},
		{"amount as a string", batch(strings.Replace(good, `"amount":100`, `"amount":"100"`, 1)), "entries[0].amount"},
		{"amount as a fraction", batch(good, strings.Replace(good, `"amount":100`, `"amount":1.5`, 1)), "entries[1].amount"},
		{"amount with an exponent", batch(strings.Replace(good, `"amount":100`, `"amount":1e3`, 1)), "entries[0].amount"},
		{"amount as 1.0", batch(strings.Replace(good, `"amount":100`, `"amount":1.0`, 1)), "entries[0].amount"},
		{"amount over int64", batch(strings.Replace(good, `"amount":100`, `"amount":9223372036854775808`, 1)), "entries[0].amount"},
		{"amount null", batch(strings.Replace(good, `"amount":100`, `"amount":null`, 1)), "entries[0].amount"},
		{"amount true", batch(strings.Replace(good, `"amount":100`, `"amount":true`, 1)), "entries[0].amount"},
		{"unknown field", batch(withField(`"colour":"red"`)), "entries[0].colour"},
		{"proto field name", batch(withField(`"entry_type":"refund"`)), "entries[0].entry_type"},
		{"unknown top-level field", `{"entries":[` + good + `],"dryRun":true}`, "dryRun"},
		{"ledgerId in the body", `{"ledgerId":"302321","entries":[` + good + `]}`, "ledgerId"},
		{"string for a number-free field", batch(strings.Replace(good, `"entryId":"e1"`, `"entryId":1`, 1)), "entries[0].entryId"},
		{"bad time", batch(strings.Replace(good, `2024-05-01T10:00:00Z`, `yesterday`, 1)), "entries[0].time"},
		{"bad ledgerDate", batch(withField(`"ledgerDate":"2024-13-01"`)), "entries[0].ledgerDate"},
		{"entries not an array", `{"entries":{}}`, "entries"},
		{"not an object", `[` + good + `]`, "body"},
		{"trailing data", batch(good) + `{}`, "body"},
		{"malformed", `{"entries":[`, "body"},
		{"store validation", batch(strings.Replace(good, `"entryType":"capture"`, `"entryType":"Bad Type"`, 1)), "entries[0].entryType"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/admin/v1/ledgers/302321/funds/entries", admin, tc.body)
			if r.code != 400 {
				t.Fatalf("%d %s, want 400", r.code, r.body)
			}
			p := r.json(t)
			if d, _ := p["detail"].(string); !strings.HasPrefix(d, tc.field+":") || p["errorCode"] != float64(codeValidation) {
				t.Errorf("problem %s, want the detail to name %s", r.body, tc.field)
			}
			if h, _ := e.store.Head("302321", ledger.TopicFunds); h.Sequence != 1 {
				t.Errorf("head sequence %d after a rejected batch, want 1", h.Sequence)
			}
		})
	}

	// A bad body from a caller without a valid token is a 401, not a 400.
	if r := e.do("POST", "/admin/v1/ledgers/302321/funds/entries", "", batch(`{"amount":"1","amount":2}`)); r.code != 401 {
		t.Errorf("no token, bad body: %d %s, want 401", r.code, r.body)
	}
	// An empty body is an empty batch: the store says so.
	if r := e.do("POST", "/admin/v1/ledgers/302321/funds/entries", admin, ""); r.code != 400 || !strings.Contains(string(r.body), "entries: empty batch") {
		t.Errorf("empty body: %d %s", r.code, r.body)
	}

	// gRPC gives the same detail text as REST for a validation error.
	rest := e.do("POST", "/admin/v1/ledgers/302321/funds/entries", admin, batch(strings.Replace(good, `"pspReference":"p1",`, ``, 1))).json(t)["detail"]
	_, err := e.admin.AppendEntries(bearer(admin), &v1.AppendEntriesRequest{LedgerId: "302321", Topic: "funds", Entries: []*v1.NewEntry{{
		EntryId: "e1", Time: timestamppb.New(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)), EntryType: "capture", Reference: "r1", Amount: 100,
	}}})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || st.Message() != rest || rest != "entries[0].pspReference: required" {
		t.Errorf("gRPC %v %q; REST %q", st.Code(), st.Message(), rest)
	}
	restClose := e.do("POST", "/admin/v1/ledgers/302321/dates/2024-02-30/close", admin, nil).json(t)["detail"]
	_, err = e.admin.CloseDate(bearer(admin), &v1.CloseDateRequest{LedgerId: "302321", LedgerDate: "2024-02-30"})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != restClose {
		t.Errorf("close: gRPC %q; REST %q", st.Message(), restClose)
	}
}

// countingReader yields n bytes of a JSON body that stays valid until the
// end: one long string.
type countingReader struct {
	n, sent int64
	read    atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.sent >= c.n {
		return 0, io.EOF
	}
	prefix := `{"entries":[{"entryId":"`
	i := 0
	for ; i < len(p) && c.sent < c.n; i++ {
		if c.sent < int64(len(prefix)) {
			p[i] = prefix[c.sent]
		} else {
			p[i] = 'x'
		}
		c.sent++
	}
	c.read.Add(int64(i))
	return i, nil
}

func TestAPI_Limits_BodyTooLarge(t *testing.T) {
	e := newAPIEnv(t, nil, Limits{})
	admin := e.adminToken()
	e.putLedger(admin, "302321")
	const size = 100 << 20

	for _, tc := range []struct {
		name     string
		declared bool
	}{{"Content-Length", true}, {"chunked", false}} {
		t.Run(tc.name, func(t *testing.T) {
			body := &countingReader{n: size}
			req, _ := http.NewRequest("POST", e.base+"/admin/v1/ledgers/302321/funds/entries", body)
			req.Header.Set("Authorization", "Bearer "+admin)
			req.Header.Set("Content-Type", "application/json")
			if tc.declared {
				req.ContentLength = size
			} else {
				req.ContentLength = -1
			}
			start := time.Now()
			hr, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("after %v and %d bytes: %v", time.Since(start), body.read.Load(), err)
			}
			b, _ := io.ReadAll(hr.Body)
			hr.Body.Close()
			took := time.Since(start)
			if hr.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("%d %s, want 413", hr.StatusCode, b)
			}
			var p problem
			if json.Unmarshal(b, &p) != nil || p.ErrorCode != codeTooLarge || p.ContextID == "" || hr.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("problem %s", b)
			}
			if sent := body.read.Load(); sent >= size || took > 10*time.Second {
				t.Errorf("answered after %v with %d of %d bytes sent", took, sent, size)
			}
			t.Logf("413 after %v, %d MiB sent", took, body.read.Load()>>20)
		})
	}
	if h, _ := e.store.Head("302321", ledger.TopicFunds); h.Sequence != 0 {
		t.Errorf("head %d", h.Sequence)
	}
	// gRPC: a message over the receive limit (16 MiB) is RESOURCE_EXHAUSTED
	// without a RetryInfo, which REST would answer 413.
	big := strings.Repeat("x", DefaultMaxRecvMsgBytes+1)
	_, err := e.admin.AppendEntries(bearer(admin), &v1.AppendEntriesRequest{LedgerId: "302321", Topic: "funds", Entries: []*v1.NewEntry{{EntryId: "big", Reference: big}}})
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || rowOfStatus(st).status != http.StatusRequestEntityTooLarge {
		t.Errorf("gRPC 16 MiB + 1: %v", st)
	}
	// The server still answers.
	if r := e.do("GET", "/admin/v1/ledgers/302321", admin, nil); r.code != 200 {
		t.Errorf("after: %d %s", r.code, r.body)
	}
}

func TestAPI_AuditLog(t *testing.T) {
	e := newAPIEnv(t, nil, Limits{})
	admin := e.adminToken()
	if r := e.do("POST", "/oauth/token", "", "grant_type=client_credentials&client_id=admin&client_secret=wrong", "Content-Type", "application/x-www-form-urlencoded"); r.code != 401 {
		t.Fatalf("wrong secret: %d", r.code)
	}
	if r := e.do("POST", "/accesstoken/get", "", "", "client_id", "ghost", "client_secret", "x"); r.code != 401 {
		t.Fatalf("unknown client: %d", r.code)
	}
	// Each change, with the contextId the caller chose.
	changes := []struct {
		method, path string
		body         any
		action       string
		resource     string
	}{
		{"PUT", "/admin/v1/ledgers/302321", map[string]any{"currency": "NOK", "timeZone": "UTC"}, "ledger.put", "ledgers/302321"},
		{"POST", "/admin/v1/ledgers/302321/funds/entries", map[string]any{"entries": []any{entry("a1")}}, "entries.append", "ledgers/302321/funds"},
		{"POST", "/admin/v1/ledgers/302321/dates/2020-01-01/close", nil, "date.close", "ledgers/302321/dates/2020-01-01"},
		{"POST", "/admin/v1/ledgers/302321/gdpr-erasures", map[string]any{"pspReference": "psp-a1"}, "gdpr.erase", "ledgers/302321"},
		{"POST", "/admin/v1/clients", map[string]any{"clientId": "acme", "scopes": []string{"read"}}, "client.create", "clients/acme"},
		{"PUT", "/admin/v1/clients/acme", map[string]any{"scopes": []string{"read"}, "grants": []any{map[string]any{"ledgerId": "302321"}}}, "client.update", "clients/acme"},
		{"POST", "/admin/v1/clients/acme/secret", nil, "client.rotate-secret", "clients/acme"},
		{"DELETE", "/admin/v1/clients/acme", nil, "client.delete", "clients/acme"},
		{"POST", "/admin/v1/ledgers/302321/funds/entries", `{"entries":[{"amount":"1"}]}`, "entries.append", "ledgers/302321/funds"}, // refused
	}
	for i, c := range changes {
		r := e.do(c.method, c.path, admin, c.body, "X-Request-Id", fmt.Sprintf("change-%d", i))
		if r.hdr.Get("X-Request-Id") != fmt.Sprintf("change-%d", i) {
			t.Errorf("%s %s: X-Request-Id %q", c.method, c.path, r.hdr.Get("X-Request-Id"))
		}
	}
	// A request id that is not sane is replaced.
	if r := e.do("GET", "/admin/v1/clients", admin, nil, "X-Request-Id", "bad id\twith spaces"); r.hdr.Get("X-Request-Id") == "" || strings.Contains(r.hdr.Get("X-Request-Id"), " ") {
		t.Errorf("insane request id answered as %q", r.hdr.Get("X-Request-Id"))
	}
	// gRPC: the caller's x-request-id is the contextId, sent back as header
	// metadata.
	var hdr metadata.MD
	ctx := metadata.AppendToOutgoingContext(bearer(admin), "x-request-id", "grpc-call-1")
	if _, err := e.admin.GetClient(ctx, &v1.GetClientRequest{ClientId: "admin"}, grpc.Header(&hdr)); err != nil || fmt.Sprint(hdr.Get("x-request-id")) != "[grpc-call-1]" {
		t.Errorf("gRPC request id: %v %v", hdr, err)
	}
	if err := e.auth.FlushAudit(context.Background()); err != nil {
		t.Fatal(err)
	}

	type event struct {
		Time      string `json:"time"`
		ClientID  string `json:"clientId"`
		Action    string `json:"action"`
		Resource  string `json:"resource"`
		Result    string `json:"result"`
		Status    int    `json:"status"`
		ContextID string `json:"contextId"`
	}
	var all []event
	cursor := ""
	for page := 0; ; page++ {
		r := e.do("GET", "/admin/v1/audit?pageSize=4&cursor="+cursor, admin, nil)
		var out struct {
			Items  []event `json:"items"`
			Cursor string  `json:"cursor"`
		}
		if r.code != 200 || json.Unmarshal(r.body, &out) != nil || out.Cursor == "" {
			t.Fatalf("audit page %d: %d %s", page, r.code, r.body)
		}
		all = append(all, out.Items...)
		if len(out.Items) == 0 {
			if out.Cursor != cursor {
				t.Errorf("at the end the cursor must repeat: %q then %q", cursor, out.Cursor)
			}
			break
		}
		cursor = out.Cursor
	}
	find := func(action, contextID string) *event {
		for i := range all {
			if all[i].Action == action && (contextID == "" || all[i].ContextID == contextID) {
				return &all[i]
			}
		}
		return nil
	}
	for i, c := range changes {
		ev := find(c.action, fmt.Sprintf("change-%d", i))
		if ev == nil {
			t.Errorf("no audit event for %s %s (%s)", c.method, c.path, c.action)
			continue
		}
		wantResult, wantStatus := "ok", 200
		switch {
		case c.action == "client.create":
			wantStatus = 201
		case c.action == "ledger.put":
			wantStatus = 201
		case c.action == "client.delete":
			wantStatus = 204
		case i == len(changes)-1:
			wantResult, wantStatus = "error", 400
		}
		if ev.ClientID != "admin" || ev.Resource != c.resource || ev.Result != wantResult || ev.Status != wantStatus {
			t.Errorf("%s: %+v", c.action, *ev)
		}
		if _, err := time.Parse(time.RFC3339, ev.Time); err != nil || !strings.HasSuffix(ev.Time, "Z") {
			t.Errorf("time %q", ev.Time)
		}
	}
	// Token issues: success and both failures.
	var ok, denied int
	var ghost bool
	for _, ev := range all {
		if ev.Action != "token.issue" {
			continue
		}
		switch {
		case ev.Result == "ok" && ev.Status == 200 && ev.ClientID == "admin":
			ok++
		case ev.Result == "denied" && ev.Status == 401:
			denied++
			ghost = ghost || ev.ClientID == "ghost"
		}
		if ev.ContextID == "" || ev.Resource == "" {
			t.Errorf("token event %+v", ev)
		}
	}
	if ev := find("client.get", "grpc-call-1"); ev == nil || ev.Resource != "clients/admin" || ev.Status != 200 {
		t.Errorf("gRPC call's audit event: %+v", ev)
	}
	if ok < 1 || denied != 2 || !ghost {
		t.Errorf("token events: %d ok, %d denied (ghost %v); all: %+v", ok, denied, ghost, all)
	}

	// Filters, and a cursor bound to its filter.
	r := e.do("GET", "/admin/v1/audit?action=client.create", admin, nil)
	var f struct {
		Items  []event `json:"items"`
		Cursor string  `json:"cursor"`
	}
	json.Unmarshal(r.body, &f)
	if len(f.Items) != 1 || f.Items[0].Resource != "clients/acme" {
		t.Errorf("action filter: %s", r.body)
	}
	if r := e.do("GET", "/admin/v1/audit?clientId=ghost", admin, nil); !strings.Contains(string(r.body), `"clientId":"ghost"`) {
		t.Errorf("client filter: %s", r.body)
	}
	if r := e.do("GET", "/admin/v1/audit?clientId=ghost&cursor="+f.Cursor, admin, nil); r.code != 400 || !strings.Contains(string(r.body), "cursor") {
		t.Errorf("cursor of another filter: %d %s", r.code, r.body)
	}
	if r := e.do("GET", "/admin/v1/audit?cursor=garbage!", admin, nil); r.code != 400 {
		t.Errorf("garbage cursor: %d %s", r.code, r.body)
	}
	if r := e.do("GET", "/admin/v1/audit?pageSize=1001", admin, nil); r.code != 400 || !strings.Contains(string(r.body), "pageSize") {
		t.Errorf("pageSize 1001: %d %s", r.code, r.body)
	}
	// gRPC reads the same log.
	ga, err := e.admin.ListAudit(bearer(admin), &v1.ListAuditRequest{Action: "client.create"})
	if err != nil || len(ga.GetItems()) != 1 || ga.GetItems()[0].GetContextId() != f.Items[0].ContextID {
		t.Errorf("gRPC ListAudit: %v %v", ga, err)
	}
}
