package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func (w *addrWatcher) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// saToken gets a token with the Vipps endpoint; it returns the status and
// the token.
func saToken(t *testing.T, addr, id, secret string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+"/accesstoken/get", nil)
	req.Header.Set("client_id", id)
	req.Header.Set("client_secret", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tr)
	return resp.StatusCode, tr.AccessToken
}

func saDo(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// First start without --admin-secret: the admin client is made with a
// random secret, printed once and kept in DATA/admin-credentials (0600).
func TestServe_Bootstrap_RandomAdminSecret(t *testing.T) {
	dir := t.TempDir()
	s, out := serveWithStdout(t, dir)
	m := regexp.MustCompile(`admin client created: client_id=admin client_secret=(\S+)`).FindStringSubmatch(out.text())
	if m == nil {
		t.Fatalf("stdout does not show the admin secret:\n%s", out.text())
	}
	secret := m[1]
	path := filepath.Join(dir, "admin-credentials")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-credentials: %v %v", fi, err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "client_id=admin\n") || !strings.Contains(string(b), "client_secret="+secret+"\n") {
		t.Errorf("admin-credentials holds %q", b)
	}
	if !strings.Contains(out.text(), path) {
		t.Errorf("stdout does not name %s:\n%s", path, out.text())
	}
	code, tok := saToken(t, s.httpAddr, "admin", secret)
	if code != 200 {
		t.Fatalf("token with the printed secret: %d", code)
	}
	if code, body := saDo(t, "PUT", "http://"+s.httpAddr+"/admin/v1/ledgers/302321", tok, `{"currency":"NOK","timeZone":"Europe/Oslo"}`); code != 201 {
		t.Fatalf("put ledger: %d %s", code, body)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}

	// The next start makes nothing and prints no secret.
	s, out = serveWithStdout(t, dir)
	if strings.Contains(out.text(), "client_secret") || strings.Contains(out.text(), "admin client created") {
		t.Errorf("second start printed:\n%s", out.text())
	}
	if code, _ := saToken(t, s.httpAddr, "admin", secret); code != 200 {
		t.Errorf("token after restart: %d", code)
	}
}

// --admin-secret, token TTL and the token rate limit from flags; an
// external issuer's JWKS file from the environment.
func TestServe_AuthFlags(t *testing.T) {
	dir := t.TempDir()
	jwks := filepath.Join(t.TempDir(), "idp.json")
	if err := os.WriteFile(jwks, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LEDGERFEED_JWKS_FILES", "https://idp.example.test="+jwks)
	s, out := serveWithStdout(t, dir, "--admin-secret", "flag-secret-123", "--token-ttl", "10m", "--token-rate-limit", "1", "--token-rate-burst", "2")
	if strings.Contains(out.text(), "flag-secret-123") {
		t.Errorf("stdout shows the secret given by flag:\n%s", out.text())
	}
	if _, err := os.Stat(filepath.Join(dir, "admin-credentials")); err == nil {
		t.Errorf("admin-credentials written for a secret given by flag")
	}
	req, _ := http.NewRequest("POST", "http://"+s.httpAddr+"/accesstoken/get", nil)
	req.Header.Set("client_id", "admin")
	req.Header.Set("client_secret", "flag-secret-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if resp.StatusCode != 200 || v["expires_in"] != 600.0 {
		t.Errorf("token: %d %v, want expires_in 600", resp.StatusCode, v)
	}
	// Burst 2: the first was taken above; the third within the second is 429.
	saToken(t, s.httpAddr, "admin", "wrong")
	if code, _ := saToken(t, s.httpAddr, "admin", "wrong"); code != http.StatusTooManyRequests {
		t.Errorf("third token request at once: %d, want 429", code)
	}
}

func TestServe_AuthFlags_Bad(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--jwks-file", "no-equals-sign"}, "ISSUER=FILE"},
		{[]string{"serve", "--token-ttl", "soon"}, "token-ttl"},
		{[]string{"serve", "--rate-burst", "-1"}, "must not be negative"},
		{[]string{"serve", "--key-poll", "1m"}, "--key-poll must be 0 (2s) or up to 15s"},
		{[]string{"serve", "--nodes", "-2"}, "--nodes must be 0 (one node) to 1000"},
		{[]string{"serve", "--nodes", "two"}, "invalid value"},
	} {
		_, stderr, err := runCmd(t, tc.args...)
		if code := exitCode(err, io.Discard); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	// A JWKS file that is not there fails the start.
	_, _, err := runCmd(t, "serve", "--data", t.TempDir(), "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
		"--jwks-file", "https://idp.example.test="+filepath.Join(t.TempDir(), "missing.json"))
	if err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing JWKS file: %v", err)
	}
}

func TestConfig_AuthEnv(t *testing.T) {
	env := map[string]string{
		"LEDGERFEED_ISSUER":           "https://ledgerfeed.example",
		"LEDGERFEED_AUDIENCE":         "partners",
		"LEDGERFEED_TOKEN_TTL":        "15m",
		"LEDGERFEED_JWKS_FILES":       "https://a.example=/a.json, https://b.example=/b.json",
		"LEDGERFEED_RATE_LIMIT":       "12.5",
		"LEDGERFEED_RATE_BURST":       "30",
		"LEDGERFEED_TOKEN_RATE_LIMIT": "-1",
		"LEDGERFEED_TOKEN_RATE_BURST": "7",
		"LEDGERFEED_MAX_BODY_BYTES":   "1048576",
	}
	cfg := defaultConfig()
	if err := cfg.loadEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != "https://ledgerfeed.example" || cfg.Audience != "partners" || cfg.TokenTTL != 15*time.Minute ||
		cfg.RateLimit != 12.5 || cfg.RateBurst != 30 || cfg.TokenRateLimit != -1 || cfg.TokenRateBurst != 7 || cfg.MaxBodyBytes != 1<<20 {
		t.Errorf("after env: %+v", cfg)
	}
	ext, err := cfg.externalIssuers()
	if err != nil || len(ext) != 2 || ext[1].Issuer != "https://b.example" || ext[1].JWKSFile != "/b.json" {
		t.Errorf("external issuers %+v %v", ext, err)
	}
	// A --jwks-file flag replaces the environment's list; more flags add.
	fs := newFlagSet("serve", "", "", io.Discard)
	cfg.serveFlags(fs)
	if err := fs.Parse([]string{"--jwks-file", "https://c.example=/c.json", "--jwks-file", "https://d.example=/d.json"}); err != nil {
		t.Fatal(err)
	}
	if ext, _ := cfg.externalIssuers(); len(ext) != 2 || ext[0].Issuer != "https://c.example" || ext[1].Issuer != "https://d.example" {
		t.Errorf("after flags: %+v", ext)
	}
	for k, bad := range map[string]string{"LEDGERFEED_TOKEN_TTL": "1 hour", "LEDGERFEED_RATE_LIMIT": "fast", "LEDGERFEED_JWKS_FILES": "nofile"} {
		c := defaultConfig()
		if err := c.loadEnv(func(name string) string {
			if name == k {
				return bad
			}
			return ""
		}); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: %v", k, bad, err)
		}
	}
}
