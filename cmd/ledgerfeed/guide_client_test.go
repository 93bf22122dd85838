package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file is issue 5's "a client written only from the Vipps guide"
// test. The client part (guideClient and its methods) uses nothing but
// net/http and encoding/json, and does only what
// ../shared/reference/vipps/api-guide.md tells an accounting partner to do:
// fetch a token, list the ledgers (following the cursor until it is empty),
// fetch each ledger date's report (following the cursor while hasMore,
// stopping at the first date that answers tryLater), and walk the feed
// (following the cursor until tryLater). The test then reconciles what the
// two methods gave.

// guideItem is one report item as the guide documents it; amounts and
// balances are decoded as int64 JSON numbers (a string would fail to decode).
type guideItem struct {
	PSPReference    string  `json:"pspReference"`
	Time            string  `json:"time"`
	LedgerDate      string  `json:"ledgerDate"`
	EntryType       string  `json:"entryType"`
	Reference       string  `json:"reference"`
	Currency        string  `json:"currency"`
	Amount          int64   `json:"amount"`
	RecipientHandle *string `json:"recipientHandle"`
	BalanceBefore   int64   `json:"balanceBefore"`
	BalanceAfter    int64   `json:"balanceAfter"`
}

type guideLedger struct {
	LedgerID string `json:"ledgerId"`
	Currency string `json:"currency"`
}

type guideClient struct {
	base  string // http://host:port
	hc    *http.Client
	token string
}

// getToken is POST /accesstoken/get with the partner's keys as headers.
func (c *guideClient) getToken(clientID, secret string) error {
	req, err := http.NewRequest("POST", c.base+"/accesstoken/get", nil)
	if err != nil {
		return err
	}
	req.Header.Set("client_id", clientID)
	req.Header.Set("client_secret", secret)
	req.Header.Set("Ocp-Apim-Subscription-Key", "guide-client-subscription-key")
	var tok struct {
		TokenType   string `json:"token_type"`
		AccessToken string `json:"access_token"`
	}
	if err := c.do(req, &tok); err != nil {
		return err
	}
	if tok.AccessToken == "" {
		return fmt.Errorf("no access_token in the token answer")
	}
	c.token = tok.AccessToken
	return nil
}

func (c *guideClient) get(path string, q url.Values, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Vipps-System-Name", "guide-client")
	req.Header.Set("Vipps-System-Version", "1.0")
	return c.do(req, out)
}

// do sends req, retrying (as the guide recommends) when the answer is 429
// or 503, after Retry-After seconds when given.
func (c *guideClient) do(req *http.Request, out any) error {
	var resp *http.Response
	var body []byte
	for attempt := 0; ; attempt++ {
		var err error
		resp, err = c.hc.Do(req)
		if err != nil {
			return err
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) || attempt == 20 {
			break
		}
		wait := 100 * time.Millisecond
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		time.Sleep(wait)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: decode: %v", req.Method, req.URL.Path, err)
	}
	return nil
}

// ledgers is GET /settlement/v1/ledgers, following the cursor until empty.
func (c *guideClient) ledgers() ([]guideLedger, error) {
	var all []guideLedger
	cursor := ""
	for page := 0; ; page++ {
		if page > 1000 {
			return nil, fmt.Errorf("ledgers: cursor never became empty")
		}
		q := url.Values{}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var resp struct {
			Items  []guideLedger `json:"items"`
			Cursor string        `json:"cursor"`
		}
		if err := c.get("/settlement/v1/ledgers", q, &resp); err != nil {
			return nil, err
		}
		all = append(all, resp.Items...)
		if resp.Cursor == "" {
			return all, nil
		}
		cursor = resp.Cursor
	}
}

// dateReport fetches one ledger date's report, following the cursor while
// hasMore. tryLater true means the date is not complete yet.
func (c *guideClient) dateReport(ledgerID, topic, date string) (items []guideItem, tryLater bool, err error) {
	cursor := ""
	for page := 0; ; page++ {
		if page > 10000 {
			return nil, false, fmt.Errorf("%s %s %s: hasMore never became false", ledgerID, topic, date)
		}
		q := url.Values{}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var resp struct {
			Items    []guideItem `json:"items"`
			Cursor   string      `json:"cursor"`
			HasMore  bool        `json:"hasMore"`
			TryLater bool        `json:"tryLater"`
		}
		if err := c.get("/report/v2/ledgers/"+url.PathEscape(ledgerID)+"/"+topic+"/dates/"+date, q, &resp); err != nil {
			return nil, false, err
		}
		items = append(items, resp.Items...)
		if page > 0 && resp.TryLater != tryLater {
			return nil, false, fmt.Errorf("%s %s %s: tryLater changed between pages", ledgerID, topic, date)
		}
		tryLater = resp.TryLater
		if !resp.HasMore {
			return items, tryLater, nil
		}
		if resp.Cursor == "" {
			return nil, false, fmt.Errorf("%s %s %s: hasMore without a cursor", ledgerID, topic, date)
		}
		cursor = resp.Cursor
	}
}

// feed walks GET …/{topic}/feed from cursor until tryLater, returning the
// items and the cursor to resume from. The guide: the cursor never becomes
// empty, and at the end the same cursor comes back with tryLater true.
func (c *guideClient) feed(ledgerID, topic, cursor string) ([]guideItem, string, error) {
	var items []guideItem
	for page := 0; ; page++ {
		if page > 100000 {
			return nil, "", fmt.Errorf("%s %s feed: tryLater never came", ledgerID, topic)
		}
		q := url.Values{"pageSize": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var resp struct {
			Items    []guideItem `json:"items"`
			Cursor   string      `json:"cursor"`
			TryLater bool        `json:"tryLater"`
		}
		if err := c.get("/report/v2/ledgers/"+url.PathEscape(ledgerID)+"/"+topic+"/feed", q, &resp); err != nil {
			return nil, "", err
		}
		if resp.Cursor == "" {
			return nil, "", fmt.Errorf("%s %s feed: empty cursor", ledgerID, topic)
		}
		items = append(items, resp.Items...)
		if resp.TryLater {
			if cursor != "" && resp.Cursor != cursor {
				return nil, "", fmt.Errorf("%s %s feed: tryLater answer has cursor %q, want the same cursor %q", ledgerID, topic, resp.Cursor, cursor)
			}
			return items, resp.Cursor, nil
		}
		cursor = resp.Cursor
	}
}

func guideAddDays(d string, n int) (string, error) {
	t, err := time.Parse("2006-01-02", d)
	if err != nil {
		return "", err
	}
	return t.AddDate(0, 0, n).Format("2006-01-02"), nil
}

// --- the test ---

// startGuideDemoServer runs `ledgerfeed serve --demo` on a fresh data dir
// with a known demo secret and returns its HTTP address.
func startGuideDemoServer(t *testing.T, secret string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	args := []string{"serve", "--demo", "--data", dir, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--demo-secret", secret,
		// The walk makes a few hundred calls; the default 50/s limit would
		// only slow the test down (the client retries 429s anyway).
		"--rate-limit", "-1"}
	go func() { done <- run(ctx, args, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("serve did not stop")
		}
	})
	deadline := time.After(60 * time.Second)
	for !strings.Contains(stdout.String(), "includeGDPRSensitiveData=true") {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve ended: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
		case <-deadline:
			t.Fatalf("no curl lines within 60s\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	m := regexp.MustCompile(`(?m)^http listening on (\S+)$`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no http listening line:\n%s", stdout)
	}
	return m[1]
}

// guideDated is one closed date's report as the guide's daily
// reconciliation sees it.
type guideDated struct {
	date             string
	items            []guideItem
	sum              int64
	opening, closing int64
}

func TestGuideClient_ReconcilesDemo(t *testing.T) {
	t.Parallel()
	start := time.Now()
	const secret = "guide-client-demo-secret-0123456789"
	addr := startGuideDemoServer(t, secret)
	t.Logf("demo server up in %s", time.Since(start))

	c := &guideClient{base: "http://" + addr, hc: &http.Client{Timeout: 30 * time.Second}}
	if err := c.getToken("demo-partner", secret); err != nil {
		t.Fatal(err)
	}
	ls, err := c.ledgers()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, l := range ls {
		ids[l.LedgerID] = true
	}
	// The first demo ledger (Vippsnummer + eCom, daily payouts) and the
	// weekly-settlement one (balances carried across dates).
	for _, id := range []string{"302321", "302325"} {
		if !ids[id] {
			t.Fatalf("ledger %s not in the ledger list %+v", id, ls)
		}
	}
	// 302321 is the busiest: its last 30 dates keep the test short under
	// -race; the weekly one is walked from its first date.
	guideReconcileLedger(t, c, "302321", 30)
	guideReconcileLedger(t, c, "302325", 0)
	t.Logf("reconciled in %s total", time.Since(start))
}

// guideReconcileLedger walks ledger id's feed and date reports on both
// topics and reconciles them. lastDays > 0 limits the date walk to about
// the last lastDays dates (counted back from the feed's last item's date);
// 0 walks from the feed's first date.
func guideReconcileLedger(t *testing.T, c *guideClient, id string, lastDays int) {
	t.Helper()
	walk := map[string][]guideDated{}
	feedByDate := map[string]map[string][]guideItem{}
	payouts := 0
	for _, topic := range []string{"funds", "fees"} {
		// Method 2: the feed, from no cursor until tryLater.
		feed, cursor, err := c.feed(id, topic, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(feed) == 0 {
			t.Fatalf("%s %s: empty feed", id, topic)
		}
		first := feed[0].LedgerDate
		if lastDays > 0 {
			from, err := guideAddDays(feed[len(feed)-1].LedgerDate, -lastDays)
			if err != nil {
				t.Fatal(err)
			}
			if from > first {
				first = from
			}
		}

		// Method 1: each date's report, from the first date until a date
		// that is not complete yet (tryLater).
		var dated []guideDated
		var prevClosing int64
		date := first
		for {
			items, tryLater, err := c.dateReport(id, topic, date)
			if err != nil {
				t.Fatal(err)
			}
			if tryLater {
				break
			}
			d := guideDated{date: date, items: items}
			if len(items) > 0 {
				d.opening, d.closing = items[0].BalanceBefore, items[len(items)-1].BalanceAfter
			} else {
				d.opening, d.closing = prevClosing, prevClosing
			}
			if len(dated) > 0 && d.opening != prevClosing {
				t.Errorf("%s %s %s: opening balance %d, previous date closed at %d", id, topic, date, d.opening, prevClosing)
			}
			bal := d.opening
			for i, it := range items {
				d.sum += it.Amount
				if it.LedgerDate != date {
					t.Errorf("%s %s %s: item %d has ledgerDate %s", id, topic, date, i, it.LedgerDate)
				}
				if it.BalanceBefore != bal || it.BalanceAfter != it.BalanceBefore+it.Amount {
					t.Errorf("%s %s %s: item %d %+v: balances not chained (running balance %d)", id, topic, date, i, it, bal)
				}
				bal = it.BalanceAfter
			}
			if d.sum != d.closing-d.opening {
				t.Errorf("%s %s %s: sum %d, closing %d − opening %d = %d", id, topic, date, d.sum, d.closing, d.opening, d.closing-d.opening)
			}
			if topic == "funds" {
				for i, it := range items {
					if it.EntryType != "scheduled-for-payout" {
						continue
					}
					payouts++
					if i != len(items)-1 || d.closing != 0 {
						t.Errorf("%s funds %s: scheduled-for-payout at %d of %d, closing balance %d; want last, bringing funds to 0", id, date, i, len(items), d.closing)
					}
				}
			}
			dated = append(dated, d)
			prevClosing = d.closing
			if date, err = guideAddDays(date, 1); err != nil {
				t.Fatal(err)
			}
			if len(dated) > 1000 {
				t.Fatalf("%s %s: no open date after 1000 dates", id, topic)
			}
		}
		if len(dated) < 28 {
			t.Fatalf("%s %s: only %d closed dates from %s", id, topic, len(dated), first)
		}
		// A date may have closed after the first feed walk: resume the feed
		// from its cursor, as the guide's hourly job would.
		more, _, err := c.feed(id, topic, cursor)
		if err != nil {
			t.Fatal(err)
		}
		feed = append(feed, more...)

		byDate := map[string][]guideItem{}
		for _, it := range feed {
			byDate[it.LedgerDate] = append(byDate[it.LedgerDate], it)
		}
		closed := map[string]bool{}
		for _, d := range dated {
			closed[d.date] = true
			fi := byDate[d.date]
			if len(fi) != len(d.items) {
				t.Errorf("%s %s %s: date report has %d items, feed %d", id, topic, d.date, len(d.items), len(fi))
				continue
			}
			for i := range fi {
				if !reflect.DeepEqual(fi[i], d.items[i]) {
					t.Errorf("%s %s %s item %d: date report %+v, feed %+v", id, topic, d.date, i, d.items[i], fi[i])
					break
				}
			}
			if len(fi) > 0 && fi[len(fi)-1].BalanceAfter != d.closing {
				t.Errorf("%s %s %s: feed closes at %d, date report at %d", id, topic, d.date, fi[len(fi)-1].BalanceAfter, d.closing)
			}
		}
		// Every feed item dated in the walked range belongs to a walked date.
		lastClosed := dated[len(dated)-1].date
		for day, its := range byDate {
			if day >= first && day <= lastClosed && !closed[day] {
				t.Errorf("%s %s: feed has %d items on %s, outside the dates walked from %s", id, topic, len(its), day, first)
			}
		}
		walk[topic], feedByDate[topic] = dated, byDate
		t.Logf("%s %s: %d feed items, %d closed dates %s…%s", id, topic, len(feed), len(dated), first, lastClosed)
	}
	if payouts == 0 {
		t.Errorf("%s: no scheduled-for-payout on any closed date", id)
	}

	// The guide's "report for each payout": dates up to and including one
	// that ends with scheduled-for-payout. A payout that follows another
	// starts from 0, so it pays out exactly the sum of its other entries.
	started := false
	var groupSum int64
	for _, d := range walk["funds"] {
		for _, it := range d.items {
			if it.EntryType == "scheduled-for-payout" {
				if started && -it.Amount != groupSum {
					t.Errorf("%s %s: payout %d, the dates since the previous payout sum to %d", id, d.date, -it.Amount, groupSum)
				}
				started, groupSum = true, 0
				continue
			}
			groupSum += it.Amount
		}
	}

	// fees-retained: on both topics at the same time, with opposite signs.
	for _, d := range walk["funds"] {
		var feeRet []guideItem
		for _, it := range feedByDate["fees"][d.date] {
			if it.EntryType == "fees-retained" {
				feeRet = append(feeRet, it)
			}
		}
		n := 0
		for _, it := range d.items {
			if it.EntryType != "fees-retained" {
				continue
			}
			if n >= len(feeRet) || feeRet[n].Amount != -it.Amount || feeRet[n].Time != it.Time {
				t.Errorf("%s %s: funds fees-retained %+v has no fees counterpart with the opposite amount at the same time (fees side: %+v)", id, d.date, it, feeRet)
			}
			n++
		}
		if n != len(feeRet) {
			t.Errorf("%s %s: %d fees-retained on funds, %d on fees", id, d.date, n, len(feeRet))
		}
	}
}
