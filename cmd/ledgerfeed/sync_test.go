package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/client"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

const syncAdminSecret = "sync-admin-secret-0123456789"

// syncSeed puts ledgers into a new store in dir, each with entries on both
// topics over days dates up to today (today open, the others closed), the
// admin client (secret syncAdminSecret) and a read client "partner" granted
// all but the last ledger. It returns
// partner's secret.
func syncSeed(t testing.TB, dir string, ids []string, days, perDay int) string {
	t.Helper()
	ctx := context.Background()
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := auth.New(st, auth.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, _, err := a.Bootstrap(ctx, syncAdminSecret); err != nil {
		t.Fatal(err)
	}
	oslo, _ := time.LoadLocation("Europe/Oslo")
	now := time.Now().UTC().Truncate(time.Second)
	h := "NO:123455"
	for li, id := range ids {
		l := ledger.Ledger{ID: id, Currency: "NOK", TimeZone: "Europe/Oslo",
			PayoutBankAccount: ledger.Account{Scheme: "BBAN:NO", ID: "12345678903"},
			Owner:             ledger.Account{Scheme: "business:NO:ORG", ID: "987654321"}}
		if _, _, err := st.PutLedger(ctx, l); err != nil {
			t.Fatal(err)
		}
		for d := range days {
			day := now.AddDate(0, 0, d+1-days)
			date, _ := ledger.ParseDate(day.In(oslo).Format("2006-01-02"))
			var funds, fees []ledger.EntryInput
			n := perDay + (li*7+d*3)%11
			for i := range n {
				in := ledger.EntryInput{EntryID: fmt.Sprintf("f%d-%d", d, i), PSPReference: fmt.Sprint(5000000 + d*1000 + i),
					Time: day.Add(time.Duration(i-n) * time.Millisecond), LedgerDate: date, EntryType: "capture",
					Reference: fmt.Sprintf("order %d, \"%d\"", d, i), Amount: int64(100 + 13*i + d), RecipientHandle: &h}
				if i%7 == 6 {
					in.EntryType, in.Amount, in.RecipientHandle = "refund", -int64(40+i), nil
				}
				funds = append(funds, in)
				if i%2 == 0 {
					fees = append(fees, ledger.EntryInput{EntryID: fmt.Sprintf("c%d-%d", d, i), PSPReference: in.PSPReference,
						Time: in.Time, LedgerDate: date, EntryType: "capture-fee", Reference: in.Reference, Amount: -int64(2 + i%5), RecipientHandle: &h})
				}
			}
			if _, err := st.Append(ctx, id, ledger.TopicFunds, funds); err != nil {
				t.Fatal(err)
			}
			if d%4 != 2 { // some dates have no fees
				if _, err := st.Append(ctx, id, ledger.TopicFees, fees); err != nil {
					t.Fatal(err)
				}
			}
			if d < days-1 {
				if _, err := st.CloseDate(ctx, id, date); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var grants []ledger.Grant
	for _, id := range ids[:len(ids)-1] {
		grants = append(grants, ledger.Grant{LedgerID: id})
	}
	_, secret, err := a.CreateClient(ctx, "partner", []string{ledger.ScopeRead}, grants)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// adminPost POSTs body to path on the server as the admin client.
func adminPost(t *testing.T, addr, token, path string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "http://"+addr+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var p map[string]any
		json.NewDecoder(resp.Body).Decode(&p)
		t.Fatalf("POST %s: %d %v", path, resp.StatusCode, p)
	}
}

// appendLive appends n entries to both topics of ledger id through the
// admin API, and closes the open date first when closeOpen is set.
func appendLive(t *testing.T, addr, token, id, tag string, n int, closeOpen bool) {
	t.Helper()
	if closeOpen {
		open := time.Now().In(mustZone(t, "Europe/Oslo")).Format("2006-01-02")
		// Close today (the open date) or, once it is closed, whichever
		// date is open: the answer names it.
		req, _ := http.NewRequest("POST", "http://"+addr+"/admin/v1/ledgers/"+id+"/dates/"+open+"/close", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	for _, topic := range []string{"funds", "fees"} {
		var es []map[string]any
		for i := range n {
			amount := int64(1000 + i)
			if topic == "fees" {
				amount = -int64(10 + i%3)
			}
			es = append(es, map[string]any{"entryId": fmt.Sprintf("%s-%s-%d", tag, topic, i), "pspReference": tag,
				"time": time.Now().UTC().Format(time.RFC3339Nano), "entryType": "capture", "reference": tag + `, "live"`,
				"amount": amount, "recipientHandle": "api:123456"})
		}
		adminPost(t, addr, token, "/admin/v1/ledgers/"+id+"/"+topic+"/entries", map[string]any{"entries": es})
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// checkMirror compares every file sync wrote under dir with the date
// reports the server answers (fetched through the SDK), for the ledgers
// ids: same rows in the same order, sequences 1, 2, 3 … across a topic's
// dates, no row twice, no file for a date without entries, no leftovers.
// It returns the number of rows.
func checkMirror(t *testing.T, c *client.Client, dir string, ids []string) int {
	t.Helper()
	ctx := context.Background()
	rows := 0
	for _, id := range ids {
		for _, topic := range client.Topics {
			// The dates the feed has, in order.
			var dates []string
			for e, err := range c.FeedFrom(ctx, client.FeedRequest{LedgerID: id, Topic: topic}) {
				if err != nil {
					t.Fatal(err)
				}
				if len(dates) == 0 || dates[len(dates)-1] != e.LedgerDate {
					dates = append(dates, e.LedgerDate)
				}
			}
			files, _ := filepath.Glob(filepath.Join(dir, id, topic, "*"))
			if len(files) != len(dates) {
				t.Errorf("%s/%s: %d files %v, the feed has %d dates", id, topic, len(files), files, len(dates))
			}
			seq := int64(0)
			for _, d := range dates {
				var want []client.Entry
				for e, err := range c.DateReport(ctx, id, topic, d) {
					if err != nil && err != client.ErrDateOpen && !strings.Contains(err.Error(), client.ErrDateOpen.Error()) {
						t.Fatal(err)
					}
					if err == nil {
						want = append(want, e)
					}
				}
				got := readSyncCSV(t, filepath.Join(dir, id, topic, d+".csv"))
				if len(got) != len(want) {
					t.Errorf("%s/%s/%s: %d rows, the date report has %d", id, topic, d, len(got), len(want))
					continue
				}
				for i := range want {
					seq++
					if w := append([]string{strconv.FormatInt(seq, 10)}, entryRow(seq, &want[i])[1:]...); strings.Join(got[i], "|") != strings.Join(w, "|") {
						t.Errorf("%s/%s/%s row %d:\n got %q\nwant %q", id, topic, d, i+1, got[i], w)
						break
					}
				}
				rows += len(got)
			}
		}
	}
	// Nothing else: no temp files, no other ledgers.
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temp file left: %s", path)
		}
		return nil
	})
	return rows
}

func readSyncCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Errorf("%v", err)
		return nil
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return nil
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != strings.Join(syncCSVHeader, ",") {
		t.Errorf("%s: header %v", path, recs[:min(1, len(recs))])
		return nil
	}
	return recs[1:]
}

// manifestServed reports whether the server answers the date manifest.
func manifestServed(t *testing.T, c *client.Client, id string) bool {
	_, err := c.GetDateManifest(context.Background(), id, "", "")
	if client.IsNotImplemented(err) || client.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatalf("date manifest: %v", err)
	}
	return true
}

func TestSync_OnceMirrorsEveryGrantedLedger(t *testing.T) {
	dir := t.TempDir()
	ids := []string{"302321", "302322", "302399"}
	secret := syncSeed(t, dir, ids, 5, 30)
	s := startServe(t, dir, "--token-rate-limit=-1")
	out := filepath.Join(t.TempDir(), "mirror")
	args := []string{"sync", "--once", "--url", "http://" + s.httpAddr, "--client-id", "partner", "--client-secret", secret, "--dir", out}

	_, stderr, err := runCmd(t, args...)
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, stderr)
	}
	c, _ := client.New(client.Config{BaseURL: "http://" + s.httpAddr, ClientID: "partner", ClientSecret: secret})
	rows := checkMirror(t, c, out, ids[:2])
	if rows < 400 {
		t.Errorf("only %d rows", rows)
	}
	if _, err := os.Stat(filepath.Join(out, "302399")); err == nil {
		t.Errorf("a ledger the client may not read was mirrored")
	}
	if !strings.Contains(stderr, fmt.Sprintf("done: 2 ledgers, %d new entries written", rows)) {
		t.Errorf("progress:\n%s", stderr)
	}
	if manifestServed(t, c, "302321") {
		if !strings.Contains(stderr, "302321: sealed dates") || strings.Contains(stderr, "warning") {
			t.Errorf("seals not verified:\n%s", stderr)
		}
	} else if !strings.Contains(stderr, "warning: 302321: seals not checked") {
		t.Errorf("no warning that seals were not checked:\n%s", stderr)
	}
	st, err := loadState(out)
	if err != nil || st.Ledgers["302321"].Topics["funds"].Cursor == "" {
		t.Fatalf("state: %v %+v", err, st)
	}

	// A second run finds nothing new and changes no file.
	before := snapshotDir(t, out)
	_, stderr, err = runCmd(t, args...)
	if err != nil || !strings.Contains(stderr, "done: 2 ledgers, 0 new entries written") {
		t.Fatalf("second sync: %v\n%s", err, stderr)
	}
	if after := snapshotDir(t, out); after != before {
		t.Errorf("a second sync changed the files or the state")
	}

	// --grpc reads the feeds over gRPC: the same files.
	outGRPC := filepath.Join(t.TempDir(), "grpc")
	if _, stderr, err := runCmd(t, append(args[:len(args)-1], outGRPC, "--grpc", s.grpcAddr)...); err != nil {
		t.Fatalf("sync --grpc: %v\n%s", err, stderr)
	}
	if got := snapshotFiles(t, outGRPC); got != snapshotFiles(t, out) {
		t.Errorf("sync --grpc wrote other files than sync over REST")
	}

	// --ledger restricts; one the client may not read is an error.
	out2 := filepath.Join(t.TempDir(), "one")
	if _, stderr, err := runCmd(t, append(args[:len(args)-1], out2, "--ledger", "302322")...); err != nil {
		t.Fatalf("sync --ledger: %v\n%s", err, stderr)
	}
	if ents, _ := os.ReadDir(out2); len(ents) != 2 || ents[1].Name() != "302322" { // .sync and 302322
		t.Errorf("sync --ledger 302322 wrote %v", ents)
	}
	if _, _, err := runCmd(t, append(args[:len(args)-1], out2, "--ledger", "302399")...); err == nil || !strings.Contains(err.Error(), "302399") {
		t.Errorf("sync --ledger of a ledger not granted: %v", err)
	}
}

// snapshotFiles lists the CSV files under dir, relative, with their
// contents.
func snapshotFiles(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".csv") {
			return err
		}
		data, _ := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(&b, "%s %x\n", rel, data)
		return nil
	})
	return b.String()
}

func snapshotDir(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "lock" {
			return err
		}
		fi, _ := d.Info()
		data, _ := os.ReadFile(path)
		fmt.Fprintf(&b, "%s %d %s %x\n", path, fi.Size(), fi.ModTime(), data)
		return nil
	})
	return b.String()
}

func TestSync_Usage(t *testing.T) {
	t.Setenv("LEDGERFEED_CLIENT_SECRET", "")
	t.Setenv("LEDGERFEED_CLIENT_ID", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sync"}, "--client-id and the client secret"},
		{[]string{"sync", "--client-id", "x", "--client-secret", "y", "--page-size", "1001"}, "--page-size 1001"},
		{[]string{"sync", "--client-id", "x", "--client-secret", "y", "--wait", "2m"}, "--wait 2m0s"},
		{[]string{"sync", "--client-id", "x", "--client-secret", "y", "--url", "ftp://x"}, "not an http(s) URL"},
		{[]string{"sync", "--client-id", "x", "--client-secret", "y", "extra"}, `unexpected argument "extra"`},
	} {
		_, stderr, err := runCmd(t, tc.args...)
		if exitCode(err, &bytes.Buffer{}) != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: %v, stderr %q; want exit 2 with %q", tc.args, err, stderr, tc.want)
		}
	}
}

// TestSyncChild is "ledgerfeed sync" in a child process of
// TestSync_KilledAtRandomMomentsAndRestarted.
func TestSyncChild(t *testing.T) {
	args := os.Getenv("LEDGERFEED_SYNC_CHILD")
	if args == "" {
		t.Skip("run as a child process by TestSync_KilledAtRandomMomentsAndRestarted")
	}
	err := run(context.Background(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// ledgerfeed sync killed (SIGKILL) at random moments while the server takes
// new entries and closes dates, and restarted, ends with files equal to the
// date reports, no row twice.
func TestSync_KilledAtRandomMomentsAndRestarted(t *testing.T) {
	dir := t.TempDir()
	ids := []string{"302321", "302322", "302323", "302399"}
	secret := syncSeed(t, dir, ids, 4, 30)
	s := startServe(t, dir, "--token-rate-limit=-1", "--admin-secret", syncAdminSecret)
	_, adminTok := postToken(t, s.httpAddr, "admin", syncAdminSecret)
	out := filepath.Join(t.TempDir(), "mirror")
	// Tiny pages and flushes: many commits for the kills to land between.
	args := []string{"sync", "--once", "--url", "http://" + s.httpAddr, "--client-id", "partner", "--client-secret", secret,
		"--dir", out, "--page-size", "9", "--flush-rows", "15", "--parallel", "2"}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	killed, finished, midway := 0, 0, 0
	onDisk := func() int { // data rows in the mirror now
		n := 0
		filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(path, ".csv") {
				b, _ := os.ReadFile(path)
				n += bytes.Count(b, []byte("\n")) - 1
			}
			return nil
		})
		return n
	}
	prev := 0
	maxTarget := 12 // commits to wait for at most; lowered when runs end first
	for round := 0; round < 8 && killed < 3; round++ {
		if round > 0 { // new entries (and now and then a new date) for every run
			appendLive(t, s.httpAddr, adminTok, ids[round%3], fmt.Sprintf("live%d", round), 30, round%3 == 1)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestSyncChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "LEDGERFEED_SYNC_CHILD="+strings.Join(args, "\x1f"))
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill a random moment after a random number of commits (progress
		// lines): inside a file write, between files, before the state.
		target := 1 + rng.IntN(maxTarget)
		lines := make(chan string, 1000)
		var log strings.Builder
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		commits := 0
		for l := range lines {
			log.WriteString(l + "\n")
			if strings.Contains(l, " new entries, through") {
				commits++
			}
			if commits == target {
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		for range lines {
		}
		if err := cmd.Wait(); err == nil {
			finished++ // it ended before the signal
			maxTarget = max(1, commits)
		} else if !strings.Contains(err.Error(), "killed") {
			t.Fatalf("round %d: sync failed: %v\n%s", round, err, log.String())
		} else {
			killed++
			if n := onDisk(); n > prev {
				midway++ // killed after it had written something
				prev = n
			}
		}
	}
	if killed < 3 || midway < 2 {
		t.Fatalf("killed %d times, %d of them midway (%d runs finished first): want 3 and 2", killed, midway, finished)
	}
	// The last run goes to the end.
	if _, stderr, err := runCmd(t, args...); err != nil {
		t.Fatalf("final sync: %v\n%s", err, stderr)
	}
	c, _ := client.New(client.Config{BaseURL: "http://" + s.httpAddr, ClientID: "partner", ClientSecret: secret})
	rows := checkMirror(t, c, out, ids[:3])
	t.Logf("%d kills (%d after progress), %d runs finished before their kill; %d rows", killed, midway, finished, rows)
}

// Without --once, sync follows: entries posted later reach the files (long
// poll), a date closed meanwhile gets its seal checked, and an interrupt
// stops it cleanly with everything written.
func TestSync_FollowsUntilInterrupted(t *testing.T) {
	dir := t.TempDir()
	ids := []string{"302321", "302399"}
	secret := syncSeed(t, dir, ids, 3, 10)
	s := startServe(t, dir, "--token-rate-limit=-1", "--admin-secret", syncAdminSecret)
	_, adminTok := postToken(t, s.httpAddr, "admin", syncAdminSecret)
	out := filepath.Join(t.TempDir(), "mirror")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"sync", "--url", "http://" + s.httpAddr, "--client-id", "partner", "--client-secret", secret,
			"--dir", out, "--wait", "5s", "--refresh", "1s"}, io.Discard, stderr)
	}()
	c, _ := client.New(client.Config{BaseURL: "http://" + s.httpAddr, ClientID: "partner", ClientSecret: secret})
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 20s; sync said:\n%s", what, stderr.String())
			}
		}
	}
	head := func() int { // entries of 302321 funds on the server
		n := 0
		for _, err := range c.FeedFrom(context.Background(), client.FeedRequest{LedgerID: "302321", Topic: "funds"}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		return n
	}
	mirrored := func() int { // funds rows of 302321 in the mirror
		n := 0
		files, _ := filepath.Glob(filepath.Join(out, "302321", "funds", "*.csv"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			n += bytes.Count(b, []byte("\n")) - 1
		}
		return n
	}
	want := head()
	waitFor("initial mirror", func() bool { return mirrored() == want })
	// Close the open date and post more: they arrive while sync waits.
	appendLive(t, s.httpAddr, adminTok, "302321", "later", 4, true)
	want = head()
	waitFor("entries posted later", func() bool { return mirrored() == want })
	waitFor("the closed date's seal checked", func() bool {
		st, err := loadState(out)
		return err == nil && st.Ledgers["302321"] != nil && st.Ledgers["302321"].Sealed != nil &&
			st.Ledgers["302321"].Sealed.LedgerDate == time.Now().In(mustZone(t, "Europe/Oslo")).Format("2006-01-02")
	})
	// A second sync on the same directory fails at once.
	if _, _, err := runCmd(t, "sync", "--once", "--url", "http://"+s.httpAddr, "--client-id", "partner", "--client-secret", secret,
		"--dir", out); err == nil || !strings.Contains(err.Error(), "another ledgerfeed sync") {
		t.Errorf("second sync on the same directory: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sync after interrupt: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("sync did not stop\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped: ") {
		t.Errorf("no stop line:\n%s", stderr.String())
	}
	checkMirror(t, c, out, ids[:1])
}

// proxyTo is a reverse proxy to the server at addr that answers every other
// request itself (alternately 429 with Retry-After: 0, and 503) and passes
// every feed answer through edit.
func proxyTo(t *testing.T, addr string, edit func([]byte) []byte) string {
	t.Helper()
	u, _ := url.Parse("http://" + addr)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		if !strings.HasSuffix(r.Request.URL.Path, "/feed") || r.StatusCode != 200 {
			return nil
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		b = edit(b)
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 4 {
		case 1:
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case 3:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Through a proxy that refuses every other request, sync still mirrors
// everything; when the proxy alters one entry's reference (balances still
// chain), the seal check catches it and sync fails naming the date.
func TestSync_ThroughFlakyAndLyingProxies(t *testing.T) {
	dir := t.TempDir()
	ids := []string{"302321", "302399"}
	secret := syncSeed(t, dir, ids, 3, 12)
	s := startServe(t, dir, "--token-rate-limit=-1")
	c, _ := client.New(client.Config{BaseURL: "http://" + s.httpAddr, ClientID: "partner", ClientSecret: secret})

	flaky := proxyTo(t, s.httpAddr, func(b []byte) []byte { return b })
	out := filepath.Join(t.TempDir(), "flaky")
	_, stderr, err := runCmd(t, "sync", "--once", "--url", flaky, "--client-id", "partner", "--client-secret", secret, "--dir", out, "--page-size", "5")
	if err != nil {
		t.Fatalf("sync through the flaky proxy: %v\n%s", err, stderr)
	}
	checkMirror(t, c, out, ids[:1])

	lying := proxyTo(t, s.httpAddr, func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"reference":"order 1, \"3\""`), []byte(`"reference":"order 1, \"4\""`), 1)
	})
	_, stderr, err = runCmd(t, "sync", "--once", "--url", lying, "--client-id", "partner", "--client-secret", secret, "--dir", t.TempDir())
	if !errors.Is(err, client.ErrSeal) || !strings.Contains(err.Error(), "302321") || !strings.Contains(err.Error(), "funds") {
		t.Fatalf("sync through a proxy that alters an entry: %v, want a seal error naming 302321 funds\n%s", err, stderr)
	}
	t.Logf("caught: %v", err)
}

// A date file removed behind sync's back is an error naming it, not a file
// that silently lacks its first rows; without the state, sync starts afresh
// and leaves the files it finds as they are.
func TestSync_MissingFileAndLostState(t *testing.T) {
	dir := t.TempDir()
	ids := []string{"302321", "302399"}
	secret := syncSeed(t, dir, ids, 2, 8)
	s := startServe(t, dir, "--token-rate-limit=-1", "--admin-secret", syncAdminSecret)
	_, adminTok := postToken(t, s.httpAddr, "admin", syncAdminSecret)
	out := filepath.Join(t.TempDir(), "mirror")
	args := []string{"sync", "--once", "--url", "http://" + s.httpAddr, "--client-id", "partner", "--client-secret", secret, "--dir", out}
	if _, stderr, err := runCmd(t, args...); err != nil {
		t.Fatalf("sync: %v\n%s", err, stderr)
	}
	today := time.Now().In(mustZone(t, "Europe/Oslo")).Format("2006-01-02")
	open := filepath.Join(out, "302321", "funds", today+".csv")
	if err := os.Remove(open); err != nil {
		t.Fatal(err)
	}
	appendLive(t, s.httpAddr, adminTok, "302321", "more", 3, false)
	_, _, err := runCmd(t, args...)
	if err == nil || !strings.Contains(err.Error(), open) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("sync with the open date's file removed: %v, want an error naming it", err)
	}
	// State lost: everything is read again, nothing written twice.
	if err := os.RemoveAll(filepath.Join(out, ".sync")); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runCmd(t, args...); err != nil {
		t.Fatalf("sync without state: %v\n%s", err, stderr)
	}
	c, _ := client.New(client.Config{BaseURL: "http://" + s.httpAddr, ClientID: "partner", ClientSecret: secret})
	checkMirror(t, c, out, ids[:1])
}
