package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAPIConfig_Credentials(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	os.WriteFile(creds, []byte("# made by a test\nclient_id=ops\nclient_secret= s3cret \nscopes=admin\n"), 0o600)
	dataDir := t.TempDir()
	os.WriteFile(filepath.Join(dataDir, "admin-credentials"), []byte("client_id=admin\nclient_secret=from-data\n"), 0o600)
	noSecret := filepath.Join(dir, "nosecret")
	os.WriteFile(noSecret, []byte("client_id=x\n"), 0o600)
	loose := filepath.Join(dir, "loose")
	os.WriteFile(loose, []byte("client_secret=x\n"), 0o644)

	for _, tc := range []struct {
		name       string
		env        map[string]string
		flags      []string
		data       string
		wantID     string
		wantSecret string
		wantErr    string
		wantWarn   string
	}{
		{name: "default file in the data dir", data: dataDir, wantID: "admin", wantSecret: "from-data"},
		{name: "no credentials", data: t.TempDir(), wantErr: "no credentials: set LEDGERFEED_CLIENT_SECRET"},
		{name: "env secret", env: map[string]string{"LEDGERFEED_CLIENT_SECRET": "e"}, data: dataDir, wantID: "admin", wantSecret: "e"},
		{name: "env id and secret", env: map[string]string{"LEDGERFEED_CLIENT_ID": "x", "LEDGERFEED_CLIENT_SECRET": "e"}, wantID: "x", wantSecret: "e"},
		{name: "credentials file gives the id", flags: []string{"--credentials", creds}, wantID: "ops", wantSecret: "s3cret"},
		{name: "--client-id wins over the file", flags: []string{"--credentials", creds, "--client-id", "me"}, wantID: "me", wantSecret: "s3cret"},
		{name: "env credentials", env: map[string]string{"LEDGERFEED_CREDENTIALS": creds}, wantID: "ops", wantSecret: "s3cret"},
		{name: "flag secret wins over env", env: map[string]string{"LEDGERFEED_CLIENT_SECRET": "e"}, flags: []string{"--client-secret", "f"}, wantID: "admin", wantSecret: "f"},
		{name: "flag file wins over env secret", env: map[string]string{"LEDGERFEED_CLIENT_SECRET": "e"}, flags: []string{"--credentials", creds}, wantID: "ops", wantSecret: "s3cret"},
		{name: "both flags", flags: []string{"--credentials", creds, "--client-secret", "f"}, wantErr: "exclude each other"},
		{name: "missing file", flags: []string{"--credentials", filepath.Join(dir, "nope")}, wantErr: "no such file"},
		{name: "file without secret", flags: []string{"--credentials", noSecret}, wantErr: "no client_secret= line"},
		{name: "loose mode warns", flags: []string{"--credentials", loose}, wantID: "admin", wantSecret: "x", wantWarn: "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newAPIConfig(func(k string) string { return tc.env[k] }, tc.data)
			fs := newFlagSet("x", "", "", io.Discard)
			c.bind(fs)
			if err := fs.Parse(tc.flags); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			id, secret, err := c.resolve(&stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || id != tc.wantID || secret != tc.wantSecret {
				t.Errorf("got %q %q %v, want %q %q", id, secret, err, tc.wantID, tc.wantSecret)
			}
			if !strings.Contains(stderr.String(), tc.wantWarn) || (tc.wantWarn == "" && stderr.Len() > 0) {
				t.Errorf("stderr = %q, want %q", stderr.String(), tc.wantWarn)
			}
		})
	}
}

// testAPI returns a client of f that records its waits instead of sleeping.
func testAPI(f *fakeAdmin, waits *[]time.Duration) *adminAPI {
	a := newAdminAPI(f.URL, "admin", "admin-secret")
	a.retry.sleep = func(ctx context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		return ctx.Err()
	}
	return a
}

func TestAdminAPI_Retries(t *testing.T) {
	ctx := context.Background()
	f := newFakeAdmin(t)
	f.addLedger("1", "UTC", "")
	var waits []time.Duration
	a := testAPI(f, &waits)

	// 429 is waited out (Retry-After), for any call.
	f.failNext("POST /admin/v1/clients", 429, 429)
	if _, err := a.createClient(ctx, apiClient{ClientID: "acme", Scopes: []string{"read"}}); err != nil {
		t.Fatalf("create after two 429: %v", err)
	}
	if len(waits) != 2 || waits[0] != 0 {
		t.Errorf("waits = %v, want two of Retry-After 0", waits)
	}

	// A 5xx is retried with backoff for an idempotent call…
	waits = nil
	f.failNext("GET /admin/v1/clients/acme", 503, 500, 502)
	if _, err := a.getClient(ctx, "acme"); err != nil {
		t.Fatalf("get after three 5xx: %v", err)
	}
	if len(waits) != 3 || !(waits[0] < waits[2]) || waits[2] > 2*time.Second {
		t.Errorf("waits = %v, want three growing", waits)
	}
	// …and ingest is idempotent…
	f.failNext("POST /admin/v1/ledgers/1/funds/entries", 503)
	if _, err := a.appendEntries(ctx, "1", "funds", []importEntry{{EntryID: "x", PSPReference: "p", Time: "2026-03-01T00:00:00Z", EntryType: "capture"}}); err != nil {
		t.Fatalf("append after a 503: %v", err)
	}
	// …but creating a client is not.
	f.failNext("POST /admin/v1/clients/acme/secret", 503)
	_, err := a.rotateSecret(ctx, "acme")
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Problem.ContextID != "ctx-503" {
		t.Fatalf("rotate after a 503: err = %v, want the 503", err)
	}
	if !strings.Contains(err.Error(), "503 Service Unavailable: injected failure (contextId ctx-503)") {
		t.Errorf("message = %q", err)
	}

	// Bounded: five failures are retried, the sixth is the answer.
	waits = nil
	f.failNext("GET /admin/v1/audit", 503, 503, 503, 503, 503, 503, 503)
	if _, err := a.listAudit(ctx, "", "", "", 10); !isStatus(err, 503) {
		t.Errorf("err = %v, want 503 after the retries", err)
	}
	if len(waits) != 5 {
		t.Errorf("%d retries, want 5", len(waits))
	}
	f.failNext("GET /admin/v1/audit") // clear
}

func TestAdminAPI_TokenCachedAndRenewed(t *testing.T) {
	ctx := context.Background()
	f := newFakeAdmin(t)
	var waits []time.Duration
	a := testAPI(f, &waits)
	now := time.Now()
	a.now = func() time.Time { return now }
	for range 3 {
		if _, err := a.listClients(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a.tokens != 1 {
		t.Errorf("%d tokens for three calls, want 1", a.tokens)
	}
	// expires_in is 300 s: renewed a minute before.
	now = now.Add(241 * time.Second)
	if _, err := a.listClients(ctx); err != nil {
		t.Fatal(err)
	}
	if a.tokens != 2 {
		t.Errorf("%d tokens after 241 s, want 2", a.tokens)
	}
	// A token the server no longer takes is replaced once.
	f.mu.Lock()
	clear(f.tokens)
	f.mu.Unlock()
	if _, err := a.listClients(ctx); err != nil {
		t.Fatalf("after the server forgot the token: %v", err)
	}
	if a.tokens != 3 {
		t.Errorf("%d tokens, want 3", a.tokens)
	}
}

func TestAdminAPI_Errors(t *testing.T) {
	ctx := context.Background()
	f := newFakeAdmin(t)
	var waits []time.Duration

	a := testAPI(f, &waits)
	a.secret = "wrong"
	_, err := a.listClients(ctx)
	if err == nil || !strings.Contains(err.Error(), `sign in as client "admin": 401 Unauthorized: invalid client credentials (contextId ctx-401) (check --client-id`) {
		t.Errorf("wrong secret: %v", err)
	}

	// Not problem+json: the start of the body.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream says no", http.StatusBadGateway)
	}))
	defer plain.Close()
	a = newAdminAPI(plain.URL, "admin", "s")
	a.retry.sleep = func(context.Context, time.Duration) error { return nil }
	_, err = a.listClients(ctx)
	if err == nil || !strings.Contains(err.Error(), "502 Bad Gateway: upstream says no") {
		t.Errorf("plain error: %v", err)
	}

	// Nobody listening: retried (nothing was sent), then a clear message.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	a = newAdminAPI("http://"+addr, "admin", "s")
	var n atomic.Int32
	a.retry.sleep = func(context.Context, time.Duration) error { n.Add(1); return nil }
	_, err = a.createClient(ctx, apiClient{ClientID: "x"})
	if err == nil || !strings.Contains(err.Error(), "cannot reach ledgerfeed at http://"+addr) {
		t.Errorf("no server: %v", err)
	}
	if n.Load() != 5 {
		t.Errorf("%d retries without a server, want 5", n.Load())
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"3": 3 * time.Second, "0": 0, "": time.Second, "soon": time.Second,
		now.Add(5 * time.Second).Format(http.TimeFormat): 5 * time.Second,
	} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}
