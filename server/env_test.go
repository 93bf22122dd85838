package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// apiEnv is a served Server with auth on 127.0.0.1 (free ports), talked to
// with a real HTTP client and a real gRPC connection.
type apiEnv struct {
	t     *testing.T
	dir   string
	store *ledger.Store
	auth  *auth.Service
	srv   *Server
	base  string // http://host:port
	conn  *grpc.ClientConn
	admin v1.AdminServiceClient
	rep   v1.ReportServiceClient

	// offset shifts auth's clock (token times, expiry, rate buckets).
	offset atomic.Int64

	// The external issuer the env trusts: tokens signed with extKey and
	// iss extIssuer name a client of the store by sub.
	extKey ed25519.PrivateKey
}

const (
	testAdminSecret = "test-admin-secret-0123456789"
	extIssuer       = "https://idp.example.test"
	extKid          = "ext-key-1"
)

// writeExtJWKS makes the external issuer's key (e.extKey) and writes its
// JWKS file in the data directory; it returns the file's path.
func (e *apiEnv) writeExtJWKS() string {
	e.t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	e.extKey = priv
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]string{
		"kty": "OKP", "crv": "Ed25519", "kid": extKid, "use": "sig", "alg": "EdDSA",
		"x": base64.RawURLEncoding.EncodeToString(pub),
	}}})
	jwksFile := filepath.Join(e.dir, "ext-jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return jwksFile
}

// newAPIEnv starts a server. cfg tweaks auth's configuration.
func newAPIEnv(t *testing.T, cfg func(*auth.Config), limits Limits) *apiEnv {
	t.Helper()
	e := &apiEnv{t: t, dir: t.TempDir()}
	st, err := ledger.Open(e.dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	t.Cleanup(func() { st.Close() })

	jwksFile := e.writeExtJWKS()
	ac := auth.Config{
		DataDir:            e.dir,
		ExternalIssuers:    []auth.ExternalIssuer{{Issuer: extIssuer, JWKSFile: jwksFile}},
		TokenRatePerMinute: -1, // no limit unless a test sets one
		RatePerSecond:      -1,
		Now:                func() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) },
	}
	if cfg != nil {
		cfg(&ac)
	}
	a, err := auth.New(st, ac)
	if err != nil {
		t.Fatal(err)
	}
	e.auth = a
	t.Cleanup(func() { a.Close() })
	if _, _, err := a.Bootstrap(context.Background(), testAdminSecret); err != nil {
		t.Fatal(err)
	}

	srv, err := New(Config{Store: st, Auth: a, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.base = "http://" + srv.HTTPAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})

	conn, err := grpc.NewClient(srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e.conn = conn
	e.admin = v1.NewAdminServiceClient(conn)
	e.rep = v1.NewReportServiceClient(conn)
	return e
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// resp is an HTTP answer read whole.
type resp struct {
	code int
	hdr  http.Header
	body []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v\n%s", r.code, err, r.body)
	}
	return m
}

// do sends one HTTP request; token "" sends no Authorization.
func (e *apiEnv) do(method, path, token string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer hr.Body.Close()
	b, err := io.ReadAll(hr.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	checkVippsWireIfReport(e.t, req, hr, b)
	checkOwnWire(e.t, req, hr, b)
	return resp{code: hr.StatusCode, hdr: hr.Header, body: b}
}

// token gets a token by the OAuth endpoint with HTTP Basic.
func (e *apiEnv) token(id, secret string) string {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.base+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer hr.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	b, _ := io.ReadAll(hr.Body)
	if hr.StatusCode != 200 || json.Unmarshal(b, &out) != nil || out.AccessToken == "" {
		e.t.Fatalf("token for %s: %d %s", id, hr.StatusCode, b)
	}
	return out.AccessToken
}

func (e *apiEnv) adminToken() string { return e.token(auth.AdminClientID, testAdminSecret) }

// createClient makes a client through the admin API and returns its secret.
func (e *apiEnv) createClient(adminTok, id string, scopes []string, grants ...map[string]any) string {
	e.t.Helper()
	if grants == nil {
		grants = []map[string]any{}
	}
	r := e.do("POST", "/admin/v1/clients", adminTok, map[string]any{"clientId": id, "scopes": scopes, "grants": grants})
	if r.code != http.StatusCreated {
		e.t.Fatalf("create client %s: %d %s", id, r.code, r.body)
	}
	s, _ := r.json(e.t)["clientSecret"].(string)
	return s
}

// bearer returns a context whose gRPC calls carry the token.
func bearer(tok string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
}

// extToken signs claims with the external issuer's key.
func (e *apiEnv) extToken(claims jwt.MapClaims) string {
	e.t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = extKid
	s, err := tok.SignedString(e.extKey)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// putLedger creates a ledger in UTC with currency NOK.
func (e *apiEnv) putLedger(tok, id string) {
	e.t.Helper()
	r := e.do("PUT", "/admin/v1/ledgers/"+id, tok, map[string]any{"currency": "NOK", "timeZone": "UTC"})
	if r.code != http.StatusCreated && r.code != http.StatusOK {
		e.t.Fatalf("put ledger %s: %d %s", id, r.code, r.body)
	}
}

// withoutContextID drops the contextId member of a JSON body.
func withoutContextID(t *testing.T, b []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	delete(m, "contextId")
	out, _ := json.Marshal(m)
	return string(out)
}
