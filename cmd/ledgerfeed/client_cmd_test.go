package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClientCmd_FakeServer(t *testing.T) {
	f := newFakeAdmin(t)
	f.env(t)

	stdout, stderr, err := runCmd(t, "client", "create", "acme", "--grant", "302321:gdpr", "--grant", "302322")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, stderr)
	}
	want := "client_id=acme\nclient_secret=secret-of-acme\nscopes=read\ngrants=302321:gdpr,302322\n"
	if stdout != want {
		t.Errorf("create printed\n%s\nwant\n%s", stdout, want)
	}
	if !strings.Contains(stderr, "shown only this once") {
		t.Errorf("no warning to store the secret:\n%s", stderr)
	}
	// What create prints is a credentials file.
	cred := filepath.Join(t.TempDir(), "acme")
	os.WriteFile(cred, []byte(stdout), 0o600)
	if id, secret, err := readCredentials(cred, io.Discard); id != "acme" || secret != "secret-of-acme" || err != nil {
		t.Errorf("credentials from create's output: %q %q %v", id, secret, err)
	}

	if _, _, err := runCmd(t, "client", "create", "acme"); err == nil || !strings.Contains(err.Error(), "create client acme: 409 Conflict: client acme already exists (contextId ctx-409)") {
		t.Errorf("create twice: %v", err)
	}
	if _, _, err := runCmd(t, "client", "create", "ops", "--scope", "admin", "--scope", "read", "--json"); err != nil {
		t.Fatal(err)
	}

	// list follows the cursor (the fake answers pages of 2).
	stdout, _, err = runCmd(t, "client", "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "CLIENT") || !strings.HasPrefix(lines[1], "acme ") ||
		!strings.Contains(lines[1], "302321:gdpr,302322") || !strings.HasPrefix(lines[3], "ops ") || !strings.Contains(lines[3], "admin,read") {
		t.Errorf("list:\n%s", stdout)
	}
	stdout, _, _ = runCmd(t, "client", "list", "--json")
	var cs []apiClient
	if err := json.Unmarshal([]byte(stdout), &cs); err != nil || len(cs) != 3 {
		t.Errorf("list --json: %v %s", err, stdout)
	}

	// grant adds or changes a grant; revoke removes one.
	if _, _, err := runCmd(t, "client", "grant", "acme", "302322", "--gdpr"); err != nil {
		t.Fatal(err)
	}
	stdout, _, err = runCmd(t, "client", "grant", "acme", "302323")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "grants     302321:gdpr,302322:gdpr,302323") {
		t.Errorf("after grant:\n%s", stdout)
	}
	stdout, _, err = runCmd(t, "client", "revoke", "acme", "302321", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var c apiClient
	if err := json.Unmarshal([]byte(stdout), &c); err != nil || formatGrants(c.Grants, 0) != "302322:gdpr,302323" {
		t.Errorf("after revoke: %v %s", err, stdout)
	}
	if _, _, err := runCmd(t, "client", "revoke", "acme", "302321"); err == nil || !strings.Contains(err.Error(), "has no grant for ledger 302321") {
		t.Errorf("revoke twice: %v", err)
	}
	if _, _, err := runCmd(t, "client", "grant", "nobody", "1"); err == nil || !strings.Contains(err.Error(), "client nobody: 404") {
		t.Errorf("grant to an unknown client: %v", err)
	}

	stdout, stderr, err = runCmd(t, "client", "rotate", "acme")
	if err != nil || stdout != "client_id=acme\nclient_secret=secret-of-acme-rotated\n" || !strings.Contains(stderr, "old one no longer works") {
		t.Errorf("rotate: %v\n%s\n%s", err, stdout, stderr)
	}

	stdout, _, err = runCmd(t, "client", "show", "acme")
	if err != nil || !strings.Contains(stdout, "client_id  acme\n") || !strings.Contains(stdout, "scopes     read\n") {
		t.Errorf("show: %v\n%s", err, stdout)
	}

	if stdout, _, err := runCmd(t, "client", "delete", "acme"); err != nil || stdout != "client acme deleted; its tokens no longer work\n" {
		t.Errorf("delete: %v %q", err, stdout)
	}
	if _, _, err := runCmd(t, "client", "show", "acme"); !isStatus(err, 404) {
		t.Errorf("show after delete: %v", err)
	}
	// Deleting oneself needs --force.
	_, _, err = runCmd(t, "client", "delete", "admin")
	if code := exitCode(err, io.Discard); code != 2 || !strings.Contains(err.Error(), "use --force") {
		t.Errorf("delete self: exit %d, %v", code, err)
	}

	// Every change is in the fake's audit log, which audit prints.
	stdout, _, err = runCmd(t, "audit", "--action", "client.update")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(stdout, "client.update"); n != 3 {
		t.Errorf("audit --action client.update: %d events, want 3:\n%s", n, stdout)
	}
}

func TestClientCmd_Usage(t *testing.T) {
	f := newFakeAdmin(t)
	f.env(t)
	for _, tc := range []struct {
		args     []string
		wantCode int
		want     string // in stderr
	}{
		{[]string{"client"}, 2, "Commands:"},
		{[]string{"client", "frob"}, 2, `unknown command "frob"`},
		{[]string{"client", "create"}, 2, "missing ID"},
		{[]string{"client", "create", "a", "b"}, 2, `unexpected argument "b"`},
		{[]string{"client", "create", "a", "--scope", "root"}, 2, `--scope "root": want read or admin`},
		{[]string{"client", "create", "a", "--grant", "1:all"}, 2, `--grant "1:all"`},
		{[]string{"client", "grant", "a"}, 2, "missing LEDGER"},
		{[]string{"client", "revoke"}, 2, "missing ID"},
		{[]string{"client", "list", "x"}, 2, `unexpected argument "x"`},
		{[]string{"client", "rotate", "-h"}, 0, "-client-secret"},
		{[]string{"client", "create", "a", "--client-secret", "x", "--credentials", "y"}, 2, "exclude each other"},
	} {
		_, stderr, err := runCmd(t, tc.args...)
		if code := exitCode(err, io.Discard); code != tc.wantCode || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d (%v), want %d; stderr lacks %q:\n%s", tc.args, code, err, tc.wantCode, tc.want, stderr)
		}
	}
	// help client is client -h.
	stdout, _, err := runCmd(t, "help", "client")
	if err != nil || !strings.Contains(stdout, "rotate") {
		t.Errorf("help client: %v\n%s", err, stdout)
	}
}

func TestAuditCmd_FakeServer(t *testing.T) {
	f := newFakeAdmin(t)
	f.env(t)
	for _, id := range []string{"a", "b", "c"} {
		if _, _, err := runCmd(t, "client", "create", id); err != nil {
			t.Fatal(err)
		}
	}
	// Pages of 2 are followed to the end.
	stdout, stderr, err := runCmd(t, "audit", "--page-size", "2", "--action", "client.create")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME ") || !strings.Contains(lines[3], "clients/c") {
		t.Errorf("audit:\n%s", stdout)
	}
	if !strings.Contains(stderr, "ledgerfeed audit --cursor a") {
		t.Errorf("no cursor hint:\n%s", stderr)
	}
	stdout, _, err = runCmd(t, "audit", "--json", "--client-id-filter", "admin", "--action", "token.issue")
	if err != nil {
		t.Fatal(err)
	}
	var e auditEvent
	first, _, _ := strings.Cut(stdout, "\n")
	if err := json.Unmarshal([]byte(first), &e); err != nil || e.Action != "token.issue" || e.ClientID != "admin" || e.Status != 200 {
		t.Errorf("audit --json: %v %s", err, stdout)
	}
	if _, _, err := runCmd(t, "audit", "--page-size", "0"); exitCode(err, io.Discard) != 2 {
		t.Errorf("--page-size 0: %v", err)
	}
}

func TestAuditCmd_Follow(t *testing.T) {
	f := newFakeAdmin(t)
	f.env(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"audit", "--follow", "--interval", "10ms", "--action", "client.create", "--json"}, out, io.Discard)
	}()
	for _, id := range []string{"first", "second"} {
		if _, _, err := runCmd(t, "client", "create", id); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "clients/"+id) {
			if time.Now().After(deadline) {
				t.Fatalf("audit --follow did not print the creation of %s:\n%s", id, out)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("audit --follow ended with %v, want nil when interrupted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("audit --follow did not stop")
	}
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Errorf("%d events printed, want 2:\n%s", n, out)
	}
}
