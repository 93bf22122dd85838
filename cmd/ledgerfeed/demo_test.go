package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// seededDemo seeds a fresh store in a temp dir and returns it with the
// auth service over it.
func seededDemo(t *testing.T) (*ledger.Store, *auth.Service, demoResult, time.Time) {
	t.Helper()
	dir := t.TempDir()
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(st, auth.Config{DataDir: dir})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		st.Close()
	})
	now := time.Now()
	var progress bytes.Buffer
	start := time.Now()
	res, err := seedDemo(context.Background(), st, a, "", now, &progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d entries in %s; progress:\n%s", res.Entries, time.Since(start), progress.String())
	if !res.Seeded || res.Secret == "" {
		t.Fatalf("seedDemo = %+v, want seeded with a secret", res)
	}
	return st, a, res, now
}

func allEntries(t *testing.T, st *ledger.Store, id string, topic ledger.Topic) []ledger.Entry {
	t.Helper()
	es, err := st.Entries(id, topic, 1, 1<<30, ledger.ReadOptions{GDPR: true})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestDemo_Seed(t *testing.T) {
	t.Parallel()
	st, a, res, now := seededDemo(t)
	ctx := context.Background()

	rep, err := st.Verify(ctx, nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	ls := demoLedgers()
	if rep.Ledgers != len(ls) || rep.Entries != uint64(res.Entries) {
		t.Errorf("verify saw %d ledgers, %d entries; want %d, %d", rep.Ledgers, rep.Entries, len(ls), res.Entries)
	}
	if res.Entries < 20000 || res.Entries > 60000 {
		t.Errorf("%d entries, want 20k–60k", res.Entries)
	}

	maskRE := regexp.MustCompile(`^xxxx [0-9]{4}$`)
	seen := map[string]bool{} // entry types, over all ledgers
	currencies, zones := map[string]bool{}, map[string]bool{}
	for _, dl := range ls {
		id := dl.ID
		l, err := st.GetLedger(id)
		if err != nil {
			t.Fatal(err)
		}
		currencies[l.Currency], zones[l.TimeZone] = true, true
		cal, err := l.Calendar()
		if err != nil {
			t.Fatal(err)
		}
		today := cal.DateOf(now)
		if l.OpenDate != today {
			t.Errorf("%s: open date %s, want today %s", id, l.OpenDate, today)
		}
		funds := allEntries(t, st, id, ledger.TopicFunds)
		fees := allEntries(t, st, id, ledger.TopicFees)
		if len(funds) == 0 || len(fees) == 0 {
			t.Fatalf("%s: %d funds, %d fees entries", id, len(funds), len(fees))
		}
		if first := funds[0].LedgerDate; first > today-demoDays+1 {
			t.Errorf("%s: first date %s, want about %d days back", id, first, demoDays)
		}
		for _, topic := range [][]ledger.Entry{funds, fees} {
			for _, e := range topic {
				if e.LedgerDate > today {
					t.Fatalf("%s: entry %s dated %s after today %s", id, e.EntryID, e.LedgerDate, today)
				}
				if e.Time.After(now) {
					t.Fatalf("%s: entry %s at %s, after now", id, e.EntryID, e.Time)
				}
			}
		}

		// Fees per capture, with the capture's pspReference.
		feeByPSP := map[string]ledger.Entry{}
		retained := map[string]int64{} // pspReference → fees amount of fees-retained
		for _, e := range fees {
			seen[e.EntryType] = true
			switch e.EntryType {
			case "capture-fee":
				if e.Amount >= 0 {
					t.Errorf("%s: capture fee %s amount %d, want negative", id, e.EntryID, e.Amount)
				}
				feeByPSP[e.PSPReference] = e
			case "fees-retained":
				if e.Amount <= 0 || e.BalanceAfter != 0 || e.RecipientHandle != nil {
					t.Errorf("%s: fees fees-retained %+v: want positive, bringing fees to 0, no recipient", id, e)
				}
				retained[e.PSPReference] = e.Amount
			}
		}

		payouts, negative, topUps, gdprN := 0, false, 0, 0
		var disputeRetained *ledger.Entry
		for i, e := range funds {
			seen[e.EntryType] = true
			if e.BalanceAfter < 0 {
				negative = true
			}
			switch e.EntryType {
			case "capture":
				f, ok := feeByPSP[e.PSPReference]
				if !ok || f.LedgerDate != e.LedgerDate || !f.Time.Equal(e.Time) {
					t.Errorf("%s: capture %s has no capture-fee of the same pspReference, date and time", id, e.PSPReference)
				}
				if e.Amount < 5*100 || e.Amount > 100_000*100 {
					t.Errorf("%s: capture amount %d out of range", id, e.Amount)
				}
			case "refund":
				if e.Amount >= 0 {
					t.Errorf("%s: refund %s amount %d", id, e.EntryID, e.Amount)
				}
			case "fees-retained":
				if fa, ok := retained[e.PSPReference]; !ok || fa != -e.Amount || e.Amount >= 0 || e.RecipientHandle != nil {
					t.Errorf("%s: funds fees-retained %s amount %d; fees side %d (found %v)", id, e.PSPReference, e.Amount, fa, ok)
				}
				delete(retained, e.PSPReference)
			case "scheduled-for-payout":
				payouts++
				if e.BalanceAfter != 0 || e.Amount >= 0 || e.RecipientHandle != nil {
					t.Errorf("%s: payout %s: amount %d, balance after %d, recipient %v", id, e.EntryID, e.Amount, e.BalanceAfter, e.RecipientHandle)
				}
				if i+1 < len(funds) && funds[i+1].LedgerDate == e.LedgerDate {
					t.Errorf("%s: payout on %s is not the last funds entry of its date", id, e.LedgerDate)
				}
				if e.LedgerDate >= today {
					t.Errorf("%s: payout on the open date", id)
				}
				if dl.weekly && weekdayOf(e.LedgerDate) != time.Monday {
					t.Errorf("%s: weekly ledger pays out on %s, a %s", id, e.LedgerDate, weekdayOf(e.LedgerDate))
				}
			case "top-up":
				topUps++
				if e.BalanceBefore >= 0 || e.BalanceAfter <= 0 {
					t.Errorf("%s: top-up %d → %d, want from negative to positive", id, e.BalanceBefore, e.BalanceAfter)
				}
				if !negative {
					t.Errorf("%s: top-up before any negative balance", id)
				}
			case "retained-disputed-capture":
				disputeRetained = &funds[i]
			case "returned-disputed-capture":
				if disputeRetained == nil || disputeRetained.Reference != e.Reference || disputeRetained.Amount != -e.Amount {
					t.Errorf("%s: returned-disputed-capture without its retained one", id)
				}
			}
			if e.HasGDPR {
				gdprN++
				if e.RecipientHandle == nil || *e.RecipientHandle != dl.gdprHandle {
					t.Errorf("%s: GDPR data on %v, want only on the Vippsnummer %s", id, e.RecipientHandle, dl.gdprHandle)
				}
				g := e.GDPR
				if g == nil || g.Name == "" || !maskRE.MatchString(g.MaskedPhoneNo) || strings.Contains(g.Name+g.Message, "+47") {
					t.Errorf("%s: GDPR fields %+v: want a name and a masked phone number", id, g)
				}
			}
		}
		if len(retained) != 0 {
			t.Errorf("%s: fees-retained on fees without a funds side: %v", id, retained)
		}
		if dl.weekly {
			if payouts < 10 || payouts > 14 {
				t.Errorf("%s: %d weekly payouts in %d days", id, payouts, demoDays)
			}
		} else if payouts < demoDays*3/4 {
			t.Errorf("%s: %d payouts in %d days, want nearly daily", id, payouts, demoDays)
		}
		if (dl.gdprHandle != "") != (gdprN > 0) {
			t.Errorf("%s: %d entries with GDPR data; Vippsnummer %q", id, gdprN, dl.gdprHandle)
		}
		if id == "302321" && (!negative || topUps != 1) {
			t.Errorf("%s: negative balance %v, %d top-ups; want a negative balance then a top-up", id, negative, topUps)
		}
	}
	for _, typ := range []string{"capture", "refund", "fees-retained", "scheduled-for-payout", "top-up",
		"retained-disputed-capture", "returned-disputed-capture", "correction", "adjustment-2027", "capture-fee"} {
		if !seen[typ] {
			t.Errorf("no %s entry", typ)
		}
	}
	if len(currencies) != 3 || len(zones) != 3 {
		t.Errorf("currencies %v, zones %v: want 3 of each", currencies, zones)
	}

	// The demo-partner client.
	c, err := st.GetClient(demoClientID)
	if err != nil {
		t.Fatal(err)
	}
	if !c.HasScope(ledger.ScopeRead) || c.HasScope(ledger.ScopeAdmin) || len(c.Grants) != len(ls) {
		t.Errorf("demo client %+v: want scope read and a grant per demo ledger", c)
	}
	consents := 0
	for _, dl := range ls {
		g, ok := c.Grant(dl.ID)
		if !ok || g.GDPRConsent != dl.consent {
			t.Errorf("grant on %s = %+v, %v; want consent %v", dl.ID, g, ok, dl.consent)
		}
		if g.GDPRConsent {
			consents++
		}
	}
	if consents == 0 || consents == len(ls) {
		t.Errorf("GDPR consent on %d of %d ledgers, want some but not all", consents, len(ls))
	}
	if _, err := a.IssueToken(ctx, demoClientID, res.Secret); err != nil {
		t.Errorf("token with the demo secret: %v", err)
	}

	// A second call leaves a seeded store alone.
	var heads []ledger.Head
	for _, dl := range ls {
		h, err := st.Head(dl.ID, ledger.TopicFunds)
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, h)
	}
	again, err := seedDemo(ctx, st, a, "other", time.Now(), io.Discard)
	if err != nil || again.Seeded || again.Entries != 0 {
		t.Errorf("second seedDemo = %+v, %v; want nothing done", again, err)
	}
	for i, dl := range ls {
		if h, _ := st.Head(dl.ID, ledger.TopicFunds); h.Sequence != heads[i].Sequence {
			t.Errorf("%s: second seed moved funds from %d to %d", dl.ID, heads[i].Sequence, h.Sequence)
		}
	}
}

// The same entries, relative to today, on every run.
func TestDemo_Deterministic(t *testing.T) {
	now := time.Now()
	gen := func() [][]ledger.EntryInput {
		var out [][]ledger.EntryInput
		for i, dl := range demoLedgers() {
			g, err := newDemoGen(dl, uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			today := g.cal.DateOf(now)
			for d := today - demoDays; d <= today; d++ {
				fees, funds := g.date(d, today-d, d == today, now)
				out = append(out, fees, funds)
			}
		}
		return out
	}
	a, b := gen(), gen()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs of the demo generator differ")
	}
}

func TestDemo_HostPort(t *testing.T) {
	for in, want := range map[string]string{
		"[::]:8080":      "localhost:8080",
		"0.0.0.0:8080":   "localhost:8080",
		":8080":          "localhost:8080",
		"127.0.0.1:1234": "127.0.0.1:1234",
		"[::1]:9":        "[::1]:9",
	} {
		if got := hostPort(fakeAddr(in)); got != want {
			t.Errorf("hostPort(%s) = %s, want %s", in, got, want)
		}
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

var _ net.Addr = fakeAddr("")

// serve --demo seeds the store, prints the demo secret and curl lines with
// the bound address, and the printed token line's credentials work; a
// second start finds the data there and prints the lines again.
func TestServe_Demo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := func(extra ...string) (string, string, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		stdout, stderr := &syncBuffer{}, &syncBuffer{}
		done := make(chan error, 1)
		args := append([]string{"serve", "--data", dir, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--demo"}, extra...)
		go func() { done <- run(ctx, args, stdout, stderr) }()
		deadline := time.After(30 * time.Second)
		for !strings.Contains(stdout.String(), "includeGDPRSensitiveData=true") {
			select {
			case err := <-done:
				cancel()
				t.Fatalf("serve ended: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			case <-deadline:
				cancel()
				t.Fatalf("no curl lines within 30s\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
			case <-time.After(20 * time.Millisecond):
			}
		}
		stop := func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("serve did not stop")
			}
		}
		return stdout.String(), stderr.String(), stop
	}

	out, _, stop := start()
	m := regexp.MustCompile(`(?m)^http listening on (\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no http listening line:\n%s", out)
	}
	addr := m[1]
	secret := readDemoSecret(filepath.Join(dir, demoCredentialsFile))
	if secret == "" || !strings.Contains(out, "client_secret="+secret) {
		t.Errorf("the random demo secret is not printed or not in %s:\n%s", demoCredentialsFile, out)
	}
	if fi, err := os.Stat(filepath.Join(dir, demoCredentialsFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v; want mode 0600", demoCredentialsFile, fi, err)
	}
	for _, want := range []string{
		"curl -s -X POST " + addr + "/accesstoken/get -H 'client_id: demo-partner' -H 'client_secret: " + secret + "'",
		`curl -s -H "Authorization: Bearer $TOKEN" ` + addr + "/settlement/v1/ledgers",
		addr + "/report/v2/ledgers/302321/funds/dates/",
		addr + "/report/v2/ledgers/302321/funds/feed?pageSize=5'",
		addr + "/report/v2/ledgers/302321/funds/feed?pageSize=5&includeGDPRSensitiveData=true'",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "YYYY-MM-DD") {
		t.Errorf("no yesterday in the date line:\n%s", out)
	}
	// The printed credentials get a token.
	req, _ := http.NewRequest("POST", "http://"+addr+"/accesstoken/get", nil)
	req.Header.Set("client_id", demoClientID)
	req.Header.Set("client_secret", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"access_token"`) {
		t.Errorf("token with the demo credentials: %d %s", resp.StatusCode, body)
	}
	stop()

	out, _, stop = start()
	defer stop()
	if !strings.Contains(out, "demo data is already there") || strings.Contains(out, "demo client created") {
		t.Errorf("second start:\n%s", out)
	}
	if !strings.Contains(out, "client_secret: "+secret+"'") {
		t.Errorf("second start's token line lacks the secret from %s:\n%s", demoCredentialsFile, out)
	}
}
