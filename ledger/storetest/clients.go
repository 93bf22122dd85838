package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// API clients and the audit log.

func testClients(t *testing.T, h Harness) {
	s := h.New(t).Open(t, Options{})
	ctx := context.Background()
	c := ledger.Client{ID: "acme-accounting", SecretHash: "$argon2id$x", Scopes: []string{ledger.ScopeRead}, Grants: []ledger.Grant{{LedgerID: "302321", GDPRConsent: true}}}
	if _, err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateClient(ctx, c); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	for _, bad := range []ledger.Client{
		{ID: "x y", SecretHash: "h", Scopes: []string{ledger.ScopeRead}},
		{ID: "x", SecretHash: "h", Scopes: []string{"write"}},
		{ID: "x", SecretHash: "h"},
		{ID: "x", SecretHash: "h", Scopes: []string{ledger.ScopeRead}, Grants: []ledger.Grant{{LedgerID: "1"}, {LedgerID: "1"}}},
	} {
		if _, err := s.CreateClient(ctx, bad); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	got, err := s.UpdateClient(ctx, c.ID, func(c *ledger.Client) error {
		c.Grants = append(c.Grants, ledger.Grant{LedgerID: "302322"})
		return nil
	})
	if err != nil || len(got.Grants) != 2 {
		t.Fatalf("update: %+v %v", got, err)
	}
	if g, ok := got.Grant("302321"); !ok || !g.GDPRConsent || !got.HasScope(ledger.ScopeRead) || got.HasScope(ledger.ScopeAdmin) {
		t.Fatalf("grants/scopes: %+v", got)
	}
	if _, err := s.UpdateClient(ctx, "nobody", func(*ledger.Client) error { return nil }); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if ls, err := s.ListClients("", 10); err != nil || len(ls) != 1 {
		t.Fatalf("list: %v %v", ls, err)
	}
	if err := s.DeleteClient(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClient(c.ID); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
}

func testAudit(t *testing.T, h Harness) {
	s := h.New(t).Open(t, Options{})
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		ev := ledger.AuditEvent{ClientID: "a", Action: "feed.read", Resource: "ledgers/1/funds", Result: "ok", Status: 200, ContextID: "c"}
		if i%2 == 1 {
			ev.ClientID, ev.Action = "b", "token.issue"
		}
		if err := s.Audit(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	all, next, err := s.ListAudit(ledger.AuditFilter{}, 0, 3)
	if err != nil || len(all) != 3 || next != 3 || all[0].Sequence != 1 || all[0].Time.IsZero() {
		t.Fatalf("page 1: %+v %d %v", all, next, err)
	}
	rest, next, err := s.ListAudit(ledger.AuditFilter{}, next, 10)
	if err != nil || len(rest) != 2 || next != 5 {
		t.Fatalf("page 2: %+v %d %v", rest, next, err)
	}
	bs, _, err := s.ListAudit(ledger.AuditFilter{ClientID: "b", Action: "token.issue"}, 0, 10)
	if err != nil || len(bs) != 2 {
		t.Fatalf("filter: %+v %v", bs, err)
	}
	if time.Since(bs[0].Time) > time.Minute {
		t.Fatalf("time %s", bs[0].Time)
	}
}
