package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// newTestServer opens a store in a temp dir and builds a Server on
// 127.0.0.1 with free ports. Cleanup closes both.
func newTestServer(t *testing.T) (*Server, *ledger.Store) {
	t.Helper()
	st, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(Config{Store: st, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, st
}

func readyz(s *Server) int {
	rec := httptest.NewRecorder()
	s.http.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	return rec.Code
}

func TestServer_Readyz(t *testing.T) {
	s, st := newTestServer(t)
	if got := readyz(s); got != http.StatusOK {
		t.Errorf("open store: /readyz = %d, want 200", got)
	}
	s.draining.Store(true)
	if got := readyz(s); got != http.StatusServiceUnavailable {
		t.Errorf("draining: /readyz = %d, want 503", got)
	}
	s.draining.Store(false)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readyz(s); got != http.StatusServiceUnavailable {
		t.Errorf("closed store: /readyz = %d, want 503", got)
	}
}

// Shutdown lets a request in flight finish, and /readyz answers 503 from
// the moment shutdown begins.
func TestServer_Serve_GracefulShutdown(t *testing.T) {
	s, _ := newTestServer(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/", s.http.Handler)
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	})
	s.http.Handler = mux

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()

	var wg sync.WaitGroup
	var slowBody string
	var slowErr error
	wg.Go(func() {
		resp, err := http.Get("http://" + s.HTTPAddr().String() + "/slow")
		if err != nil {
			slowErr = err
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slowBody, slowErr = string(b), err
	})
	<-entered
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for !s.draining.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := readyz(s); got != http.StatusServiceUnavailable {
		t.Errorf("during shutdown: /readyz = %d, want 503", got)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	wg.Wait()
	if slowErr != nil || slowBody != "done" {
		t.Errorf("in-flight request: %q, %v; want done", slowBody, slowErr)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the last request finished")
	}
}

// A request still running at the shutdown timeout is cut, and its context
// cancelled.
func TestServer_Serve_ShutdownTimeout(t *testing.T) {
	s, _ := newTestServer(t)
	s.shutdownTimeout = 200 * time.Millisecond
	entered := make(chan struct{})
	cancelled := make(chan struct{})
	s.http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
		close(cancelled)
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	go func() {
		if resp, err := http.Get("http://" + s.HTTPAddr().String() + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the shutdown timeout")
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the request's context was not cancelled")
	}
}

// A shutdown that comes before the listeners began serving is still clean.
func TestServer_Serve_CancelledAtOnce(t *testing.T) {
	s, _ := newTestServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Serve(ctx); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}
