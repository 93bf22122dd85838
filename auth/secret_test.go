package auth

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

func TestService_HashSecret_Format(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	h, err := e.svc.HashSecret(ctx, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h) {
		t.Fatalf("hash %q is not PHC argon2id with the expected parameters", h)
	}
	for secret, want := range map[string]bool{"s3cret": true, "s3cres": false, "": false} {
		if ok, err := e.svc.checkSecret(ctx, h, secret); err != nil || ok != want {
			t.Errorf("checkSecret(%q) = %v, %v; want %v", secret, ok, err, want)
		}
	}
	if !re.MatchString(dummyHash) {
		t.Fatalf("dummy hash %q does not look like a real one", dummyHash)
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA", "$argon2id$v=19$m=4000000,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, err := parsePHC(bad); err == nil {
			t.Errorf("parsePHC(%q) accepted", bad)
		}
	}
}

func TestService_HashSecret_ConcurrencyCap(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxConcurrentHashes = 2 })
	var cur, peak atomic.Int32
	e.svc.onHash = func() {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		cur.Add(-1)
	}
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if _, err := e.svc.HashSecret(context.Background(), "x"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak concurrent hashes %d, want 2", p)
	}

	// A caller waiting for a slot gives up when its context ends.
	block := make(chan struct{})
	e.svc.onHash = func() { <-block }
	for range 2 {
		wg.Go(func() { e.svc.HashSecret(context.Background(), "x") })
	}
	for len(e.svc.hashSlots) < 2 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.svc.IssueToken(ctx, "nobody", "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("IssueToken with all slots busy = %v, want deadline exceeded", err)
	}
	close(block)
	wg.Wait()
}

func TestService_Clients(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	c, secret, err := e.svc.CreateClient(ctx, "acme", []string{ledger.ScopeRead}, []ledger.Grant{{LedgerID: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "acme" || c.SecretHash == "" || c.SecretHash == secret || len(c.Grants) != 1 {
		t.Fatalf("client = %+v", c)
	}
	if _, _, err := e.svc.CreateClient(ctx, "acme", []string{ledger.ScopeRead}, nil); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("second create = %v, want ErrConflict", err)
	}
	if _, _, err := e.svc.CreateClient(ctx, "x", []string{"write"}, nil); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("bad scope = %v, want ErrInvalid", err)
	}

	newSecret, err := e.svc.RotateSecret(ctx, "acme")
	if err != nil || newSecret == secret {
		t.Fatalf("rotate = %q, %v", newSecret, err)
	}
	if _, err := e.svc.IssueToken(ctx, "acme", secret); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("old secret after rotation = %v", err)
	}
	e.mustToken(t, "acme", newSecret)
	if _, err := e.svc.RotateSecret(ctx, "nobody"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("rotate unknown = %v", err)
	}

	got, err := e.svc.ReplaceClient(ctx, "acme", []string{ledger.ScopeAdmin}, nil)
	if err != nil || len(got.Grants) != 0 || !got.HasScope(ledger.ScopeAdmin) || got.HasScope(ledger.ScopeRead) || got.SecretHash == "" {
		t.Fatalf("replace = %+v, %v", got, err)
	}
	if _, err := e.svc.ReplaceClient(ctx, "nobody", []string{ledger.ScopeRead}, nil); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("replace unknown = %v", err)
	}
}
