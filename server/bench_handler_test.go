package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

// discardWriter is an http.ResponseWriter that keeps nothing.
type discardWriter struct {
	h http.Header
	n int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkFeedPageHandler: the server's own CPU for one 1000-item REST feed
// page, auth and audit included, without a network or a client: the HTTP
// handler called in process. cpu_us/op (the process's CPU time per page,
// garbage collection and the audit writer included) is the figure to hold
// against the 300 µs-per-page goal; ns/op also counts waiting for a core
// on a busy machine.
func BenchmarkFeedPageHandler(b *testing.B) {
	e := newRBEnv(b)
	e.add(b, 2*rbPageSize)
	h := e.srv.http.Handler
	u := "/report/v2/ledgers/" + rbLedger + "/funds/feed?" + url.Values{"pageSize": {"1000"}}.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := rbCPU()
	for b.Loop() {
		r, _ := http.NewRequest("GET", u, nil)
		r.Header.Set("Authorization", "Bearer "+e.token)
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, r)
		if w.n < 200_000 {
			b.Fatalf("answer of %d bytes", w.n)
		}
	}
	b.ReportMetric(float64(rbCPU()-cpu0)/1e3/float64(b.N), "cpu_us/op")
}

// BenchmarkEmptyPollHandler: the server's own CPU for an empty poll at the
// end of the feed (tryLater), in process as BenchmarkFeedPageHandler.
func BenchmarkEmptyPollHandler(b *testing.B) {
	e := newRBEnv(b)
	e.add(b, 10)
	h := e.srv.http.Handler
	r0, _ := http.NewRequest("GET", "/report/v2/ledgers/"+rbLedger+"/funds/feed?from=now", nil)
	r0.Header.Set("Authorization", "Bearer "+e.token)
	w0 := &recordWriter{discardWriter: discardWriter{h: http.Header{}}}
	h.ServeHTTP(w0, r0)
	var first rbFeedWire
	if err := json.Unmarshal(w0.body, &first); err != nil || !first.TryLater {
		b.Fatalf("first poll: %v %s", err, w0.body)
	}
	u := "/report/v2/ledgers/" + rbLedger + "/funds/feed?" + url.Values{"cursor": {first.Cursor}}.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := rbCPU()
	for b.Loop() {
		r, _ := http.NewRequest("GET", u, nil)
		r.Header.Set("Authorization", "Bearer "+e.token)
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, r)
		if w.n == 0 || w.n > 200 {
			b.Fatalf("answer of %d bytes", w.n)
		}
	}
	b.ReportMetric(float64(rbCPU()-cpu0)/1e3/float64(b.N), "cpu_us/op")
}

type recordWriter struct {
	discardWriter
	body []byte
}

func (w *recordWriter) Write(b []byte) (int, error) {
	w.body = append(w.body, b...)
	return w.discardWriter.Write(b)
}
