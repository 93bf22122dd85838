package auth

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

func auditActions(t *testing.T, st *ledger.Store) map[string]int {
	t.Helper()
	evs, _, err := st.ListAudit(ledger.AuditFilter{}, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, ev := range evs {
		if ev.Time.IsZero() {
			t.Fatalf("event without time: %+v", ev)
		}
		out[ev.Action]++
	}
	return out
}

func TestService_Audit(t *testing.T) {
	for _, queue := range []int{4096, 1} { // 1: mostly synchronous writes
		t.Run(fmt.Sprintf("queue %d", queue), func(t *testing.T) {
			e := newTestEnv(t, func(c *Config) { c.AuditQueue = queue })
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := range 50 {
						e.svc.Audit(ledger.AuditEvent{ClientID: "acme", Action: fmt.Sprintf("a%d", g), Resource: fmt.Sprint(i), Result: "ok", Status: 200})
					}
				})
			}
			wg.Wait()
			if err := e.svc.FlushAudit(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := auditActions(t, e.store)
			for g := range 4 {
				if got[fmt.Sprintf("a%d", g)] != 50 {
					t.Fatalf("after flush: %v", got)
				}
			}
			e.svc.Audit(ledger.AuditEvent{Action: "last"})
			if err := e.svc.Close(); err != nil {
				t.Fatal(err)
			}
			e.svc.Audit(ledger.AuditEvent{Action: "after-close"})
			if err := e.svc.FlushAudit(context.Background()); err != nil {
				t.Fatal(err)
			}
			got = auditActions(t, e.store)
			if got["last"] != 1 || got["after-close"] != 1 {
				t.Fatalf("after close: %v", got)
			}
		})
	}
}

// Close writes what is queued before returning.
func TestService_Close_Flushes(t *testing.T) {
	e := newTestEnv(t, nil)
	for i := range 300 {
		e.svc.Audit(ledger.AuditEvent{Action: "read", Resource: fmt.Sprint(i)})
	}
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if got := auditActions(t, e.store); got["read"] != 300 {
		t.Fatalf("after close: %v", got)
	}
	if err := e.svc.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}
