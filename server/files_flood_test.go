package server

import (
	"context"
	"testing"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Download attempts without a valid token are audited, but a flood of them
// from one address is refused with 429 once the address's allowance (the
// token endpoint's limits) is spent, and those refusals are not logged: an
// anonymous caller cannot grow the audit log without bound.
func TestDownload_AnonymousFloodNotLogged(t *testing.T) {
	e := newAPIEnv(t, func(c *auth.Config) { c.TokenRatePerMinute = 0 }, Limits{}) // 0: the default limits
	got := map[int]int{}
	for range 25 {
		r := e.do("GET", "/report/v2/downloads/"+"abcdefghijklmnopqrstuvwxyz", "", nil)
		got[r.code]++
		if r.code == 429 && r.hdr.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if got[401] == 0 || got[429] == 0 || got[401]+got[429] != 25 {
		t.Fatalf("answers %v, want some 401 and then 429", got)
	}
	if err := e.auth.FlushAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	events, _, err := e.store.ListAudit(ledger.AuditFilter{Action: "file.download"}, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != got[401] {
		t.Errorf("%d audit events, want one per 401 (%d)", len(events), got[401])
	}
	for _, ev := range events {
		if ev.Status != 401 || ev.ClientID != "" {
			t.Errorf("audit event %+v", ev)
		}
	}
}
