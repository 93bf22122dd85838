package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpHandler routes the HTTP listener. Every route but /metrics is counted
// and timed under its handler name.
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	s.handle(mux, "GET /healthz", "healthz", http.HandlerFunc(s.handleHealthz))
	s.handle(mux, "GET /readyz", "readyz", http.HandlerFunc(s.handleReadyz))
	s.handle(mux, "GET /openapi.json", "openapi", http.HandlerFunc(s.handleOpenAPI))
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(s.metrics.reg,
		promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{
			ErrorLog: slogPrintln{s.log},
		})))
	s.registerHTTPAPI(mux)
	return mux
}

// handle registers h on pattern, instrumented under the metrics label name.
func (s *Server) handle(mux *http.ServeMux, pattern, name string, h http.Handler) {
	mux.Handle(pattern, s.metrics.instrumentHTTP(name, h))
}

// handleHealthz is liveness: 200 while the process answers at all.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok\n"))
}

// handleReadyz is readiness: 200 while the store is open and the server is
// not shutting down, else 503.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case s.draining.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ready: shutting down\n"))
	case !s.store.Ready():
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ready: store not open\n"))
	default:
		w.Write([]byte("ready\n"))
	}
}
