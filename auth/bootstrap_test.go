package auth

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

func TestService_Bootstrap_RandomSecret(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	created, secret, err := e.svc.Bootstrap(ctx, "")
	if err != nil || !created || secret == "" {
		t.Fatalf("Bootstrap = %v, %q, %v", created, secret, err)
	}
	path := filepath.Join(e.dir, "admin-credentials")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-credentials: %v, %v", fi, err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "client_id=admin\nclient_secret="+secret+"\n" {
		t.Fatalf("admin-credentials = %q", b)
	}
	p, err := e.svc.Verify(ctx, e.mustToken(t, "admin", secret).AccessToken)
	if err != nil || !p.HasScope(ledger.ScopeAdmin) || p.HasScope(ledger.ScopeRead) {
		t.Fatalf("admin principal %+v, %v", p, err)
	}

	// Second start: nothing happens, the file stays.
	created, secret2, err := e.svc.Bootstrap(ctx, "")
	if err != nil || created || secret2 != "" {
		t.Fatalf("second Bootstrap = %v, %q, %v", created, secret2, err)
	}
	if b2, _ := os.ReadFile(path); string(b2) != string(b) {
		t.Fatal("second Bootstrap changed admin-credentials")
	}
}

func TestService_Bootstrap_GivenSecret(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	created, secret, err := e.svc.Bootstrap(ctx, "given-admin-secret")
	if err != nil || !created || secret != "given-admin-secret" {
		t.Fatalf("Bootstrap = %v, %q, %v", created, secret, err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "admin-credentials")); !os.IsNotExist(err) {
		t.Fatalf("admin-credentials written for a given secret: %v", err)
	}
	e.mustToken(t, "admin", "given-admin-secret")
}

func TestService_Bootstrap_NotEmpty(t *testing.T) {
	e := newTestEnv(t, nil)
	if _, err := e.store.CreateClient(context.Background(), ledger.Client{ID: "acme", SecretHash: dummyHash, Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	created, _, err := e.svc.Bootstrap(context.Background(), "")
	if err != nil || created {
		t.Fatalf("Bootstrap on a store with clients = %v, %v", created, err)
	}
	if _, err := e.store.GetClient("admin"); err == nil {
		t.Fatal("admin made although clients exist")
	}
}
