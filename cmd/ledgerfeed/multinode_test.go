package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/feed"
	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
)

// startNodes runs n serve commands at once on one PostgreSQL store, each
// with its own data directory and ports, and returns once all listen.
func startNodes(t *testing.T, n int, dsn string, extra ...string) []*serving {
	t.Helper()
	nodes := make([]*serving, n)
	outs := make([]*addrWatcher, n)
	for i := range nodes {
		ctx, cancel := context.WithCancel(context.Background())
		s := &serving{dataDir: t.TempDir(), stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
		out := newAddrWatcher()
		args := append([]string{"serve", "--data", s.dataDir, "--store", dsn, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}, extra...)
		go func() { s.done <- run(ctx, args, out, s.stderr) }()
		nodes[i], outs[i] = s, out
		t.Cleanup(func() {
			select {
			case <-s.done:
			default:
				s.stop(t)
			}
		})
	}
	for i, s := range nodes {
		select {
		case <-outs[i].ready:
			s.httpAddr, s.grpcAddr = outs[i].addrs()
		case err := <-s.done:
			t.Fatalf("node %d ended before listening: %v\nstderr:\n%s", i, err, s.stderr)
		case <-time.After(20 * time.Second):
			t.Fatalf("node %d did not listen within 20s\nstderr:\n%s", i, s.stderr)
		}
	}
	return nodes
}

// jwksKids returns the kids of a node's JWKS, in its order.
func jwksKids(t *testing.T, s *serving) []string {
	t.Helper()
	code, body := s.get(t, "/.well-known/jwks.json")
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &set) != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %d %s", code, body)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// feedPage GETs a feed page of ledger 302321 on a node.
func feedPage(t *testing.T, s *serving, token, query string) (int, page2) {
	t.Helper()
	code, body := saDo(t, "GET", "http://"+s.httpAddr+"/report/v2/ledgers/302321/funds/feed?"+query, token, "")
	var p page2
	if code == 200 {
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("feed page: %v\n%s", err, body)
		}
	}
	return code, p
}

type page2 struct {
	Items []struct {
		Reference string `json:"reference"`
		Amount    int64  `json:"amount"`
	} `json:"items"`
	Cursor string `json:"cursor"`
}

func (p page2) refs() []string {
	var out []string
	for _, it := range p.Items {
		out = append(out, it.Reference)
	}
	return out
}

// Two nodes on one PostgreSQL store are one service: a token or a cursor
// from one works on the other, a long poll on one sees an append through
// the other, both publish the same keys, and a rotation (keys rotate
// --store) reaches both.
func TestServe_TwoNodesSharePostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	const adminSecret = "two-node-admin-secret"
	// Started at once: both make a first signing key and a cursor key; one
	// of each must win on both.
	nodes := startNodes(t, 2, dsn, "--admin-secret", adminSecret, "--key-poll", "200ms", "--token-rate-limit=-1", "--rate-limit=-1")
	a, b := nodes[0], nodes[1]
	url := func(s *serving, path string) string { return "http://" + s.httpAddr + path }

	kidsA, kidsB := jwksKids(t, a), jwksKids(t, b)
	if len(kidsA) != 1 || !slices.Equal(kidsA, kidsB) {
		t.Fatalf("JWKS differ or hold more than the first key: A %v, B %v", kidsA, kidsB)
	}

	// Admin work on A; the partner's token from A reads on B.
	code, admin := saToken(t, a.httpAddr, "admin", adminSecret)
	if code != 200 {
		t.Fatalf("admin token on A: %d", code)
	}
	if code, body := saDo(t, "PUT", url(a, "/admin/v1/ledgers/302321"), admin, `{"currency":"NOK","timeZone":"Europe/Oslo"}`); code != 201 {
		t.Fatalf("put ledger on A: %d %s", code, body)
	}
	code, body := saDo(t, "POST", url(a, "/admin/v1/clients"), admin, `{"clientId":"acme","scopes":["read"],"grants":[{"ledgerId":"302321"}]}`)
	var cc struct {
		ClientSecret string `json:"clientSecret"`
	}
	if code != 200 && code != 201 || json.Unmarshal([]byte(body), &cc) != nil || cc.ClientSecret == "" {
		t.Fatalf("create client on A: %d %s", code, body)
	}
	code, partner := saToken(t, a.httpAddr, "acme", cc.ClientSecret)
	if code != 200 || kidOfToken(t, partner) != kidsA[0] {
		t.Fatalf("partner token on A: %d, kid %q, want %q", code, kidOfToken(t, partner), kidsA[0])
	}
	appendOn := func(s *serving, refs ...string) {
		t.Helper()
		var es []string
		for _, r := range refs {
			es = append(es, fmt.Sprintf(`{"entryId":"e-%s","pspReference":"p-%s","time":%q,"entryType":"capture","reference":%q,"amount":100}`,
				r, r, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano), r))
		}
		if code, body := saDo(t, "POST", url(s, "/admin/v1/ledgers/302321/funds/entries"), admin, `{"entries":[`+strings.Join(es, ",")+`]}`); code != 200 {
			t.Fatalf("append on %s: %d %s", s.httpAddr, code, body)
		}
	}
	appendOn(a, "r1", "r2", "r3")

	// A cursor from A continues on B, and B's answer is A's.
	code, p1 := feedPage(t, a, partner, "pageSize=2")
	if code != 200 || !slices.Equal(p1.refs(), []string{"r1", "r2"}) || p1.Cursor == "" {
		t.Fatalf("first page on A: %d %+v", code, p1)
	}
	code, p2 := feedPage(t, b, partner, "pageSize=2&cursor="+p1.Cursor)
	if code != 200 || !slices.Equal(p2.refs(), []string{"r3"}) || p2.Cursor == "" {
		t.Fatalf("A's cursor on B: %d %+v", code, p2)
	}
	if code, p2a := feedPage(t, a, partner, "pageSize=2&cursor="+p1.Cursor); code != 200 || p2a.Cursor != p2.Cursor {
		t.Fatalf("A's answer to its own cursor: %d %+v, B's %+v", code, p2a, p2)
	}

	// A long poll on B wakes for an append through A.
	type answer struct {
		code int
		p    page2
	}
	polled := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("GET", url(b, "/report/v2/ledgers/302321/funds/feed?wait=15s&cursor="+p2.Cursor), nil)
		req.Header.Set("Authorization", "Bearer "+partner)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			polled <- answer{code: -1}
			return
		}
		defer resp.Body.Close()
		var p page2
		json.NewDecoder(resp.Body).Decode(&p)
		polled <- answer{resp.StatusCode, p}
	}()
	time.Sleep(300 * time.Millisecond) // let the poll start waiting; it passes either way
	appendOn(a, "r4")
	select {
	case ans := <-polled:
		if ans.code != 200 || !slices.Equal(ans.p.refs(), []string{"r4"}) {
			t.Fatalf("long poll on B: %d %+v, want r4", ans.code, ans.p)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("long poll on B did not answer")
	}

	// A rotation in the store reaches both nodes within their poll.
	oldKid := kidsA[0]
	stdout, stderr, err := runCmd(t, "keys", "rotate", "--store", dsn, "--json")
	if err != nil {
		t.Fatalf("keys rotate --store: %v\n%s", err, stderr)
	}
	var rotated struct {
		Kid string `json:"kid"`
	}
	if json.Unmarshal([]byte(stdout), &rotated) != nil || rotated.Kid == "" || rotated.Kid == oldKid {
		t.Fatalf("keys rotate printed %q", stdout)
	}
	for _, s := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, tok := saToken(t, s.httpAddr, "acme", cc.ClientSecret)
			if code != 200 {
				t.Fatalf("token on %s after rotate: %d", s.httpAddr, code)
			}
			if kidOfToken(t, tok) == rotated.Kid {
				// Verified by the other node too.
				other := a
				if s == a {
					other = b
				}
				if code, _ := feedPage(t, other, tok, "pageSize=1"); code != 200 {
					t.Fatalf("token of %s with the new key on %s: %d", s.httpAddr, other.httpAddr, code)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still signs with %s 10s after the rotation to %s", s.httpAddr, kidOfToken(t, tok), rotated.Kid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	want := []string{rotated.Kid, oldKid}
	if kidsA, kidsB := jwksKids(t, a), jwksKids(t, b); !slices.Equal(kidsA, want) || !slices.Equal(kidsB, want) {
		t.Fatalf("JWKS after rotate: A %v, B %v, want %v", kidsA, kidsB, want)
	}
	// A token of the old key stays good on both (its grace).
	for _, s := range nodes {
		if code, _ := feedPage(t, s, partner, "pageSize=1"); code != 200 {
			t.Errorf("old key's token on %s after rotate: %d", s.httpAddr, code)
		}
	}
	// The keys are the store's: none in the nodes' directories.
	for _, s := range nodes {
		for _, p := range []string{auth.KeysDir(s.dataDir), filepath.Join(s.dataDir, feed.KeyFile)} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists on a PostgreSQL node (%v)", p, err)
			}
		}
	}
}

// keys rotate --store on a database no server has started on refuses,
// rather than make a key nobody uses.
func TestKeysRotate_PostgresWithoutKeys(t *testing.T) {
	dsn := pgtest.Start(t)
	_, _, err := runCmd(t, "keys", "rotate", "--store", dsn)
	if err == nil || !strings.Contains(err.Error(), "no signing keys") {
		t.Fatalf("err = %v, want no signing keys", err)
	}
}

// A report file requested over REST on node A is made there, stored in the
// database, and downloads over REST from node B byte for byte (whole and
// by Range) after A has stopped.
func TestServe_ReportFileMadeOnOneNodeDownloadsFromAnother(t *testing.T) {
	dsn := pgtest.Start(t)
	const adminSecret = "report-nodes-admin-secret"
	flags := []string{"--admin-secret", adminSecret, "--token-rate-limit=-1", "--rate-limit=-1"}
	a := startNodes(t, 1, dsn, flags...)[0]
	url := func(s *serving, path string) string { return "http://" + s.httpAddr + path }
	_, admin := saToken(t, a.httpAddr, "admin", adminSecret)
	if code, body := saDo(t, "PUT", url(a, "/admin/v1/ledgers/302321"), admin, `{"currency":"NOK","timeZone":"Europe/Oslo"}`); code != 201 {
		t.Fatalf("put ledger: %d %s", code, body)
	}
	code, body := saDo(t, "POST", url(a, "/admin/v1/clients"), admin, `{"clientId":"acme","scopes":["read"],"grants":[{"ledgerId":"302321"}]}`)
	var cc struct {
		ClientSecret string `json:"clientSecret"`
	}
	if code != 201 || json.Unmarshal([]byte(body), &cc) != nil || cc.ClientSecret == "" {
		t.Fatalf("create client: %d %s", code, body)
	}
	for d, date := range []string{"2024-03-01", "2024-03-02"} {
		var es []string
		for i := range 300 {
			es = append(es, fmt.Sprintf(`{"entryId":"e-%d-%d","pspReference":"p-%d-%d","time":"%sT10:00:00Z","ledgerDate":%q,"entryType":"capture","reference":"order %d","amount":%d}`,
				d, i, d, i, date, date, i, 100+i))
		}
		if code, body := saDo(t, "POST", url(a, "/admin/v1/ledgers/302321/funds/entries"), admin, `{"entries":[`+strings.Join(es, ",")+`]}`); code != 200 {
			t.Fatalf("append: %d %s", code, body)
		}
	}
	if code, body := saDo(t, "POST", url(a, "/admin/v1/ledgers/302321/dates/2024-03-02/close"), admin, ""); code != 200 {
		t.Fatalf("close: %d %s", code, body)
	}
	_, partner := saToken(t, a.httpAddr, "acme", cc.ClientSecret)
	code, body = saDo(t, "POST", url(a, "/report/v2/files"), partner,
		`{"type":"entries","ledgerId":"302321","topics":["funds"],"fromLedgerDate":"2024-03-01","toLedgerDate":"2024-03-02","format":"csv"}`)
	var f struct {
		ID             string `json:"id"`
		Status         string `json:"status"`
		DownloadAction struct {
			URL string `json:"url"`
		} `json:"downloadAction"`
	}
	if code != http.StatusAccepted || json.Unmarshal([]byte(body), &f) != nil || f.ID == "" {
		t.Fatalf("request file on A: %d %s", code, body)
	}
	waitFile := func(s *serving) string {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			code, body := saDo(t, "GET", url(s, "/report/v2/files/"+f.ID), partner, "")
			if code != 200 || json.Unmarshal([]byte(body), &f) != nil {
				t.Fatalf("get file on %s: %d %s", s.httpAddr, code, body)
			}
			if f.Status == "successful" {
				return f.DownloadAction.URL
			}
			if f.Status == "failed" || time.Now().After(deadline) {
				t.Fatalf("file on %s: %s", s.httpAddr, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	get := func(u string, hdr ...string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+partner)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	code, onA := get(waitFile(a))
	if code != 200 || !strings.Contains(string(onA), "order 299") {
		t.Fatalf("download on A: %d, %d bytes", code, len(onA))
	}

	b := startNodes(t, 1, dsn, flags...)[0]
	if err := a.stop(t); err != nil {
		t.Fatalf("stop A: %v", err)
	}
	u := waitFile(b)
	if !strings.HasPrefix(u, "http://"+b.httpAddr+"/") {
		t.Fatalf("B's download link %s is not B's", u)
	}
	if code, onB := get(u); code != 200 || string(onB) != string(onA) {
		t.Fatalf("download on B: %d, %d bytes; A's %d bytes", code, len(onB), len(onA))
	}
	lo, hi := len(onA)/2, len(onA)/2+999
	if code, part := get(u, "Range", fmt.Sprintf("bytes=%d-%d", lo, hi)); code != http.StatusPartialContent || string(part) != string(onA[lo:hi+1]) {
		t.Fatalf("range on B: %d, %d bytes", code, len(part))
	}
}
