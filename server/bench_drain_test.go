package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkReportDrain: a ledger of LEDGERFEED_BENCH_DRAIN entries (default
// 1 M; 10 M with LEDGERFEED_BENCH_10M=1, which takes several minutes and
// some GB of disk) is drained over REST by a new poller on one connection,
// 1000-item pages from no cursor to tryLater, each answer decoded (cursor,
// tryLater, items as raw JSON). Reported: entries/s (goal ≥ 500 000 at
// 10 M). Then 16 pollers page through it at once for
// LEDGERFEED_BENCH_CHUNK × 5 while the Go heap is sampled every 20 ms:
// peak_heap_MB (goal < 64 MB). The same benchmark process holds the server
// and the clients, so the heap is both: an upper bound for the server's.
//
// The draining client does the least a drain needs (drainPage): it reads
// each answer into one buffer it keeps from page to page (io.ReadAll's
// fresh, doubling buffer cost ~300 µs a page, on the drain's critical
// path), reads cursor and tryLater and counts the items. A
// consumer that decodes every item with encoding/json spends ~2.5 ms of
// its own per 1000-item page on that,
// which would cap any server at ~400 000 entries/s in one connection.
func BenchmarkReportDrain(b *testing.B) {
	n := 1_000_000
	if os.Getenv("LEDGERFEED_BENCH_10M") == "1" {
		n = 10_000_000
	}
	if v := os.Getenv("LEDGERFEED_BENCH_DRAIN"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("LEDGERFEED_BENCH_DRAIN=%q: want a positive count", v)
		}
	}
	chunk := time.Second
	if v := os.Getenv("LEDGERFEED_BENCH_CHUNK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		chunk = d
	}
	e := newRBEnv(b)
	t0 := time.Now()
	for e.n < n {
		e.add(b, min(10_000, n-e.n))
	}
	b.Logf("ingested %d entries in %v", n, time.Since(t0).Round(time.Millisecond))

	c := rbClient(1)
	defer c.CloseIdleConnections()
	drain := func(stop func() bool) (int, error) {
		q := url.Values{"pageSize": {"1000"}}
		got := 0
		var buf bytes.Buffer // one answer's bytes, its capacity kept from page to page
		for !stop() {
			req, _ := http.NewRequest("GET", rbFeedURL(e.base, q), nil)
			req.Header.Set("Authorization", "Bearer "+e.token)
			r, err := c.Do(req)
			if err != nil {
				return got, err
			}
			buf.Reset()
			_, err = buf.ReadFrom(r.Body)
			r.Body.Close()
			body := buf.Bytes()
			if err != nil || r.StatusCode != http.StatusOK {
				return got, fmt.Errorf("status %d %v: %.200s", r.StatusCode, err, body)
			}
			w, err := drainPage(body)
			if err != nil {
				return got, err
			}
			got += w.Items
			if w.TryLater {
				return got, nil
			}
			q = url.Values{"pageSize": {"1000"}, "cursor": {w.Cursor}}
		}
		return got, nil
	}

	b.ResetTimer()
	start := time.Now()
	got, err := drain(func() bool { return false })
	el := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if got != n {
		b.Fatalf("drained %d entries, want %d", got, n)
	}
	b.ReportMetric(float64(n)/el.Seconds(), "entries/s")

	// 16 pollers at once, each with its own connection, from the start.
	var peak atomic.Uint64
	done := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	deadline := time.Now().Add(5 * chunk)
	var wg sync.WaitGroup
	var pages atomic.Int64
	for range rbConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc := rbClient(1)
			defer pc.CloseIdleConnections()
			q := url.Values{"pageSize": {"1000"}}
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest("GET", rbFeedURL(e.base, q), nil)
				req.Header.Set("Authorization", "Bearer "+e.token)
				r, err := pc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				var w rbFeedWire
				err = json.NewDecoder(r.Body).Decode(&w)
				r.Body.Close()
				if err != nil || w.TryLater {
					return
				}
				pages.Add(1)
				q = url.Values{"pageSize": {"1000"}, "cursor": {w.Cursor}}
			}
		}()
	}
	wg.Wait()
	close(done)
	sampler.Wait()
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak_heap_MB")
	b.ReportMetric(float64(pages.Load()), "pages_16_pollers")
}

// drainedPage is what a draining client needs of a feed answer.
type drainedPage struct {
	Cursor   string `json:"cursor"`
	TryLater bool   `json:"tryLater"`
	Items    int    `json:"-"`
}

// drainPage reads a feed answer as a drain needs it: the trailing tryLater
// and cursor (the fields after items, see appendFeedResponse) decoded, the
// items counted, not decoded.
func drainPage(body []byte) (drainedPage, error) {
	var p drainedPage
	i := bytes.LastIndex(body, []byte(`,"tryLater":`))
	if i < 0 || !bytes.HasPrefix(body, []byte(`{"items":[`)) {
		return p, fmt.Errorf("not a feed answer: %.200s", body)
	}
	tail := append([]byte{'{'}, body[i+1:]...)
	if err := json.Unmarshal(tail, &p); err != nil {
		return p, fmt.Errorf("feed answer tail %.200s: %w", tail, err)
	}
	p.Items = bytes.Count(body[:i], []byte(`"pspReference":`))
	return p, nil
}
