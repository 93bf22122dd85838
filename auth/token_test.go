package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// claimsFor returns the claims of a valid token of ours for a stored client.
func (e *testEnv) claimsFor(t *testing.T, id string) jwt.MapClaims {
	t.Helper()
	c, err := e.store.GetClient(id)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	return jwt.MapClaims{
		"iss": "ledgerfeed", "aud": "ledgerfeed", "sub": id, "client_id": id,
		"scope": strings.Join(c.Scopes, " "), "jti": "test",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"lf_gen": clientGen(c),
	}
}

// signOwn signs claims with the service's current key; hdr may change the
// header (kid and typ are set before it runs).
func (e *testEnv) signOwn(t *testing.T, claims jwt.MapClaims, hdr func(map[string]any)) string {
	t.Helper()
	k, err := e.svc.keys.signer()
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = k.kid
	tok.Header["typ"] = "at+jwt"
	if hdr != nil {
		hdr(tok.Header)
	}
	raw, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestService_IssueToken_Verify(t *testing.T) {
	e := newTestEnv(t, nil)
	secret := e.mustClient(t, "acme", []string{ledger.ScopeRead},
		ledger.Grant{LedgerID: "302321", GDPRConsent: true}, ledger.Grant{LedgerID: "302322"})
	if !strings.HasPrefix(secret, SecretPrefix) || len(secret) != len(SecretPrefix)+43 {
		t.Fatalf("secret %q: want lfs_ and 43 base64url characters", secret)
	}
	tok := e.mustToken(t, "acme", secret)
	now := e.clock.Now()
	if tok.TokenType != "Bearer" || tok.ExpiresIn != 3600 || tok.Scope != "read" ||
		!tok.IssuedAt.Equal(now) || !tok.NotBefore.Equal(now) || !tok.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("token = %+v", tok)
	}

	// The header and claims as the contract has them.
	parsed, _, err := jwt.NewParser().ParseUnverified(tok.AccessToken, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := e.svc.keys.signer()
	if parsed.Header["alg"] != "EdDSA" || parsed.Header["typ"] != "at+jwt" || parsed.Header["kid"] != k.kid {
		t.Fatalf("header = %v", parsed.Header)
	}
	c := parsed.Claims.(jwt.MapClaims)
	aud, _ := c.GetAudience()
	if c["iss"] != "ledgerfeed" || len(aud) != 1 || aud[0] != "ledgerfeed" || c["sub"] != "acme" ||
		c["client_id"] != "acme" || c["scope"] != "read" || c["jti"] == "" ||
		c["iat"] != float64(now.Unix()) || c["nbf"] != float64(now.Unix()) || c["exp"] != float64(now.Add(time.Hour).Unix()) {
		t.Fatalf("claims = %v", c)
	}

	p, err := e.svc.Verify(context.Background(), tok.AccessToken)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if p.ClientID != "acme" || p.External || !p.HasScope("read") || p.HasScope("admin") {
		t.Fatalf("principal = %+v", p)
	}
	if !p.CanRead("302321") || !p.GDPRConsent("302321") || !p.CanRead("302322") || p.GDPRConsent("302322") || p.CanRead("999") {
		t.Fatalf("grants wrong: %+v", p.Client.Grants)
	}
	if err := p.CheckLedger("999", false); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("CheckLedger(ungranted) = %v, want ErrNotFound", err)
	}
	if err := p.CheckLedger("302322", true); !errors.Is(err, ErrForbidden) {
		t.Fatalf("CheckLedger(no consent) = %v, want ErrForbidden", err)
	}
	if err := p.RequireScope("admin"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("RequireScope(admin) = %v, want ErrForbidden", err)
	}

	// A token stays valid within its lifetime and the leeway, not after.
	e.clock.Add(time.Hour + Leeway - time.Second)
	if _, err := e.svc.Verify(context.Background(), tok.AccessToken); err != nil {
		t.Fatalf("verify within leeway: %v", err)
	}
	e.clock.Add(2 * time.Second)
	if _, err := e.svc.Verify(context.Background(), tok.AccessToken); !errors.Is(err, ErrUnauthenticated) || !errContains(err, "expired") {
		t.Fatalf("verify after expiry = %v", err)
	}
}

func TestService_Verify_Rejects(t *testing.T) {
	e := newTestEnv(t, nil)
	secret := e.mustClient(t, "acme", []string{ledger.ScopeRead}, ledger.Grant{LedgerID: "302321"})
	e.mustClient(t, "gone", []string{ledger.ScopeRead})
	good := e.mustToken(t, "acme", secret).AccessToken
	k, _ := e.svc.keys.signer()

	var jwks struct{ Keys []jwk }
	if err := json.Unmarshal(e.svc.JWKS(), &jwks); err != nil {
		t.Fatal(err)
	}
	with := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := e.claimsFor(t, "acme")
		mut(c)
		return c
	}
	hs256 := func(key []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, e.claimsFor(t, "acme"))
		tok.Header["kid"] = k.kid
		tok.Header["typ"] = "at+jwt"
		raw, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	now := e.clock.Now()

	tests := []struct {
		name  string
		token func() string
		want  string // in the error
	}{
		{"empty", func() string { return "" }, "missing token"},
		{"garbage", func() string { return "not.a.jwt" }, "malformed"},
		{"alg none", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, e.claimsFor(t, "acme"))
			tok.Header["kid"] = k.kid
			tok.Header["typ"] = "at+jwt"
			raw, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}, "bad signature or algorithm"},
		{"HS256 with the public key as secret", func() string { return hs256(k.pub) }, "bad signature or algorithm"},
		{"HS256 with the JWKS x as secret", func() string { return hs256([]byte(jwks.Keys[0].X)) }, "bad signature or algorithm"},
		{"ES256 with our kid", func() string {
			ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, e.claimsFor(t, "acme"))
			tok.Header["kid"] = k.kid
			tok.Header["typ"] = "at+jwt"
			raw, _ := tok.SignedString(ec)
			return raw
		}, "bad signature or algorithm"},
		{"another Ed25519 key with our kid", func() string {
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, e.claimsFor(t, "acme"))
			tok.Header["kid"] = k.kid
			tok.Header["typ"] = "at+jwt"
			raw, _ := tok.SignedString(priv)
			return raw
		}, "bad signature or algorithm"},
		{"tampered payload", func() string {
			parts := strings.Split(good, ".")
			b, _ := base64.RawURLEncoding.DecodeString(parts[1])
			var c map[string]any
			json.Unmarshal(b, &c)
			c["scope"] = "read admin"
			b, _ = json.Marshal(c)
			parts[1] = base64.RawURLEncoding.EncodeToString(b)
			return strings.Join(parts, ".")
		}, "bad signature or algorithm"},
		{"expired", func() string {
			return e.signOwn(t, with(func(c jwt.MapClaims) {
				c["iat"], c["nbf"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
			}), nil)
		}, "token expired"},
		{"missing exp", func() string { return e.signOwn(t, with(func(c jwt.MapClaims) { delete(c, "exp") }), nil) }, "required claim is missing"},
		{"wrong aud", func() string { return e.signOwn(t, with(func(c jwt.MapClaims) { c["aud"] = "other" }), nil) }, "wrong audience"},
		{"missing aud", func() string { return e.signOwn(t, with(func(c jwt.MapClaims) { delete(c, "aud") }), nil) }, "required claim is missing"},
		{"wrong iss", func() string { return e.signOwn(t, with(func(c jwt.MapClaims) { c["iss"] = "evil" }), nil) }, "unknown issuer"},
		{"missing iss", func() string { return e.signOwn(t, with(func(c jwt.MapClaims) { delete(c, "iss") }), nil) }, "unknown issuer"},
		{"issued in the future", func() string {
			return e.signOwn(t, with(func(c jwt.MapClaims) {
				c["iat"], c["nbf"], c["exp"] = now.Add(time.Hour).Unix(), now.Add(time.Hour).Unix(), now.Add(2*time.Hour).Unix()
			}), nil)
		}, "not valid yet"},
		{"typ JWT", func() string {
			return e.signOwn(t, e.claimsFor(t, "acme"), func(h map[string]any) { h["typ"] = "JWT" })
		}, "typ"},
		{"no typ", func() string {
			return e.signOwn(t, e.claimsFor(t, "acme"), func(h map[string]any) { delete(h, "typ") })
		}, "typ"},
		{"no kid", func() string {
			return e.signOwn(t, e.claimsFor(t, "acme"), func(h map[string]any) { delete(h, "kid") })
		}, "kid"},
		{"kid with a path", func() string {
			return e.signOwn(t, e.claimsFor(t, "acme"), func(h map[string]any) { h["kid"] = "../../etc/passwd" })
		}, "kid"},
		{"kid with a URL", func() string {
			return e.signOwn(t, e.claimsFor(t, "acme"), func(h map[string]any) { h["kid"] = "https://evil.example/jwks.json" })
		}, "kid"},
		{"kid too long", func() string {
			return e.signOwn(t, e.claimsFor(t, "acme"), func(h map[string]any) { h["kid"] = strings.Repeat("a", 65) })
		}, "kid"},
		{"kid not a string", func() string {
			return e.signOwn(t, e.claimsFor(t, "acme"), func(h map[string]any) { h["kid"] = 7 })
		}, "kid"},
		{"unknown kid", func() string {
			return e.signOwn(t, e.claimsFor(t, "acme"), func(h map[string]any) { h["kid"] = "AAAAAAAAAAAAAAAA" })
		}, "unknown key"},
		{"kid naming a file in the key directory", func() string {
			return e.signOwn(t, e.claimsFor(t, "acme"), func(h map[string]any) { h["kid"] = "current" })
		}, "unknown key"},
		{"no sub", func() string { return e.signOwn(t, with(func(c jwt.MapClaims) { delete(c, "sub") }), nil) }, "no sub claim"},
		{"unknown client", func() string { return e.signOwn(t, with(func(c jwt.MapClaims) { c["sub"] = "nobody" }), nil) }, "no longer exists"},
		{"deleted client", func() string {
			raw := e.signOwn(t, e.claimsFor(t, "gone"), nil)
			if err := e.store.DeleteClient(context.Background(), "gone"); err != nil {
				t.Fatal(err)
			}
			return raw
		}, "no longer exists"},
		{"client deleted and made again", func() string {
			raw := e.signOwn(t, e.claimsFor(t, "acme"), nil)
			if err := e.store.DeleteClient(context.Background(), "acme"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.CreateClient(context.Background(), ledger.Client{ID: "acme", SecretHash: dummyHash, Scopes: []string{"read"}}); err != nil {
				t.Fatal(err)
			}
			return raw
		}, "no longer exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.token()
			e.files.reset()
			p, err := e.svc.Verify(context.Background(), raw)
			if !errors.Is(err, ErrUnauthenticated) || !errContains(err, tt.want) {
				t.Fatalf("Verify = %+v, %v; want ErrUnauthenticated with %q", p, err, tt.want)
			}
			keysDir := KeysDir(e.dir) + string(filepath.Separator)
			for _, path := range e.files.all() {
				if !strings.HasPrefix(path, keysDir) || strings.Contains(path, "passwd") || strings.Contains(path, "evil") {
					t.Errorf("verify touched %s", path)
				}
			}
			if strings.Contains(tt.name, "kid") && tt.want == "kid" && len(e.files.all()) != 0 {
				t.Errorf("a malformed kid touched files: %v", e.files.all())
			}
		})
	}
}

// A token shows the client as it is now: grants and scopes taken away
// since the token was issued are gone at once.
func TestService_Verify_ClientChangesApplyAtOnce(t *testing.T) {
	e := newTestEnv(t, nil)
	secret := e.mustClient(t, "acme", []string{ledger.ScopeRead, ledger.ScopeAdmin}, ledger.Grant{LedgerID: "1", GDPRConsent: true})
	tok := e.mustToken(t, "acme", secret)
	if tok.Scope != "read admin" {
		t.Fatalf("scope = %q", tok.Scope)
	}
	if _, err := e.svc.ReplaceClient(context.Background(), "acme", []string{ledger.ScopeRead}, []ledger.Grant{{LedgerID: "2"}}); err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.Verify(context.Background(), tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if p.HasScope(ledger.ScopeAdmin) || p.CanRead("1") || !p.CanRead("2") || p.GDPRConsent("2") {
		t.Fatalf("principal after replace = %+v", p)
	}
	// A scope added later is not in the token, so not held.
	if _, err := e.svc.ReplaceClient(context.Background(), "acme", []string{ledger.ScopeRead, ledger.ScopeAdmin}, nil); err != nil {
		t.Fatal(err)
	}
	tok2 := e.signOwn(t, func() jwt.MapClaims { c := e.claimsFor(t, "acme"); c["scope"] = "read"; return c }(), nil)
	if p, err := e.svc.Verify(context.Background(), tok2); err != nil || p.HasScope(ledger.ScopeAdmin) {
		t.Fatalf("Verify = %+v, %v; want read only", p, err)
	}
}

func TestService_IssueToken_SameAnswerForUnknownClientAndWrongSecret(t *testing.T) {
	e := newTestEnv(t, nil)
	e.mustClient(t, "acme", []string{ledger.ScopeRead})
	var hashes int
	e.svc.onHash = func() { hashes++ }

	ctx := context.Background()
	start := time.Now()
	_, errWrong := e.svc.IssueToken(ctx, "acme", "lfs_wrong")
	tWrong := time.Since(start)
	if hashes != 1 {
		t.Fatalf("wrong secret ran %d hashes, want 1", hashes)
	}
	start = time.Now()
	_, errUnknown := e.svc.IssueToken(ctx, "nobody", "lfs_wrong")
	tUnknown := time.Since(start)
	if hashes != 2 {
		t.Fatalf("unknown client ran %d hashes in all, want 2", hashes)
	}
	_, errEmpty := e.svc.IssueToken(ctx, "", "")
	if hashes != 3 {
		t.Fatalf("empty client id ran %d hashes in all, want 3", hashes)
	}
	for _, err := range []error{errWrong, errUnknown, errEmpty} {
		if !errors.Is(err, ErrUnauthenticated) || err.Error() != "unauthenticated: invalid client credentials" {
			t.Fatalf("error = %v", err)
		}
	}
	t.Logf("wrong secret %v, unknown client %v", tWrong, tUnknown)

	// Nobody gets a token with the dummy hash's secret, whatever it is.
	if _, err := e.store.CreateClient(ctx, ledger.Client{ID: "dummy", SecretHash: dummyHash, Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.IssueToken(ctx, "dummy", ""); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("dummy-hash client = %v", err)
	}
}

// writeJWKS writes a JWKS file holding the given keys.
func writeJWKS(t *testing.T, path string, keys ...jwk) {
	t.Helper()
	b, _ := json.Marshal(jwkSet{Keys: keys})
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func edJWK(kid string, pub ed25519.PublicKey) jwk {
	return jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Use: "sig"}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) jwk {
	b, _ := pub.Bytes() // 0x04 ‖ X ‖ Y
	return jwk{Kty: "EC", Crv: "P-256", X: base64.RawURLEncoding.EncodeToString(b[1:33]),
		Y: base64.RawURLEncoding.EncodeToString(b[33:]), Kid: kid, Alg: "ES256"}
}

func TestService_Verify_ExternalIssuer(t *testing.T) {
	jwksPath := filepath.Join(t.TempDir(), "idp-jwks.json")
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	writeJWKS(t, jwksPath, edJWK("ed1", edPub), ecJWK("ec1", &ecPriv.PublicKey))
	const iss = "https://idp.example.com/"
	e := newTestEnv(t, func(c *Config) {
		c.ExternalIssuers = []ExternalIssuer{{Issuer: iss, Audience: "ledgerfeed-api", JWKSFile: jwksPath, ClientIDClaim: "azp"}}
	})
	if _, err := e.store.CreateClient(context.Background(), ledger.Client{
		ID: "erp-job", SecretHash: dummyHash, Scopes: []string{"read"}, Grants: []ledger.Grant{{LedgerID: "302321"}},
	}); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": iss, "aud": []string{"ledgerfeed-api"}, "sub": "user-1", "azp": "erp-job",
			"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	}
	sign := func(m jwt.SigningMethod, key any, kid, typ string, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(m, c)
		tok.Header["kid"] = kid
		if typ == "" {
			delete(tok.Header, "typ")
		} else {
			tok.Header["typ"] = typ
		}
		raw, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	ctx := context.Background()

	for name, raw := range map[string]string{
		"EdDSA":        sign(jwt.SigningMethodEdDSA, edPriv, "ed1", "JWT", claims()),
		"ES256":        sign(jwt.SigningMethodES256, ecPriv, "ec1", "at+jwt", claims()),
		"ES256 no typ": sign(jwt.SigningMethodES256, ecPriv, "ec1", "", claims()),
	} {
		p, err := e.svc.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !p.External || p.ClientID != "erp-job" || !p.CanRead("302321") || p.HasScope("admin") {
			t.Fatalf("%s: principal = %+v", name, p)
		}
	}

	bad := map[string]string{
		"ES256 key under the EdDSA kid": sign(jwt.SigningMethodES256, ecPriv, "ed1", "JWT", claims()),
		"our audience":                  sign(jwt.SigningMethodEdDSA, edPriv, "ed1", "JWT", func() jwt.MapClaims { c := claims(); c["aud"] = "ledgerfeed"; return c }()),
		"no exp":                        sign(jwt.SigningMethodEdDSA, edPriv, "ed1", "JWT", func() jwt.MapClaims { c := claims(); delete(c, "exp"); return c }()),
		"unknown client":                sign(jwt.SigningMethodEdDSA, edPriv, "ed1", "JWT", func() jwt.MapClaims { c := claims(); c["azp"] = "x"; return c }()),
		"no client claim":               sign(jwt.SigningMethodEdDSA, edPriv, "ed1", "JWT", func() jwt.MapClaims { c := claims(); delete(c, "azp"); return c }()),
		"HS256 with the x as secret":    sign(jwt.SigningMethodHS256, []byte(edJWK("", edPub).X), "ed1", "JWT", claims()),
		"id token typ":                  sign(jwt.SigningMethodEdDSA, edPriv, "ed1", "id+jwt", claims()),
		"scope claim without the scope": sign(jwt.SigningMethodEdDSA, edPriv, "ed1", "JWT", func() jwt.MapClaims { c := claims(); c["scope"] = "admin"; return c }()),
	}
	for name, raw := range bad {
		p, err := e.svc.Verify(ctx, raw)
		if name == "scope claim without the scope" {
			// Verified, but the token's scope is one the client lacks.
			if err != nil || len(p.Scopes) != 0 {
				t.Fatalf("%s: %+v, %v", name, p, err)
			}
			continue
		}
		if !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("%s: Verify = %+v, %v; want ErrUnauthenticated", name, p, err)
		}
	}

	// Our issuer with the external token's claims: its sub is no client of ours.
	own := e.signOwn(t, func() jwt.MapClaims { c := claims(); c["iss"] = "ledgerfeed"; c["aud"] = "ledgerfeed"; return c }(), nil)
	if _, err := e.svc.Verify(ctx, own); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("own token without sub = %v", err)
	}

	// The issuer adds a key: the file is re-read when a token names it.
	edPub2, edPriv2, _ := ed25519.GenerateKey(rand.Reader)
	raw2 := sign(jwt.SigningMethodEdDSA, edPriv2, "ed2", "JWT", claims())
	if _, err := e.svc.Verify(ctx, raw2); !errContains(err, "unknown key") {
		t.Fatalf("before the JWKS has ed2: %v", err)
	}
	writeJWKS(t, jwksPath, edJWK("ed1", edPub), edJWK("ed2", edPub2))
	if _, err := e.svc.Verify(ctx, raw2); err != nil {
		t.Fatalf("after the JWKS has ed2: %v", err)
	}
}

func TestParseJWKS(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := ecJWK("ec", &ec.PublicKey)
	offCurve := good
	offCurve.Y = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for name, tc := range map[string]struct {
		keys    []jwk
		want    int
		wantErr bool
	}{
		"EC":              {[]jwk{good}, 1, false},
		"point off curve": {[]jwk{offCurve}, 0, true},
		"encryption key":  {[]jwk{{Kty: "OKP", Crv: "Ed25519", X: good.X, Kid: "enc", Use: "enc"}}, 0, false},
		"no kid":          {[]jwk{{Kty: "EC", Crv: "P-256", X: good.X, Y: good.Y}}, 0, false},
		"kid with path":   {[]jwk{{Kty: "EC", Crv: "P-256", X: good.X, Y: good.Y, Kid: "../x"}}, 0, false},
		"alg mismatch":    {[]jwk{{Kty: "EC", Crv: "P-256", X: good.X, Y: good.Y, Kid: "a", Alg: "HS256"}}, 0, false},
		"oct key":         {[]jwk{{Kty: "oct", Kid: "h"}}, 0, false},
	} {
		b, _ := json.Marshal(jwkSet{Keys: tc.keys})
		keys, err := parseJWKS(b)
		if (err != nil) != tc.wantErr || len(keys) != tc.want {
			t.Errorf("%s: %d keys, %v", name, len(keys), err)
		}
	}
}

func TestService_Sign(t *testing.T) {
	e := newTestEnv(t, nil)
	e.mustClient(t, "acme", []string{ledger.ScopeRead})
	raw, err := e.svc.Sign("seal+jwt", map[string]any{"sub": "acme", "digest": "abc"})
	if err != nil {
		t.Fatal(err)
	}
	var set jwkSet
	json.Unmarshal(e.svc.JWKS(), &set)
	x, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].X)
	tok, err := jwt.NewParser(jwt.WithValidMethods([]string{"EdDSA"})).Parse(raw, func(*jwt.Token) (any, error) { return ed25519.PublicKey(x), nil })
	if err != nil || tok.Header["typ"] != "seal+jwt" || tok.Header["kid"] != set.Keys[0].Kid || tok.Claims.(jwt.MapClaims)["digest"] != "abc" {
		t.Fatalf("signed = %v, %v", tok, err)
	}
	// A signed document is no access token.
	if _, err := e.svc.Verify(context.Background(), raw); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("Verify(signed document) = %v", err)
	}
	if _, err := e.svc.Sign("at+jwt", nil); err == nil {
		t.Fatal("Sign made an access token")
	}
}
