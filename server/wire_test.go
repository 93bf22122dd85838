package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

// Wire compatibility end to end: a real server with fixed data, every
// report endpoint driven over REST, every answer validated by
// checkVippsWire (the Vipps spec and DESIGN.md) and pinned by a golden
// file (testdata/wire_*.golden.json; -update rewrites them).

const (
	wireLedgerNOK = "302321" // Europe/Oslo, GDPR consent
	wireLedgerDKK = "302322" // Europe/Copenhagen, cutoff 04:00, no GDPR consent
)

// wireVippsHeaders are the Vipps-System-* headers a real integration sends.
var wireVippsHeaders = []string{
	"Vipps-System-Name", "acme-erp", "Vipps-System-Version", "5.4.0",
	"Vipps-System-Plugin-Name", "acme-vipps-sync", "Vipps-System-Plugin-Version", "1.2.1",
}

// newWireEnv starts a server with two ledgers of fixed entries and a
// partner "wire-partner" granted both; it answers the env and the
// partner's token.
//
// NOK funds: 2024-03-01 a day of sales, fees retained and the payout to
// zero; 2024-03-02 no entries (closed, empty); 2024-03-03 a capture past
// int32 and a refund (closed); 2024-03-04 a credit note (the open date).
// NOK fees: capture fees (negative) on 2024-03-01, settled by fees-retained
// of the opposite sign on each topic; one capture fee on 2024-03-04.
func newWireEnv(t *testing.T) (*apiEnv, string) {
	t.Helper()
	e := newAPIEnv(t, nil, Limits{})
	admin := e.adminToken()
	put := func(id string, body map[string]any) {
		r := e.do("PUT", "/admin/v1/ledgers/"+id, admin, body)
		if r.code != http.StatusCreated {
			t.Fatalf("put ledger %s: %d %s", id, r.code, r.body)
		}
	}
	put(wireLedgerNOK, map[string]any{
		"currency":                   "NOK",
		"payoutBankAccount":          map[string]any{"scheme": "BBAN:NO", "id": "86011117947"},
		"owner":                      map[string]any{"scheme": "business:NO:ORG", "id": "987654321"},
		"settlesForRecipientHandles": []string{"NO:123455", "api:123456"},
		"salesUnits": []any{
			map[string]any{"name": "Acme Kiosk", "recipientHandle": "NO:123455", "businessIdentifier": map[string]any{"scheme": "business:NO:ORG", "id": "987654321"}},
			map[string]any{"name": "Acme Web", "recipientHandle": "api:123456", "businessIdentifier": map[string]any{"scheme": "business:NO:ORG", "id": "987654321"}},
		},
		"timeZone": "Europe/Oslo",
	})
	put(wireLedgerDKK, map[string]any{
		"currency":                   "DKK",
		"payoutBankAccount":          map[string]any{"scheme": "BBAN:DK", "id": "12345678901234"},
		"owner":                      map[string]any{"scheme": "business:DK:CVR", "id": "12345678"},
		"settlesForRecipientHandles": []string{"DK:90001"},
		"salesUnits": []any{
			map[string]any{"name": "Hygge Café", "recipientHandle": "DK:90001", "businessIdentifier": map[string]any{"scheme": "business:DK:CVR", "id": "12345678"}},
		},
		"timeZone": "Europe/Copenhagen",
		"cutoff":   "04:00",
	})
	post := func(id, topic string, entries ...map[string]any) {
		r := e.do("POST", "/admin/v1/ledgers/"+id+"/"+topic+"/entries", admin, map[string]any{"entries": entries})
		if r.code != http.StatusOK {
			t.Fatalf("append %s/%s: %d %s", id, topic, r.code, r.body)
		}
	}
	entry := func(id, psp, at, date, typ, ref string, amount int64, handle any) map[string]any {
		return map[string]any{"entryId": id, "pspReference": psp, "time": at, "ledgerDate": date,
			"entryType": typ, "reference": ref, "amount": amount, "recipientHandle": handle}
	}
	gdpr := func(m map[string]any, name, phone, msg string) map[string]any {
		m["name"], m["phoneNumber"], m["message"] = name, phone, msg
		return m
	}

	// Fees first on 2024-03-01 so funds' fees-retained follows them.
	post(wireLedgerNOK, "fees",
		entry("f1", "3343121302", "2024-03-01T08:15:00.123456Z", "2024-03-01", "capture-fee", "kiosk-1", -150, "NO:123455"),
		entry("f2", "3343121303", "2024-03-01T10:02:11Z", "2024-03-01", "capture-fee", "web-1001", -450, "api:123456"),
		entry("f3", "3343121399", "2024-03-01T22:59:00Z", "2024-03-01", "fees-retained", "fees-2024-03-01", 600, nil),
	)
	post(wireLedgerNOK, "funds",
		gdpr(entry("c1", "3343121302", "2024-03-01T08:15:00.123456Z", "2024-03-01", "capture", "kiosk-1", 49900, "NO:123455"),
			"Ola Nordmann", "+4791234567", "Takk for kaffen"),
		entry("c2", "3343121303", "2024-03-01T10:02:11Z", "2024-03-01", "capture", "web-1001", 150000, "api:123456"),
		entry("r1", "3343121304", "2024-03-01T12:30:00Z", "2024-03-01", "refund", "web-1001", -20000, "api:123456"),
		entry("fr1", "3343121399", "2024-03-01T22:59:00Z", "2024-03-01", "fees-retained", "fees-2024-03-01", -600, nil),
		entry("p1", "3343121400", "2024-03-01T22:59:59.999999Z", "2024-03-01", "scheduled-for-payout", "payout-2024-03-01", -179300, nil),
	)
	post(wireLedgerNOK, "funds",
		entry("c3", "3343121500", "2024-03-03T09:00:00Z", "2024-03-03", "capture", "web-1002", 3_000_000_000, "api:123456"),
		entry("r2", "3343121501", "2024-03-03T15:45:30.5Z", "2024-03-03", "refund", "web-1002", -1_000_000, "api:123456"),
		entry("n1", "3343121600", "2024-03-04T08:00:00Z", "2024-03-04", "credit-note", "credit-7", 2500, "NO:123455"),
	)
	post(wireLedgerNOK, "fees",
		entry("f4", "3343121500", "2024-03-04T08:00:00Z", "2024-03-04", "capture-fee", "web-1002", -9000, "api:123456"),
	)
	post(wireLedgerDKK, "funds",
		gdpr(entry("d1", "5543121302", "2024-03-02T03:59:59Z", "2024-03-01", "capture", "hygge-1", 4500, "DK:90001"),
			"Mette Hansen", "+4512345678", "Tak"),
	)

	secret := e.createClient(admin, "wire-partner", []string{"read"},
		map[string]any{"ledgerId": wireLedgerNOK, "gdprConsent": true},
		map[string]any{"ledgerId": wireLedgerDKK, "gdprConsent": false})
	return e, e.token("wire-partner", secret)
}

// wirePage is the part of a report answer the walk needs.
type wirePage struct {
	Items    []json.RawMessage `json:"items"`
	TryLater bool              `json:"tryLater"`
	HasMore  bool              `json:"hasMore"`
	Cursor   string            `json:"cursor"`
}

func decodeWirePage(t *testing.T, r resp) wirePage {
	t.Helper()
	var p wirePage
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("%v\n%s", err, r.body)
	}
	return p
}

func TestWire_ReportAPI(t *testing.T) {
	e, tok := newWireEnv(t)
	get := func(t *testing.T, golden, path string, q url.Values, wantCode int) resp {
		t.Helper()
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		r := e.getVippsT(t, path, tok, wireVippsHeaders...)
		if r.code != wantCode {
			t.Fatalf("GET %s: %d, want %d: %s", path, r.code, wantCode, r.body)
		}
		checkGolden(t, golden, r.body)
		return r
	}
	nok := "/report/v2/ledgers/" + wireLedgerNOK

	t.Run("ledgers", func(t *testing.T) {
		get(t, "wire_ledgers", "/settlement/v1/ledgers", nil, 200)
		r := get(t, "wire_ledgers_page1", "/settlement/v1/ledgers", url.Values{"pageSize": {"1"}}, 200)
		p := decodeWirePage(t, r)
		if p.Cursor == "" {
			t.Fatalf("first of two pages has no cursor: %s", r.body)
		}
		r = get(t, "wire_ledgers_page2", "/settlement/v1/ledgers", url.Values{"pageSize": {"1"}, "cursor": {p.Cursor}}, 200)
		if p := decodeWirePage(t, r); p.Cursor != "" || len(p.Items) != 1 {
			t.Fatalf("last page: %s", r.body)
		}
		get(t, "wire_ledgers_filtered", "/settlement/v1/ledgers", url.Values{"settlesForRecipientHandles": {"DK:90001"}}, 200)
	})

	t.Run("feed", func(t *testing.T) {
		// An empty cursor= is no cursor; pages of 3 to the end, where the
		// answer repeats the cursor with tryLater.
		q := url.Values{"pageSize": {"3"}, "cursor": {""}}
		var n int
		for i := 1; ; i++ {
			if i > 10 {
				t.Fatal("feed never reached tryLater")
			}
			r := get(t, "wire_feed_funds_"+string(rune('0'+i)), nok+"/funds/feed", q, 200)
			p := decodeWirePage(t, r)
			n += len(p.Items)
			if p.TryLater {
				if p.Cursor != q.Get("cursor") || len(p.Items) != 0 {
					t.Fatalf("end of feed: %s, want no items and the cursor %q", r.body, q.Get("cursor"))
				}
				break
			}
			q.Set("cursor", p.Cursor)
		}
		if n != 8 {
			t.Errorf("the feed walked %d entries, want 8", n)
		}
		// A long poll that ends without news answers the same.
		q.Set("wait", "1s")
		r := get(t, "wire_feed_funds_end_wait", nok+"/funds/feed", q, 200)
		if p := decodeWirePage(t, r); !p.TryLater || p.Cursor != q.Get("cursor") {
			t.Fatalf("long poll at the end: %s", r.body)
		}

		get(t, "wire_feed_funds_gdpr", nok+"/funds/feed", url.Values{"includeGDPRSensitiveData": {"true"}}, 200)
		get(t, "wire_feed_fees", nok+"/fees/feed", nil, 200)
		get(t, "wire_feed_dkk", "/report/v2/ledgers/"+wireLedgerDKK+"/funds/feed", nil, 200)
	})

	t.Run("dates", func(t *testing.T) {
		// A closed date in pages of 2.
		q := url.Values{"pageSize": {"2"}}
		for i := 1; ; i++ {
			if i > 5 {
				t.Fatal("date report never ended")
			}
			r := get(t, "wire_date_closed_"+string(rune('0'+i)), nok+"/funds/dates/2024-03-01", q, 200)
			p := decodeWirePage(t, r)
			if p.TryLater {
				t.Fatalf("closed date answers tryLater: %s", r.body)
			}
			if !p.HasMore {
				break
			}
			q.Set("cursor", p.Cursor)
		}
		get(t, "wire_date_closed_gdpr", nok+"/funds/dates/2024-03-01", url.Values{"includeGDPRSensitiveData": {"true"}}, 200)
		get(t, "wire_date_closed_fees", nok+"/fees/dates/2024-03-01", nil, 200)
		get(t, "wire_date_closed_int64", nok+"/funds/dates/2024-03-03", nil, 200)

		r := get(t, "wire_date_closed_empty", nok+"/funds/dates/2024-03-02", nil, 200)
		if p := decodeWirePage(t, r); len(p.Items) != 0 || p.TryLater || p.HasMore {
			t.Errorf("closed empty date: %s", r.body)
		}
		r = get(t, "wire_date_open", nok+"/funds/dates/2024-03-04", nil, 200)
		if p := decodeWirePage(t, r); len(p.Items) != 1 || !p.TryLater {
			t.Errorf("open date: %s", r.body)
		}
		r = get(t, "wire_date_future", nok+"/funds/dates/2024-03-05", nil, 200)
		if p := decodeWirePage(t, r); len(p.Items) != 0 || !p.TryLater || p.HasMore {
			t.Errorf("future date: %s", r.body)
		}
		// The DKK ledger's 04:00 cutoff: 03:59:59 on the 2nd is the 1st.
		get(t, "wire_date_dkk_cutoff", "/report/v2/ledgers/"+wireLedgerDKK+"/funds/dates/2024-03-01", nil, 200)
	})

	t.Run("errors", func(t *testing.T) {
		get(t, "wire_error_cursor_garbage", nok+"/funds/feed", url.Values{"cursor": {"garbage"}}, 400)
		get(t, "wire_error_page_size", nok+"/funds/feed", url.Values{"pageSize": {"1001"}}, 400)
		get(t, "wire_error_unknown_ledger", "/report/v2/ledgers/999999/funds/feed", nil, 404)
		get(t, "wire_error_gdpr_no_consent", "/report/v2/ledgers/"+wireLedgerDKK+"/funds/feed", url.Values{"includeGDPRSensitiveData": {"true"}}, 403)
		get(t, "wire_error_bad_date", nok+"/funds/dates/2024-13-01", nil, 400)
		get(t, "wire_error_gone", "/report/v1/ledgertransactions", url.Values{"ledgerId": {wireLedgerNOK}}, 410)
	})
}
