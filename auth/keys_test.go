package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

func jwksKids(t *testing.T, b []byte) []string {
	t.Helper()
	var set jwkSet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Use != "sig" || k.Alg != "EdDSA" {
			t.Fatalf("jwk %+v", k)
		}
		x, _ := base64.RawURLEncoding.DecodeString(k.X)
		if kidOf(ed25519.PublicKey(x)) != k.Kid {
			t.Fatalf("jwk %s: kid does not match its key", k.Kid)
		}
		kids = append(kids, k.Kid)
	}
	return kids
}

func tokenKid(t *testing.T, raw string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Header["kid"].(string)
}

func TestService_New_MakesKeyOnce(t *testing.T) {
	e := newTestEnv(t, nil)
	dir := KeysDir(e.dir)
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("keys dir: %v %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	var pems int
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), ".tmp") {
			t.Errorf("temp file left: %s", en.Name())
		}
		if en.Name() == ".lock" {
			continue
		}
		info, _ := en.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", en.Name(), info.Mode().Perm())
		}
		if strings.HasSuffix(en.Name(), ".pem") {
			pems++
		}
	}
	kids := jwksKids(t, e.svc.JWKS())
	if pems != 1 || len(kids) != 1 {
		t.Fatalf("%d key files, jwks %v; want one key", pems, kids)
	}
	cur, _ := os.ReadFile(filepath.Join(dir, "current"))
	if strings.TrimSpace(string(cur)) != kids[0] {
		t.Fatalf("current = %q, jwks %v", cur, kids)
	}
	// A second start loads the same key.
	again := e.open(t, nil)
	if k := jwksKids(t, again.JWKS()); len(k) != 1 || k[0] != kids[0] {
		t.Fatalf("second start: jwks %v, want %v", k, kids)
	}
}

func TestService_RotateKey(t *testing.T) {
	e := newTestEnv(t, nil)
	secret := e.mustClient(t, "acme", []string{ledger.ScopeRead})
	old := e.mustToken(t, "acme", secret).AccessToken
	oldKid := tokenKid(t, old)

	kid, err := e.svc.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	if kid == oldKid {
		t.Fatal("rotation kept the kid")
	}
	fresh := e.mustToken(t, "acme", secret).AccessToken
	if tokenKid(t, fresh) != kid {
		t.Fatalf("new token signed with %s, want %s", tokenKid(t, fresh), kid)
	}
	for name, raw := range map[string]string{"old": old, "new": fresh} {
		if _, err := e.svc.Verify(context.Background(), raw); err != nil {
			t.Fatalf("%s token: %v", name, err)
		}
	}
	if kids := jwksKids(t, e.svc.JWKS()); len(kids) != 2 || kids[0] != kid || kids[1] != oldKid {
		t.Fatalf("jwks %v, want [%s %s]", kids, kid, oldKid)
	}

	// Once every token of the old key has expired, the key verifies no
	// token, and a later rotation deletes its private key file; its public
	// key stays in the JWKS, after the keys that verify tokens, so that
	// seals it signed stay verifiable — also after a restart.
	e.clock.Add(time.Hour + Leeway + keyPoll + time.Second)
	if kids := jwksKids(t, e.svc.JWKS()); len(kids) != 2 || kids[0] != kid || kids[1] != oldKid {
		t.Fatalf("jwks after the grace %v, want [%s %s]", kids, kid, oldKid)
	}
	if _, err := e.svc.Verify(context.Background(), old); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("token of a key past its grace: %v", err)
	}
	newest, err := e.svc.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(KeysDir(e.dir), oldKid+".pem")); !os.IsNotExist(err) {
		t.Fatalf("old key file still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(KeysDir(e.dir), kid+".pem")); err != nil {
		t.Fatalf("previous key file gone too early: %v", err)
	}
	want := []string{newest, kid, oldKid}
	if kids := jwksKids(t, e.svc.JWKS()); !slices.Equal(kids, want) {
		t.Fatalf("jwks after the next rotation %v, want %v", kids, want)
	}
	if kids := jwksKids(t, e.open(t, nil).JWKS()); !slices.Equal(kids, want) {
		t.Fatalf("jwks after a restart %v, want %v", kids, want)
	}
}

// `ledgerfeed keys rotate` writes a new key while a server runs: the server
// verifies tokens of the new key at once and signs with it soon after.
func TestRotateKeyInDir_WhileServing(t *testing.T) {
	e := newTestEnv(t, nil)
	secret := e.mustClient(t, "acme", []string{ledger.ScopeRead})
	old := e.mustToken(t, "acme", secret).AccessToken
	oldKid := tokenKid(t, old)

	kid, err := RotateKeyInDir(e.dir) // as another process would
	if err != nil {
		t.Fatal(err)
	}
	// Another server process on the same directory signs with the new key.
	other := e.open(t, nil)
	fresh, err := other.IssueToken(context.Background(), "acme", secret)
	if err != nil {
		t.Fatal(err)
	}
	if tokenKid(t, fresh.AccessToken) != kid {
		t.Fatalf("other service signs with %s, want %s", tokenKid(t, fresh.AccessToken), kid)
	}
	// The running service knows the new kid at once, and still the old one.
	for name, raw := range map[string]string{"old": old, "new": fresh.AccessToken} {
		if _, err := e.svc.Verify(context.Background(), raw); err != nil {
			t.Fatalf("%s token: %v", name, err)
		}
	}
	// It signs with the new key once it looks at the marker again.
	e.svc.keys.mu.Lock()
	e.svc.keys.lastCheck = time.Time{}
	e.svc.keys.mu.Unlock()
	if k := tokenKid(t, e.mustToken(t, "acme", secret).AccessToken); k != kid {
		t.Fatalf("running service signs with %s after the poll, want %s", k, kid)
	}
	if kids := jwksKids(t, e.svc.JWKS()); len(kids) != 2 || kids[0] != kid || kids[1] != oldKid {
		t.Fatalf("jwks %v", kids)
	}
}

func TestService_New_RefusesForeignKeyFile(t *testing.T) {
	e := newTestEnv(t, nil)
	dir := KeysDir(e.dir)
	cur, _ := os.ReadFile(filepath.Join(dir, "current"))
	kid := strings.TrimSpace(string(cur))
	// Put another key under the current kid's name.
	tmp := t.TempDir()
	k2, err := RotateKeyInDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(KeysDir(tmp), k2+".pem"))
	if err := os.WriteFile(filepath.Join(dir, kid+".pem"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newService(e.store, Config{DataDir: e.dir}, nil); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("New with a swapped key file = %v", err)
	}
}
