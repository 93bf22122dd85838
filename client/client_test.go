package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ledgerfeed/ledgerfeed/client"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// walkAll reads everything partner may read through c: the ledger ids, each
// topic's feed walked to its end with page size pageSize, and each date's
// report of the dates the feed shows. It fails the test on any error.
func walkAll(t *testing.T, c *client.Client, pageSize int) (ids []string, feeds map[string][]client.Entry, dates map[string][]client.Entry, open map[string]bool) {
	t.Helper()
	ctx := context.Background()
	feeds, dates, open = map[string][]client.Entry{}, map[string][]client.Entry{}, map[string]bool{}
	for l, err := range c.Ledgers(ctx) {
		if err != nil {
			t.Fatalf("ledgers: %v", err)
		}
		ids = append(ids, l.LedgerID)
		for _, topic := range client.Topics {
			key := l.LedgerID + "/" + topic
			seen := map[string]bool{}
			var order []string
			for e, err := range c.FeedFrom(ctx, client.FeedRequest{LedgerID: l.LedgerID, Topic: topic, PageSize: pageSize}) {
				if err != nil {
					t.Fatalf("feed %s: %v", key, err)
				}
				feeds[key] = append(feeds[key], e.Entry)
				if !seen[e.LedgerDate] {
					seen[e.LedgerDate] = true
					order = append(order, e.LedgerDate)
				}
			}
			for _, d := range order {
				for e, err := range c.DateReport(ctx, l.LedgerID, topic, d) {
					if errors.Is(err, client.ErrDateOpen) {
						open[key+"/"+d] = true
						break
					}
					if err != nil {
						t.Fatalf("date %s %s: %v", key, d, err)
					}
					dates[key+"/"+d] = append(dates[key+"/"+d], e)
				}
			}
		}
	}
	return ids, feeds, dates, open
}

func TestClient_ReadsWhatTheStoreHolds(t *testing.T) {
	e := newEnv(t, "302321", "302322")
	want := map[string]map[string][]ledger.Entry{
		"302321": e.ledger(t, "302321", 4, 30),
		"302322": e.ledger(t, "302322", 2, 7),
	}
	e.ledger(t, "302399", 1, 3) // not granted
	c := e.client(t, e.base)

	ids, feeds, dates, open := walkAll(t, c, 17)
	if len(ids) != 2 || ids[0] != "302321" || ids[1] != "302322" {
		t.Fatalf("ledgers = %v, want the two granted", ids)
	}
	for id, topics := range want {
		for topic, stored := range topics {
			got := feeds[id+"/"+topic]
			if len(got) != len(stored) {
				t.Fatalf("%s %s: feed gave %d entries, store has %d", id, topic, len(got), len(stored))
			}
			byDate := map[string]int{}
			for i := range stored {
				if !sameEntry(got[i], stored[i]) {
					t.Fatalf("%s %s entry %d: feed %+v, store %+v", id, topic, i, got[i], stored[i])
				}
				byDate[stored[i].LedgerDate.String()]++
			}
			for d, n := range byDate {
				if dr := dates[id+"/"+topic+"/"+d]; len(dr) != n {
					t.Errorf("%s %s %s: date report %d entries, store %d", id, topic, d, len(dr), n)
				}
			}
		}
	}
	// Only the last date of each ledger is open.
	if len(open) == 0 {
		t.Errorf("no open date reported")
	}
	for k := range open {
		if k[:6] == "302321" && k[len(k)-10:] != want["302321"]["funds"][len(want["302321"]["funds"])-1].LedgerDate.String() {
			t.Errorf("%s reported open", k)
		}
	}

	// An unknown ledger is an *APIError 404 with the server's contextId.
	_, err := c.GetFeed(context.Background(), client.FeedRequest{LedgerID: "302399", Topic: "funds"})
	var ae *client.APIError
	if !client.IsNotFound(err) || !errors.As(err, &ae) || ae.ContextID == "" || ae.Detail == "" {
		t.Errorf("feed of an ungranted ledger: %v, want a 404 APIError with detail and contextId", err)
	}
	// Bad input is a 400, not retried.
	_, err = c.GetDateReport(context.Background(), client.DateRequest{LedgerID: "302321", Topic: "funds", LedgerDate: "2026-13-01"})
	if !errors.As(err, &ae) || ae.Status != 400 || ae.ErrorCode != 10002 {
		t.Errorf("bad date: %v, want 400 errorCode 10002", err)
	}
	// Wrong credentials: 401 from the token endpoint.
	bad, _ := client.New(client.Config{BaseURL: e.base, ClientID: "partner", ClientSecret: "wrong"})
	if _, err := bad.Token(context.Background()); !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("token with a wrong secret: %v, want 401", err)
	}
}

// flaky is a reverse proxy in front of the server that answers every other
// request itself: alternately 429 (Retry-After: 0) and 503; and 401 to
// requests whose bearer token is listed in reject.
type flaky struct {
	n, refused, tokens atomic.Int64
	mu                 sync.Mutex
	reject             map[string]bool
}

func (f *flaky) start(t *testing.T, target string) string {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.n.Add(1)
		switch {
		case n%4 == 1:
			f.refused.Add(1)
			w.Header().Set("Retry-After", "0")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"slow down","contextId":"proxy"}`))
			return
		case n%4 == 3:
			f.refused.Add(1)
			http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/accesstoken/get" {
			f.tokens.Add(1)
		}
		f.mu.Lock()
		authz := r.Header.Get("Authorization")
		rej := f.reject[authz] || (f.reject["*"] && authz != "")
		f.mu.Unlock()
		if rej {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"title":"Unauthorized","status":401,"detail":"token expired"}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// The SDK survives a server that answers 429 and 503 on every other call:
// everything read through the flaky proxy equals what is read directly.
func TestClient_Survives429And503OnEveryOtherCall(t *testing.T) {
	e := newEnv(t, "302321", "302322")
	e.ledger(t, "302321", 3, 40)
	e.ledger(t, "302322", 2, 9)
	f := &flaky{}
	proxied := f.start(t, e.base)

	ids0, feeds0, dates0, open0 := walkAll(t, e.client(t, e.base), 13)
	ids1, feeds1, dates1, open1 := walkAll(t, e.client(t, proxied), 13)
	if f.refused.Load() < 20 {
		t.Fatalf("the proxy refused only %d of %d requests", f.refused.Load(), f.n.Load())
	}
	if len(ids1) != len(ids0) || len(feeds1) != len(feeds0) || len(dates1) != len(dates0) || len(open1) != len(open0) {
		t.Fatalf("through the proxy: %d ledgers %d feeds %d dates %d open; direct: %d %d %d %d",
			len(ids1), len(feeds1), len(dates1), len(open1), len(ids0), len(feeds0), len(dates0), len(open0))
	}
	for k, want := range feeds0 {
		got := feeds1[k]
		if len(got) != len(want) {
			t.Fatalf("feed %s: %d entries through the proxy, %d direct", k, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("feed %s entry %d differs: %+v vs %+v", k, i, got[i], want[i])
			}
		}
	}
	for k, want := range dates0 {
		if len(dates1[k]) != len(want) {
			t.Errorf("date %s: %d entries through the proxy, %d direct", k, len(dates1[k]), len(want))
		}
	}
	t.Logf("%d requests, %d refused by the proxy", f.n.Load(), f.refused.Load())

	// With retries off, the first refusal is the caller's error.
	c, _ := client.New(client.Config{BaseURL: proxied, ClientID: "partner", ClientSecret: e.secret, MaxRetries: -1})
	f.n.Store(0)
	_, err := c.Token(context.Background())
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 429 || ae.RetryAfter != 0 || ae.Detail != "slow down" {
		t.Errorf("without retries: %v, want the proxy's 429", err)
	}
}

// A 401 on a call makes the client fetch a new token once and try again.
func TestClient_RefreshesTokenOn401(t *testing.T) {
	e := newEnv(t, "302321")
	e.ledger(t, "302321", 1, 5)
	f := &flaky{reject: map[string]bool{}}
	proxied := f.start(t, e.base)
	c := e.client(t, proxied)
	ctx := context.Background()
	tok, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.reject["Bearer "+tok] = true // as if it had expired
	f.mu.Unlock()
	p, err := c.GetFeed(ctx, client.FeedRequest{LedgerID: "302321", Topic: "funds"})
	if err != nil || len(p.Items) != 5 {
		t.Fatalf("feed after the token was refused: %v", err)
	}
	if n := f.tokens.Load(); n != 2 {
		t.Errorf("%d token requests, want 2 (the first, and one refresh)", n)
	}
	tok2, _ := c.Token(ctx)
	if tok2 == tok {
		t.Errorf("token not replaced")
	}
	// A refused fresh token is the caller's error after one refresh, not a
	// loop.
	f.mu.Lock()
	f.reject["*"] = true
	f.mu.Unlock()
	_, err = c.GetFeed(ctx, client.FeedRequest{LedgerID: "302321", Topic: "funds"})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("feed with every token refused: %v, want 401", err)
	}
	if n := f.tokens.Load(); n != 3 {
		t.Errorf("%d token requests, want 3", n)
	}
}

// Feed follows the log: entries appended while it waits arrive, once each,
// in order; it ends when ctx is canceled.
func TestClient_FeedLongPollsAndSubscribeFeedPushes(t *testing.T) {
	e := newEnv(t, "302321")
	stored := e.ledger(t, "302321", 1, 20)
	c := e.client(t, e.base)
	conn, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	appendMore := func(n int, tag string) {
		h := "NO:123455"
		var in []ledger.EntryInput
		for i := range n {
			in = append(in, ledger.EntryInput{EntryID: tag + "-" + string(rune('a'+i)), PSPReference: tag, Time: time.Now(),
				EntryType: "capture", Reference: tag, Amount: int64(10 + i), RecipientHandle: &h})
		}
		if _, err := e.st.Append(context.Background(), "302321", ledger.TopicFunds, in); err != nil {
			t.Error(err)
		}
	}

	type result struct {
		got []client.Entry
		err error
	}
	rest, grpcDone := make(chan result, 1), make(chan result, 1)
	rctx, rcancel := context.WithCancel(ctx)
	go func() {
		var r result
		for fe, err := range c.Feed(rctx, "302321", "funds", "") {
			if err != nil {
				r.err = err
				break
			}
			r.got = append(r.got, fe.Entry)
			if len(r.got) == 26 {
				rcancel()
			}
		}
		rest <- r
	}()
	gctx, gcancel := context.WithCancel(ctx)
	go func() {
		var r result
		for p, err := range c.SubscribeFeed(gctx, conn, client.FeedRequest{LedgerID: "302321", Topic: "funds", PageSize: 7}) {
			if err != nil {
				r.err = err
				break
			}
			r.got = append(r.got, p.Items...)
			if len(r.got) == 26 {
				gcancel()
			}
		}
		grpcDone <- r
	}()
	time.Sleep(200 * time.Millisecond) // both are (most likely) waiting at the end
	appendMore(3, "x")
	appendMore(3, "y")
	for name, ch := range map[string]chan result{"Feed": rest, "SubscribeFeed": grpcDone} {
		r := <-ch
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("%s ended with %v, want context.Canceled", name, r.err)
		}
		if len(r.got) != 26 {
			t.Fatalf("%s: %d entries, want 26", name, len(r.got))
		}
		for i, en := range r.got[:20] {
			if !sameEntry(en, stored["funds"][i]) {
				t.Errorf("%s entry %d = %+v, want %+v", name, i, en, stored["funds"][i])
			}
		}
		for i, en := range r.got[20:] {
			if en.BalanceBefore != r.got[19+i].BalanceAfter {
				t.Errorf("%s entry %d: balances do not chain", name, 20+i)
			}
		}
		if r.got[20].PSPReference != "x" || r.got[25].PSPReference != "y" {
			t.Errorf("%s: appended entries out of order: %s…%s", name, r.got[20].PSPReference, r.got[25].PSPReference)
		}
	}
}

// A Retry-After is obeyed: the retry waits at least that long, even though
// the backoff alone would retry within milliseconds.
func TestClient_WaitsRetryAfter(t *testing.T) {
	e := newEnv(t, "302321")
	e.ledger(t, "302321", 1, 3)
	var n, retried atomic.Int64 // requests; when the second came (UnixNano)
	u, _ := url.Parse(e.base)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/report/v2/ledgers/302321/funds/feed" {
			switch n.Add(1) {
			case 1:
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			case 2:
				retried.Store(time.Now().UnixNano())
			}
		}
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := e.client(t, srv.URL)
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p, err := c.GetFeed(context.Background(), client.FeedRequest{LedgerID: "302321", Topic: "funds"})
	if err != nil || len(p.Items) != 3 {
		t.Fatalf("feed after a 429: %v", err)
	}
	if after := time.Unix(0, retried.Load()).Sub(start); n.Load() != 2 || after < time.Second {
		t.Errorf("%d feed requests, retried after %s; want 2, the second after at least 1s", n.Load(), after)
	}
}

// tcpProxy forwards connections to target until cut closes every one of
// them; new connections are forwarded again.
type tcpProxy struct {
	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			b, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
	return p
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// SubscribeFeed survives its connection being cut: it reconnects and
// resumes from the last page's cursor, every entry once, in order.
func TestClient_SubscribeFeedResumesAfterTheConnectionIsCut(t *testing.T) {
	e := newEnv(t, "302321")
	e.ledger(t, "302321", 1, 10)
	proxy := newTCPProxy(t, e.grpcAddr)
	conn, err := grpc.NewClient(proxy.ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := e.client(t, e.base)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := "NO:123455"
	post := func(tag string, n int) {
		var in []ledger.EntryInput
		for i := range n {
			in = append(in, ledger.EntryInput{EntryID: tag + strconv.Itoa(i), PSPReference: tag + strconv.Itoa(i), Time: time.Now(),
				EntryType: "capture", Amount: int64(1 + i), RecipientHandle: &h})
		}
		if _, err := e.st.Append(context.Background(), "302321", ledger.TopicFunds, in); err != nil {
			t.Error(err)
		}
	}
	var got []client.Entry
	cuts := 0
	for p, err := range c.SubscribeFeed(ctx, conn, client.FeedRequest{LedgerID: "302321", Topic: "funds", PageSize: 4}) {
		if err != nil {
			t.Fatalf("after %d entries: %v", len(got), err)
		}
		got = append(got, p.Items...)
		if p.TryLater && cuts < 3 {
			cuts++
			proxy.cut()
			post(fmt.Sprintf("cut%d-", cuts), 5)
		}
		if len(got) >= 25 {
			break
		}
	}
	if len(got) != 25 {
		t.Fatalf("%d entries, want 25", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].BalanceBefore != got[i-1].BalanceAfter {
			t.Fatalf("entry %d (%s) does not follow entry %d (%s): a gap or a repeat", i, got[i].PSPReference, i-1, got[i-1].PSPReference)
		}
	}
	if got[24].PSPReference != "cut3-4" {
		t.Errorf("last entry %s, want cut3-4", got[24].PSPReference)
	}
	if n := proxy.accepted.Load(); n < 4 {
		t.Errorf("%d connections, want at least 4 (one, and one after each cut)", n)
	}
}

// With FeedConn the feed is read over gRPC: the same entries as over REST,
// and the same errors.
func TestClient_FeedOverGRPC(t *testing.T) {
	e := newEnv(t, "302321")
	e.ledger(t, "302321", 3, 25)
	e.ledger(t, "302399", 1, 3)
	conn, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	g, err := client.New(client.Config{BaseURL: e.base, ClientID: "partner", ClientSecret: e.secret, FeedConn: conn})
	if err != nil {
		t.Fatal(err)
	}
	_, viaREST, _, _ := walkAll(t, e.client(t, e.base), 11)
	_, viaGRPC, _, _ := walkAll(t, g, 11)
	if len(viaGRPC) != 2 || len(viaGRPC["302321/funds"]) != 75 {
		t.Fatalf("over gRPC: %d feeds, %d funds entries", len(viaGRPC), len(viaGRPC["302321/funds"]))
	}
	for k, want := range viaREST {
		if !reflect.DeepEqual(viaGRPC[k], want) {
			t.Errorf("%s: gRPC and REST differ", k)
		}
	}
	_, err = g.GetFeed(context.Background(), client.FeedRequest{LedgerID: "302399", Topic: "funds"})
	if !client.IsNotFound(err) {
		t.Errorf("ungranted ledger over gRPC: %v, want 404", err)
	}
	_, err = g.GetFeed(context.Background(), client.FeedRequest{LedgerID: "302321", Topic: "funds", Cursor: "garbage"})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Detail, "cursor") {
		t.Errorf("bad cursor over gRPC: %v, want 400 naming the cursor", err)
	}
}
