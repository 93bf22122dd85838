package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// metrics holds the Server's own Prometheus registry (never the global one,
// so that tests can run several servers in one process).
type metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec   // handler, code, method
	httpDuration *prometheus.HistogramVec // handler, method
	grpcRequests *prometheus.CounterVec   // method, code
	grpcDuration *prometheus.HistogramVec // method
}

func newMetrics(ready func() bool) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledgerfeed_http_requests_total",
			Help: "HTTP requests answered, by handler, status code and method.",
		}, []string{"handler", "code", "method"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ledgerfeed_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by handler and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"handler", "method"}),
		grpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledgerfeed_grpc_requests_total",
			Help: "gRPC calls finished, by full method name and status code.",
		}, []string{"method", "code"}),
		grpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ledgerfeed_grpc_request_duration_seconds",
			Help:    "Time to finish gRPC calls (streams: their whole life), by full method name.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ledgerfeed_ready",
			Help: "1 while the server is ready to take traffic (as /readyz), else 0.",
		}, func() float64 {
			if ready() {
				return 1
			}
			return 0
		}),
		m.httpRequests, m.httpDuration, m.grpcRequests, m.grpcDuration,
	)
	return m
}

func (m *metrics) instrumentHTTP(name string, h http.Handler) http.Handler {
	l := prometheus.Labels{"handler": name}
	return promhttp.InstrumentHandlerDuration(m.httpDuration.MustCurryWith(l),
		promhttp.InstrumentHandlerCounter(m.httpRequests.MustCurryWith(l), h))
}

func (m *metrics) observeGRPC(method string, start time.Time, err error) {
	m.grpcRequests.WithLabelValues(method, status.Code(err).String()).Inc()
	m.grpcDuration.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

func (m *metrics) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observeGRPC(info.FullMethod, start, err)
	return resp, err
}

func (m *metrics) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	m.observeGRPC(info.FullMethod, start, err)
	return err
}

// slogPrintln lets promhttp report its errors through slog.
type slogPrintln struct{ log *slog.Logger }

func (p slogPrintln) Println(v ...any) { p.log.Error("metrics", "err", v) }
