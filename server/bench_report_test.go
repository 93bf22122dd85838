package server

// Report API benchmarks, measured as shared/BENCHMARKING.md asks (and as
// ledger/bench_test.go does the ingest): every throughput figure that is a
// goal is a ratio against a bare reference (bench/reference: a net/http
// handler writing precomputed bytes, a grpc.Server returning a prebuilt
// message) measured in the same run, in alternating chunks (reference,
// store, reference, store, …), the first pair dropped as warm-up. Each
// benchmark function runs its chunks once whatever b.N is; run them with
// -benchtime=1x and -count=N (scripts/bench.sh).
//
// The load generator runs in the benchmark's process, so the server and the
// client share the machine's two cores (no pinning inside one process): a
// ratio holds, the absolute req/s is lower than with wrk on a pinned core.
// CPU per request is the process's rusage (utime+stime) over a chunk divided
// by the requests: client plus server CPU. The reference pays the same
// client work, so store minus reference is the server-side excess.
//
// Tuning (environment): LEDGERFEED_BENCH_PAIRS (measured pairs, default 3)
// and LEDGERFEED_BENCH_CHUNK (length of one chunk, default 1s).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/bench/reference"
	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

const (
	rbLedger   = "302321"
	rbConns    = 16   // concurrent connections / callers of the throughput benchmarks
	rbPageSize = 1000 // items of a full feed page
)

// rbEnv is a served Server with auth on 127.0.0.1 (free ports), one ledger
// (rbLedger, NOK, UTC) and a client "bench" with scope read and a grant on it.
type rbEnv struct {
	store *ledger.Store
	srv   *Server
	base  string // http://host:port
	token string // bearer token of "bench"
	conn  *grpc.ClientConn
	rep   v1.ReportServiceClient
	n     int // entries appended by add
}

func newRBEnv(b *testing.B) *rbEnv {
	b.Helper()
	dir := b.TempDir()
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	a, err := auth.New(st, auth.Config{DataDir: dir, TokenRatePerMinute: -1, RatePerSecond: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	ctx := context.Background()
	if _, _, err := st.PutLedger(ctx, ledger.Ledger{ID: rbLedger, Currency: "NOK", TimeZone: "UTC"}); err != nil {
		b.Fatal(err)
	}
	_, secret, err := a.CreateClient(ctx, "bench", []string{"read"}, []ledger.Grant{{LedgerID: rbLedger}})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := a.IssueToken(ctx, "bench", secret)
	if err != nil {
		b.Fatal(err)
	}
	srv := rbServe(b, Config{Store: st, Auth: a})
	conn, err := grpc.NewClient(srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return &rbEnv{store: st, srv: srv, base: "http://" + srv.HTTPAddr().String(), token: tok.AccessToken,
		conn: conn, rep: v1.NewReportServiceClient(conn)}
}

// entries makes n funds entries after those made before: captures with a
// recipient handle, one in ten with GDPR fields (not read: no consent).
func (e *rbEnv) entries(n int) []ledger.EntryInput {
	in := make([]ledger.EntryInput, n)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Microsecond) // 10 M entries span 1000 s
	for i := range in {
		e.n++
		k := e.n
		h := "NO:123456"
		in[i] = ledger.EntryInput{
			EntryID: fmt.Sprintf("bench-%09d", k), PSPReference: strconv.Itoa(k), Reference: fmt.Sprintf("shop-1-order-%08d", k),
			Time: t0.Add(time.Duration(k) * 100 * time.Microsecond), EntryType: "capture", Amount: int64(100 + k%500_000),
			RecipientHandle: &h,
		}
		if k%10 == 0 {
			in[i].Name, in[i].PhoneNumber, in[i].Message = "Ola Nordmann", "+47 912 34 567", "Takk for handelen!"
		}
	}
	return in
}

func (e *rbEnv) add(b *testing.B, n int) {
	b.Helper()
	if _, err := e.store.Append(context.Background(), rbLedger, ledger.TopicFunds, e.entries(n)); err != nil {
		b.Fatalf("append: %v", err)
	}
}

func (e *rbEnv) bearer() context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+e.token)
}

func rbFeedURL(base string, q url.Values) string {
	return base + "/report/v2/ledgers/" + rbLedger + "/funds/feed?" + q.Encode()
}

// rbGet does one GET with the token and returns the answer read whole.
func rbGet(b *testing.B, c *http.Client, u, token string) (*http.Response, []byte) {
	b.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	r, err := c.Do(req)
	if err != nil {
		b.Fatalf("GET %s: %v", u, err)
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil || r.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %v\n%.300s", u, r.StatusCode, err, body)
	}
	return r, body
}

// rbFeedWire is the part of a feed answer the benchmarks look at.
type rbFeedWire struct {
	Items []struct {
		PSPReference string `json:"pspReference"`
	} `json:"items"`
	TryLater bool   `json:"tryLater"`
	Cursor   string `json:"cursor"`
}

func rbClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns, MaxIdleConns: 2 * conns,
		DisableCompression: true,
	}}
}

// rbCPU is the process's user+system CPU time so far.
func rbCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rbLoad runs rbConns goroutines calling call until chunk has passed and
// returns requests/s and CPU µs (process: client+server) per request.
func rbLoad(b *testing.B, chunk time.Duration, call func() error) (rate, cpuUS float64) {
	var wg sync.WaitGroup
	var n atomic.Int64
	var failed atomic.Bool
	cpu0 := rbCPU()
	start := time.Now()
	deadline := start.Add(chunk)
	for range rbConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && !failed.Load() {
				if err := call(); err != nil {
					if !failed.Swap(true) {
						b.Errorf("call: %v", err)
					}
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	cpu := rbCPU() - cpu0
	if n.Load() == 0 {
		b.Fatal("no request completed")
	}
	return float64(n.Load()) / el.Seconds(), float64(cpu) / 1e3 / float64(n.Load())
}

// rbHTTPCall GETs u with the token on c and checks the status and length.
func rbHTTPCall(c *http.Client, u, token string, wantLen int) func() error {
	return func() error {
		req, err := http.NewRequest("GET", u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		r, err := c.Do(req)
		if err != nil {
			return err
		}
		m, err := io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if err != nil {
			return err
		}
		if r.StatusCode != http.StatusOK || int(m) != wantLen {
			return fmt.Errorf("status %d, %d bytes (want %d)", r.StatusCode, m, wantLen)
		}
		return nil
	}
}

// rbPairs alternates ref and store chunks (warm-up pair first, dropped)
// and reports the ratio store÷reference and the rates and CPU.
func rbPairs(b *testing.B, cfg reference.Config, ref, store func() (float64, float64)) {
	var ratios, sr, rr, sc, rc []float64
	b.ResetTimer()
	for i := 0; i <= cfg.Pairs; i++ {
		r, rcpu := ref()
		s, scpu := store()
		if i == 0 {
			continue
		}
		ratios = append(ratios, s/r)
		sr, rr, sc, rc = append(sr, s), append(rr, r), append(sc, scpu), append(rc, rcpu)
	}
	b.StopTimer()
	reference.ReportRatios(b, ratios)
	b.ReportMetric(reference.Quantile(sr, 0.5), "store_req/s")
	b.ReportMetric(reference.Quantile(rr, 0.5), "ref_req/s")
	scm, rcm := reference.Quantile(sc, 0.5), reference.Quantile(rc, 0.5)
	b.ReportMetric(scm, "store_cpu_us/req")
	b.ReportMetric(rcm, "ref_cpu_us/req")
	b.ReportMetric(scm-rcm, "excess_cpu_us/req")
}

// ---------------------------------------------------------------------------
// 1. A full feed page over REST.

// BenchmarkReportFeedPageREST: 16 connections GET a 1000-item feed page
// (read from the store, auth, gateway, JSON) against a bare net/http handler
// writing the same answer bytes. Goal: ratio ≥ 0.5; server CPU ≤ 300 µs per
// page (≈ excess_cpu_us/req + the reference's server share).
func BenchmarkReportFeedPageREST(b *testing.B) {
	cfg := reference.LoadConfig(b)
	e := newRBEnv(b)
	e.add(b, rbPageSize)
	c := rbClient(rbConns)
	defer c.CloseIdleConnections()
	u := rbFeedURL(e.base, url.Values{"pageSize": {strconv.Itoa(rbPageSize)}})
	r, body := rbGet(b, c, u, e.token) // also warms the mmap
	var w rbFeedWire
	if err := json.Unmarshal(body, &w); err != nil || len(w.Items) != rbPageSize {
		b.Fatalf("page: %d items, %v", len(w.Items), err)
	}
	ref, err := reference.ServeHTTP("127.0.0.1:0", body, r.Header.Get("Content-Type"))
	if err != nil {
		b.Fatal(err)
	}
	defer ref.Close()
	refURL := "http://" + ref.Addr() + "/report/v2/ledgers/" + rbLedger + "/funds/feed?pageSize=1000"
	rbPairs(b, cfg,
		func() (float64, float64) { return rbLoad(b, cfg.Chunk, rbHTTPCall(c, refURL, e.token, len(body))) },
		func() (float64, float64) { return rbLoad(b, cfg.Chunk, rbHTTPCall(c, u, e.token, len(body))) })
	b.ReportMetric(float64(len(body)), "page_bytes")
}

// ---------------------------------------------------------------------------
// 2. An empty poll at the end of the feed.

// BenchmarkReportEmptyPoll: 16 connections GET the feed at its end (the
// cursor of the last page, no wait): the tryLater answer, against a bare
// handler writing the same small answer. Goal: ratio ≥ 0.5.
func BenchmarkReportEmptyPoll(b *testing.B) {
	cfg := reference.LoadConfig(b)
	e := newRBEnv(b)
	e.add(b, 10)
	c := rbClient(rbConns)
	defer c.CloseIdleConnections()
	_, body := rbGet(b, c, rbFeedURL(e.base, url.Values{}), e.token)
	var w rbFeedWire
	if err := json.Unmarshal(body, &w); err != nil || w.Cursor == "" {
		b.Fatalf("first page: %v %s", err, body)
	}
	u := rbFeedURL(e.base, url.Values{"cursor": {w.Cursor}})
	r, body := rbGet(b, c, u, e.token)
	w = rbFeedWire{}
	if err := json.Unmarshal(body, &w); err != nil || !w.TryLater || len(w.Items) != 0 {
		b.Fatalf("end of feed: not an empty tryLater answer: %v %s", err, body)
	}
	ref, err := reference.ServeHTTP("127.0.0.1:0", body, r.Header.Get("Content-Type"))
	if err != nil {
		b.Fatal(err)
	}
	defer ref.Close()
	refURL := "http://" + ref.Addr() + strings.TrimPrefix(u, e.base)
	rbPairs(b, cfg,
		func() (float64, float64) { return rbLoad(b, cfg.Chunk, rbHTTPCall(c, refURL, e.token, len(body))) },
		func() (float64, float64) { return rbLoad(b, cfg.Chunk, rbHTTPCall(c, u, e.token, len(body))) })
	b.ReportMetric(float64(len(body)), "answer_bytes")
}

// ---------------------------------------------------------------------------
// 3. A full feed page over gRPC.

// BenchmarkReportFeedPageGRPC: 16 concurrent GetFeed calls (one connection,
// 16 streams) of a 1000-item page against a bare grpc.Server whose GetFeed
// returns the same message prebuilt. Both calls carry the bearer token.
// Goal: ratio ≥ 0.7.
func BenchmarkReportFeedPageGRPC(b *testing.B) {
	cfg := reference.LoadConfig(b)
	e := newRBEnv(b)
	e.add(b, rbPageSize)
	ctx := e.bearer()
	req := &v1.GetFeedRequest{LedgerId: rbLedger, Topic: "funds", PageSize: rbPageSize}
	page, err := e.rep.GetFeed(ctx, req)
	if err != nil || len(page.GetItems()) != rbPageSize {
		b.Fatalf("GetFeed: %d items, %v", len(page.GetItems()), err)
	}
	ref, err := reference.ServeGRPC("127.0.0.1:0", page)
	if err != nil {
		b.Fatal(err)
	}
	defer ref.Close()
	refConn, err := grpc.NewClient(ref.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer refConn.Close()
	refRep := v1.NewReportServiceClient(refConn)
	call := func(c v1.ReportServiceClient) func() error {
		return func() error {
			p, err := c.GetFeed(ctx, req)
			if err == nil && len(p.GetItems()) != rbPageSize {
				err = fmt.Errorf("%d items", len(p.GetItems()))
			}
			return err
		}
	}
	rbPairs(b, cfg,
		func() (float64, float64) { return rbLoad(b, cfg.Chunk, call(refRep)) },
		func() (float64, float64) { return rbLoad(b, cfg.Chunk, call(e.rep)) })
}

// rbServe runs a server with cfg on loopback ports, long polls allowed for
// every benchmark connection, until the benchmark ends.
func rbServe(b *testing.B, cfg Config) *Server {
	b.Helper()
	cfg.HTTPAddr, cfg.GRPCAddr, cfg.ShutdownTimeout = "127.0.0.1:0", "127.0.0.1:0", 5*time.Second
	cfg.Limits.MaxLongPollsPerClient = 4 * rbConns
	srv, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx) }()
	b.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			b.Error("Serve did not return")
		}
	})
	return srv
}
