package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// A token verified once is served from the cache afterwards, and the cache
// never lets through what full verification would refuse: another token
// text, a deleted client, an expired token.
func TestVerify_CachedToken(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	secret := e.mustClient(t, "acme", []string{ledger.ScopeRead}, ledger.Grant{LedgerID: "302321"})
	raw := e.mustToken(t, "acme", secret).AccessToken
	for i := range 3 {
		p, err := e.svc.Verify(ctx, raw)
		if err != nil || p.ClientID != "acme" || !p.CanRead("302321") {
			t.Fatalf("verify %d: %+v, %v", i, p, err)
		}
	}
	if _, ok := e.svc.verified.get(raw); !ok {
		t.Fatal("verified token not cached")
	}

	// One changed byte of the signature is another token: verified in full
	// and refused.
	b := []byte(raw)
	b[len(b)-2] ^= 1
	if _, err := e.svc.Verify(ctx, string(b)); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("tampered token: %v", err)
	}

	// Expired: refused with the same reason as without the cache.
	e.clock.Add(time.Hour + Leeway + time.Second)
	if _, err := e.svc.Verify(ctx, raw); !errors.Is(err, ErrUnauthenticated) || !errContains(err, "expired") {
		t.Fatalf("expired cached token: %v", err)
	}
	if _, ok := e.svc.verified.get(raw); ok {
		t.Fatal("expired token still cached")
	}

	// A deleted client's cached token is refused at once.
	raw2 := e.mustToken(t, "acme", secret).AccessToken
	if _, err := e.svc.Verify(ctx, raw2); err != nil {
		t.Fatal(err)
	}
	if err := e.store.DeleteClient(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Verify(ctx, raw2); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("deleted client's cached token: %v", err)
	}
}
