package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// End-to-end: the client, import, audit and keys commands against a real
// "ledgerfeed serve" on loopback.

// e2eLedgers puts two empty ledgers into a new store in dir.
func e2eLedgers(t *testing.T, dir string) {
	t.Helper()
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []ledger.Ledger{
		{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"},
		{ID: "302322", Currency: "DKK", TimeZone: "Europe/Copenhagen", Cutoff: "04:00"},
	} {
		l.PayoutBankAccount = ledger.Account{Scheme: "BBAN:NO", ID: "12345678903"}
		l.Owner = ledger.Account{Scheme: "business:NO:ORG", ID: "987654321"}
		if _, _, err := st.PutLedger(context.Background(), l); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// postToken asks the server for a token; it returns the status and the
// token.
func postToken(t *testing.T, addr, id, secret string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
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

// getWith GETs path with a bearer token and returns the status.
func getWith(t *testing.T, addr, token, path string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func kidOfToken(t *testing.T, tok string) string {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	json.Unmarshal(b, &hdr)
	return hdr.Kid
}

var secretRE = regexp.MustCompile(`(?m)^client_secret=(\S+)$`)

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := runCmd(t, args...)
	if err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

func TestCLI_AgainstServer(t *testing.T) {
	dir := t.TempDir()
	e2eLedgers(t, dir)
	// No --admin-secret: serve makes one and writes DATA/admin-credentials,
	// which the commands read by default. The token endpoint's rate limit is
	// off: every command signs in afresh.
	s := startServe(t, dir, "--token-rate-limit=-1")
	t.Setenv("LEDGERFEED_SERVER", "http://"+s.httpAddr)
	t.Setenv("LEDGERFEED_DATA", dir)
	t.Setenv("LEDGERFEED_CLIENT_ID", "")
	t.Setenv("LEDGERFEED_CLIENT_SECRET", "")
	t.Setenv("LEDGERFEED_CREDENTIALS", "")
	_, adminSecret, err := readCredentials(filepath.Join(dir, "admin-credentials"), io.Discard)
	if err != nil {
		t.Fatalf("serve wrote no admin credentials: %v", err)
	}

	// Clients.
	if out := mustRun(t, "client", "list"); !strings.Contains(out, "\nadmin ") {
		t.Errorf("client list:\n%s", out)
	}
	out := mustRun(t, "client", "create", "acme", "--grant", "302321:gdpr")
	m := secretRE.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "grants=302321:gdpr") {
		t.Fatalf("client create printed:\n%s", out)
	}
	secret1 := m[1]
	if code, _ := postToken(t, s.httpAddr, "acme", secret1); code != 200 {
		t.Errorf("token with the new client's secret: %d", code)
	}
	_, _, err = runCmd(t, "client", "create", "acme")
	if exitCode(err, io.Discard) != 1 || !isStatus(err, 409) || !strings.Contains(err.Error(), "contextId") {
		t.Errorf("create twice: %v", err)
	}
	if out := mustRun(t, "client", "grant", "acme", "302322"); !strings.Contains(out, "302321:gdpr,302322") {
		t.Errorf("client grant:\n%s", out)
	}
	if out := mustRun(t, "client", "revoke", "acme", "302321"); !strings.Contains(out, "grants     302322\n") {
		t.Errorf("client revoke:\n%s", out)
	}
	var cs []apiClient
	if err := json.Unmarshal([]byte(mustRun(t, "client", "list", "--json")), &cs); err != nil || len(cs) != 2 ||
		cs[0].ClientID != "acme" || formatGrants(cs[0].Grants, 0) != "302322" || cs[1].ClientID != "admin" {
		t.Errorf("client list --json: %v %+v", err, cs)
	}
	out = mustRun(t, "client", "rotate", "acme")
	m = secretRE.FindStringSubmatch(out)
	if m == nil || m[1] == secret1 {
		t.Fatalf("client rotate printed:\n%s", out)
	}
	if code, _ := postToken(t, s.httpAddr, "acme", secret1); code != 401 {
		t.Errorf("token with the old secret after rotate: %d, want 401", code)
	}
	if code, _ := postToken(t, s.httpAddr, "acme", m[1]); code != 200 {
		t.Errorf("token with the new secret: %d", code)
	}
	// An explicit credentials file, and a read client refused by the admin API.
	cred := writeFile(t, "acme.credentials", out)
	_, _, err = runCmd(t, "client", "list", "--credentials", cred)
	if !isStatus(err, 403) || exitCode(err, io.Discard) != 1 {
		t.Errorf("client list as a read client: %v", err)
	}

	// Import: JSON lines routed to both ledgers and topics, then CSV.
	base := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Hour)
	var jl strings.Builder
	for i := range 300 {
		topic, typ, amount := "funds", "capture", 1000+i
		if i%3 == 1 {
			topic, typ, amount = "fees", "capture-fee", -10
		}
		gdpr := ""
		if i%10 == 0 {
			gdpr = `,"name":"Ola Nordmann","phoneNumber":"+4791234567","message":"takk"`
		}
		fmt.Fprintf(&jl, `{"ledgerId":"%s","topic":"%s","entryId":"j%d","pspReference":"psp%d","time":"%s","entryType":"%s","reference":"order-%d","amount":%d,"recipientHandle":"NO:123456"%s}`+"\n",
			[]string{"302321", "302322"}[i%2], topic, i, i, base.Add(time.Duration(i)*7*time.Minute).Format(time.RFC3339), typ, i, amount, gdpr)
	}
	jsonl := writeFile(t, "entries.jsonl", jl.String())
	if out := mustRun(t, "import", jsonl, "--batch", "40"); !strings.Contains(out, "300 entries read, 300 appended, 0 duplicates") {
		t.Errorf("import jsonl: %s", out)
	}
	var cv strings.Builder
	cv.WriteString("entryId,pspReference,time,entryType,reference,amount,recipientHandle\n")
	for i := range 20 {
		handle := "NO:123456"
		if i == 19 {
			handle = ""
		}
		fmt.Fprintf(&cv, "c%d,psp-c%d,%s,service-fee,inv-%d,-%d,%s\n", i, i, base.Add(time.Duration(i)*time.Hour).Format(time.RFC3339), i, 5+i, handle)
	}
	csvFile := writeFile(t, "fees.csv", cv.String())
	if out := mustRun(t, "import", csvFile, "--ledger", "302322", "--topic", "fees"); !strings.Contains(out, "20 entries read, 20 appended, 0 duplicates") {
		t.Errorf("import csv: %s", out)
	}
	// Again: nothing is posted twice.
	if out := mustRun(t, "import", jsonl); !strings.Contains(out, "300 entries read, 0 appended, 300 duplicates") {
		t.Errorf("import jsonl again: %s", out)
	}
	if out := mustRun(t, "import", csvFile, "--ledger", "302322", "--topic", "fees", "--batch", "7"); !strings.Contains(out, "20 entries read, 0 appended, 20 duplicates") {
		t.Errorf("import csv again: %s", out)
	}
	// A malformed line: its number and field, nothing of its batch posted.
	bad := writeFile(t, "bad.jsonl", strings.Replace(jl.String(), `"amount":1003,`, `"amount":1003.5,`, 1)+
		`{"ledgerId":"302321","topic":"funds","entryId":"new1","pspReference":"p","time":"`+base.Format(time.RFC3339)+`","entryType":"capture","reference":"","amount":1,"recipientHandle":null}`+"\n")
	_, _, err = runCmd(t, "import", bad)
	if err == nil || !strings.Contains(err.Error(), "line 4: amount:") {
		t.Errorf("import with a bad line: %v", err)
	}
	// The server refuses a changed entry; the message names the file line.
	changed := writeFile(t, "changed.jsonl", strings.Replace(jl.String(), `"amount":1006,`, `"amount":1007,`, 1))
	_, _, err = runCmd(t, "import", changed)
	if !isStatus(err, 409) || !strings.Contains(err.Error(), "line 7:") {
		t.Errorf("import of a changed entry: %v", err)
	}

	// Audit: the changes above, by the admin client.
	auditOut := mustRun(t, "audit", "--client-id-filter", "admin", "--json")
	for _, action := range []string{"client.create", "client.update", "client.rotate-secret", "entries.append", "token.issue"} {
		if !strings.Contains(auditOut, `"action":"`+action+`"`) {
			t.Errorf("audit lacks %s", action)
		}
	}
	if out := mustRun(t, "audit", "--action", "client.create"); strings.Count(out, "client.create") != 2 { // acme, then the refused second one
		t.Errorf("audit --action client.create:\n%s", out)
	}

	// Keys: a new key signs new tokens; tokens of the old key still work.
	_, old := postToken(t, s.httpAddr, "admin", adminSecret)
	out = mustRun(t, "keys", "rotate", "--data", dir)
	f := strings.Fields(out)
	if len(f) < 4 || !strings.HasPrefix(out, "new signing key ") {
		t.Fatalf("keys rotate printed %q", out)
	}
	kid := f[3]
	if kid == kidOfToken(t, old) {
		t.Fatalf("keys rotate printed the old kid %s", kid)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, tok := postToken(t, s.httpAddr, "admin", adminSecret)
		if kidOfToken(t, tok) == kid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new tokens not signed with %s after 15 s", kid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := getWith(t, s.httpAddr, old, "/admin/v1/clients"); code != 200 {
		t.Errorf("a token of the old key after rotation: %d, want 200", code)
	}

	// Delete: the client's secret no longer gets a token.
	mustRun(t, "client", "delete", "acme")
	if code, _ := postToken(t, s.httpAddr, "acme", m[1]); code != 401 {
		t.Errorf("token of a deleted client: %d", code)
	}
	if out := mustRun(t, "audit", "--action", "client.delete"); !strings.Contains(out, "clients/acme") {
		t.Errorf("audit lacks the deletion:\n%s", out)
	}

	// The store holds every entry once.
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := map[string]uint64{"302321/funds": 100, "302321/fees": 50, "302322/funds": 100, "302322/fees": 70}
	for k, n := range want {
		l, topic, _ := strings.Cut(k, "/")
		h, err := st.Head(l, ledger.Topic(topic))
		if err != nil || h.Sequence != n {
			t.Errorf("%s: head %d (%v), want %d entries", k, h.Sequence, err, n)
		}
	}
	es, err := st.Entries("302322", ledger.TopicFees, 51, 100, ledger.ReadOptions{GDPR: true})
	if err != nil || len(es) != 20 {
		t.Fatalf("csv entries: %d, %v", len(es), err)
	}
	if es[0].EntryID != "c0" || es[0].Amount != -5 || *es[0].RecipientHandle != "NO:123456" || es[19].RecipientHandle != nil {
		t.Errorf("csv entries: %+v … %+v", es[0], es[19])
	}
	es, _ = st.Entries("302321", ledger.TopicFunds, 1, 1, ledger.ReadOptions{GDPR: true})
	if len(es) != 1 || es[0].EntryID != "j0" || es[0].GDPR == nil || es[0].GDPR.Name != "Ola Nordmann" || es[0].GDPR.MaskedPhoneNo != "xxxx 4567" {
		t.Errorf("first entry: %+v (GDPR %+v)", es, es[0].GDPR)
	}
}

// With the token endpoint limited to one token in five seconds, a second
// command right after the first meets 429 and gets through by waiting out
// Retry-After. (Slow enough that a command slowed by -race on a busy
// machine still comes back before the bucket refills.)
func TestCLI_ObeysRetryAfter(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir, "--admin-secret", "e2e-admin-secret", "--token-rate-limit=12", "--token-rate-burst=1")
	t.Setenv("LEDGERFEED_SERVER", "http://"+s.httpAddr)
	t.Setenv("LEDGERFEED_CLIENT_ID", "")
	t.Setenv("LEDGERFEED_CLIENT_SECRET", "e2e-admin-secret")
	t.Setenv("LEDGERFEED_CREDENTIALS", "")
	start := time.Now()
	var waited bool
	for i := range 2 {
		_, stderr, err := runCmd(t, "client", "create", fmt.Sprintf("c%d", i))
		if err != nil {
			t.Fatalf("create c%d: %v\n%s", i, err, stderr)
		}
		waited = waited || strings.Contains(stderr, "rate limited (429), retrying in")
	}
	if !waited {
		t.Errorf("no command waited for the token endpoint's Retry-After")
	}
	if took := time.Since(start); took < 4*time.Second {
		t.Errorf("two sign-ins at one in five seconds took %v", took)
	}
}

func TestKeysCmd(t *testing.T) {
	if _, _, err := runCmd(t, "keys", "rotate", "--data", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no ledgerfeed data in") {
		t.Errorf("keys rotate in an empty dir: %v", err)
	}
	dir := newStore(t)
	out1 := mustRun(t, "keys", "rotate", "--data", dir)
	out2 := mustRun(t, "keys", "rotate", "--data", dir, "--json")
	var k struct{ Kid string }
	if err := json.Unmarshal([]byte(out2), &k); err != nil || k.Kid == "" || strings.Contains(out1, k.Kid) || !strings.HasPrefix(out1, "new signing key ") {
		t.Errorf("keys rotate: %q then %q", out1, out2)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"keys"}, 2, "Usage: ledgerfeed keys rotate"},
		{[]string{"keys", "list"}, 2, `unknown command "list"`},
		{[]string{"keys", "rotate", "x"}, 2, `unexpected argument "x"`},
		{[]string{"keys", "rotate", "-h"}, 0, "-data"},
	} {
		_, stderr, err := runCmd(t, tc.args...)
		if code := exitCode(err, io.Discard); code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d (%v), stderr lacks %q:\n%s", tc.args, code, err, tc.want, stderr)
		}
	}
}
