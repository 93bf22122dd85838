package server

import (
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
// handler called in process. ns/op is the figure to hold against the
// 300 µs-per-page goal.
func BenchmarkFeedPageHandler(b *testing.B) {
	e := newRBEnv(b)
	e.add(b, 2*rbPageSize)
	h := e.srv.http.Handler
	u := "/report/v2/ledgers/" + rbLedger + "/funds/feed?" + url.Values{"pageSize": {"1000"}}.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, _ := http.NewRequest("GET", u, nil)
		r.Header.Set("Authorization", "Bearer "+e.token)
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, r)
		if w.n < 200_000 {
			b.Fatalf("answer of %d bytes", w.n)
		}
	}
}
