package server

import (
	"testing"
)

// A query value of the wrong type is a 400 naming the parameter as the
// caller wrote it, with what is expected, not the gateway's proto field
// name and parser error.
func TestREST_QueryValueErrors(t *testing.T) {
	e := newAPIEnv(t, nil, Limits{})
	adm := e.adminToken()
	e.putLedger(adm, "302321")
	tok := e.token("p", e.createClient(adm, "p", []string{"read"}, map[string]any{"ledgerId": "302321"}))
	for q, want := range map[string]string{
		"/report/v2/ledgers/302321/funds/feed?pageSize=abc":                         "pageSize: not a whole number",
		"/report/v2/ledgers/302321/funds/feed?wait=abc":                             "wait: not a duration (such as 30s)",
		"/report/v2/ledgers/302321/funds/feed?includeGDPRSensitiveData=maybe":       "includeGDPRSensitiveData: must be true or false",
		"/report/v2/ledgers/302321/funds/entries?fromTime=yesterday":                "fromTime: not an RFC 3339 time (such as 2024-05-01T12:00:00Z)",
		"/report/v2/ledgers/302321/funds/entries?limit=x":                           "limit: not a whole number",
		"/report/v2/ledgers/302321/funds/dates/2024-05-01?pageSize=1e3":             "pageSize: not a whole number",
		"/settlement/v1/ledgers?settlesForRecipientHandles=ok&cursor=x&pageSize=-x": "pageSize: not a whole number",
	} {
		r := e.do("GET", q, tok, nil)
		if r.code != 400 {
			t.Errorf("%s: %d %s", q, r.code, r.body)
			continue
		}
		if got := r.json(t)["detail"]; got != want {
			t.Errorf("%s: detail %q, want %q", q, got, want)
		}
	}
}
