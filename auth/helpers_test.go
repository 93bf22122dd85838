package auth

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fileLog records the paths the service opens or looks at.
type fileLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *fileLog) hook(p string) {
	l.mu.Lock()
	l.paths = append(l.paths, p)
	l.mu.Unlock()
}

func (l *fileLog) reset() {
	l.mu.Lock()
	l.paths = nil
	l.mu.Unlock()
}

func (l *fileLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.paths...)
}

type testEnv struct {
	dir   string // the data directory
	store *ledger.Store
	clock *testClock
	files *fileLog
	svc   *Service
}

// newTestEnv opens a store in a temp data directory and a service on it
// (with cfg changed by mut), both closed at cleanup.
func newTestEnv(t *testing.T, mut func(*Config)) *testEnv {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e := &testEnv{dir: dir, store: st, clock: newClock(), files: &fileLog{}}
	e.svc = e.open(t, mut)
	return e
}

// open starts another service on the env's store and data directory.
func (e *testEnv) open(t *testing.T, mut func(*Config)) *Service {
	t.Helper()
	cfg := Config{DataDir: e.dir, Now: e.clock.Now}
	if mut != nil {
		mut(&cfg)
	}
	svc, err := newService(e.store, cfg, e.files.hook)
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

// mustClient creates a client and returns its secret.
func (e *testEnv) mustClient(t *testing.T, id string, scopes []string, grants ...ledger.Grant) string {
	t.Helper()
	_, secret, err := e.svc.CreateClient(context.Background(), id, scopes, grants)
	if err != nil {
		t.Fatalf("create client %s: %v", id, err)
	}
	return secret
}

func (e *testEnv) mustToken(t *testing.T, id, secret string) Token {
	t.Helper()
	tok, err := e.svc.IssueToken(context.Background(), id, secret)
	if err != nil {
		t.Fatalf("issue token for %s: %v", id, err)
	}
	return tok
}

func errContains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }
