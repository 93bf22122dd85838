package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// serving is one "ledgerfeed serve" run in the test process, as main runs
// it, on 127.0.0.1 with ports picked by the kernel.
type serving struct {
	dataDir  string
	httpAddr string
	grpcAddr string
	stderr   *syncBuffer
	cancel   context.CancelFunc
	done     chan error
}

// startServe runs serve on dataDir and returns once both listeners are
// bound. The server is stopped at the end of the test if stop was not
// called.
func startServe(t *testing.T, dataDir string, extra ...string) *serving {
	t.Helper()
	s, _ := serveWithStdout(t, dataDir, extra...)
	return s
}

// serveWithStdout is startServe that also returns what serve wrote to stdout.
func serveWithStdout(t *testing.T, dataDir string, extra ...string) (*serving, *addrWatcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{dataDir: dataDir, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	out := newAddrWatcher()
	args := append([]string{"serve", "--data", dataDir, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}, extra...)
	go func() { s.done <- run(ctx, args, out, s.stderr) }()
	select {
	case <-out.ready:
		s.httpAddr, s.grpcAddr = out.addrs()
	case err := <-s.done:
		cancel()
		t.Fatalf("serve ended before listening: %v\nstderr:\n%s", err, s.stderr)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("serve did not listen within 20s\nstderr:\n%s", s.stderr)
	}
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.stop(t)
		}
	})
	return s, out
}

// stop cancels serve's context (as SIGTERM does) and returns what run
// returned.
func (s *serving) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err // so that a second stop or the cleanup sees it too
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop within 20s\nstderr:\n%s", s.stderr)
		return nil
	}
}

func (s *serving) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.httpAddr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// addrWatcher is serve's stdout: it picks the bound addresses out of the
// "http listening on" and "grpc listening on" lines. Writes never block.
type addrWatcher struct {
	mu         sync.Mutex
	buf        bytes.Buffer
	http, grpc string
	ready      chan struct{}
	closed     bool
}

func newAddrWatcher() *addrWatcher { return &addrWatcher{ready: make(chan struct{})} }

func (w *addrWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for _, line := range strings.Split(w.buf.String(), "\n") {
		if a, ok := strings.CutPrefix(line, "http listening on "); ok {
			w.http = a
		}
		if a, ok := strings.CutPrefix(line, "grpc listening on "); ok {
			w.grpc = a
		}
	}
	if w.http != "" && w.grpc != "" && !w.closed {
		w.closed = true
		close(w.ready)
	}
	return len(p), nil
}

func (w *addrWatcher) addrs() (string, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.http, w.grpc
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runCmd runs one command to its end and returns its stdout, stderr and error.
func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestRun_Usage(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // substring
		wantStderr string // substring
	}{
		{"no args", nil, 2, "", "Commands:"},
		{"help", []string{"help"}, 0, "Commands:", ""},
		{"help lists commands", []string{"help"}, 0, "backup", ""},
		{"help serve", []string{"help", "serve"}, 0, "", "-grpc-addr"},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"serve -h", []string{"serve", "-h"}, 0, "", "-http-addr"},
		{"serve bad flag", []string{"serve", "--nope"}, 2, "", "flag provided but not defined: -nope"},
		{"serve extra arg", []string{"serve", "now"}, 2, "", `unexpected argument "now"`},
		{"verify extra arg", []string{"verify", "x"}, 2, "", `unexpected argument "x"`},
		{"backup missing file", []string{"backup"}, 2, "", "missing FILE"},
		{"backup two files", []string{"backup", "a", "b"}, 2, "", `unexpected argument "b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := runCmd(t, tc.args...)
			if code := exitCode(err, io.Discard); code != tc.wantCode {
				t.Errorf("exit code = %d (err %v), want %d", code, err, tc.wantCode)
			}
			if !strings.Contains(stdout, tc.wantStdout) {
				t.Errorf("stdout does not contain %q:\n%s", tc.wantStdout, stdout)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tc.wantStderr, stderr)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	var stderr bytes.Buffer
	if code := exitCode(errors.New("boom"), &stderr); code != 1 {
		t.Errorf("exitCode(error) = %d, want 1", code)
	}
	if got := stderr.String(); got != "ledgerfeed: boom\n" {
		t.Errorf("stderr = %q, want %q", got, "ledgerfeed: boom\n")
	}
}
