// Package pgtest gives tests and benchmarks a real PostgreSQL server: one
// private server per test binary, started on first use on a free loopback
// port from Debian's postgresql package (installed with apt-get when it is
// missing and the process runs as root, as on CI), and a fresh database for
// each caller of Start. Setting LEDGERFEED_TEST_PG_DSN to the URL of an
// existing server (a role that may CREATE DATABASE) uses that server instead.
//
// Without PostgreSQL binaries and without root, Start skips the test with a
// message saying how to enable the suite.
//
// A package whose tests use Start calls Main from its TestMain, so the server
// is stopped when the tests end; a watchdog process also stops it if the test
// binary dies first.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable that points the tests at an existing
// server instead of a private one.
const EnvDSN = "LEDGERFEED_TEST_PG_DSN"

const enableHint = "install Debian's postgresql package (apt-get install postgresql; run the tests as root and they install it), " +
	"put initdb and pg_ctl on PATH, or set " + EnvDSN + "=postgres://USER@HOST:PORT/postgres to use an existing server"

var (
	once    sync.Once
	srv     *server
	srvErr  error
	skipMsg string
	mu      sync.Mutex // guards srv's shutdown against Start
)

// server is the private PostgreSQL server (or the existing one of EnvDSN).
type server struct {
	admin   string // DSN of the maintenance database
	dir     string // temp dir of a private server; "" for EnvDSN
	pgCtl   string
	asUser  string // run pg_ctl as this user ("" = the current one)
	stopped bool
}

// Start returns the DSN of a new, empty database on the test server, dropped
// when tb ends. The first call starts the server (about 1.5 s; longer when
// the package must be installed first).
func Start(tb testing.TB) string {
	tb.Helper()
	once.Do(func() { srv, srvErr = startServer(tb) })
	if skipMsg != "" {
		tb.Skip(skipMsg)
	}
	if srvErr != nil {
		tb.Fatalf("pgtest: %v", srvErr)
	}
	mu.Lock()
	stopped := srv.stopped
	mu.Unlock()
	if stopped {
		tb.Fatal("pgtest: server already stopped (Start called after Main's tests ended)")
	}
	name := "t_" + randHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.admin)
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, srv.admin)
		if err != nil {
			return // the server is gone: nothing to drop
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(srv.admin)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Crash stops the private server at once, as a power cut would (pg_ctl
// stop -m immediate: no checkpoint, recovery from the WAL at the next
// start), and starts it again on the same port. Connections break; what
// was committed must survive. It skips tb on an existing server
// (LEDGERFEED_TEST_PG_DSN), which pgtest cannot restart.
func Crash(tb testing.TB) {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if srv == nil || srv.dir == "" {
		tb.Skip("pgtest: Crash needs the private server, not " + EnvDSN)
	}
	data := filepath.Join(srv.dir, "data")
	if err := srv.run(srv.pgCtl, "stop", "-D", data, "-m", "immediate", "-w"); err != nil {
		tb.Fatalf("pgtest: crash: %v", err)
	}
	u, err := url.Parse(srv.admin)
	if err != nil {
		tb.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	if err := srv.start(port); err != nil {
		log, _ := os.ReadFile(filepath.Join(srv.dir, "log"))
		tb.Fatalf("pgtest: restart after crash: %v\n%s", err, log)
	}
}

// Main runs the tests of m, stops the server and exits with their status.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the private server and removes its files. It is safe to call
// more than once and when no server was started.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if srv == nil || srv.stopped || srv.dir == "" {
		return
	}
	srv.stopped = true
	_ = srv.run(srv.pgCtl, "stop", "-D", filepath.Join(srv.dir, "data"), "-m", "immediate", "-w")
	_ = os.RemoveAll(srv.dir)
}

func startServer(tb testing.TB) (*server, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return &server{admin: dsn}, nil
	}
	bin, err := findBin()
	if err != nil {
		if os.Geteuid() != 0 {
			skipMsg = "PostgreSQL suite skipped: initdb and pg_ctl not found and not root to install them; " + enableHint
			return nil, nil
		}
		if err := install(tb); err != nil {
			return nil, err
		}
		if bin, err = findBin(); err != nil {
			return nil, fmt.Errorf("after installing postgresql: %w", err)
		}
	}
	s := &server{pgCtl: filepath.Join(bin, "pg_ctl")}
	if os.Geteuid() == 0 {
		s.asUser = "postgres" // initdb and postgres refuse to run as root
	}
	parent := ""
	if s.asUser != "" {
		// The postgres user must reach the directory: root's TMPDIR may be
		// private, /tmp is not.
		if st, err := os.Stat("/tmp"); err == nil && st.Mode().Perm()&0o001 != 0 {
			parent = "/tmp"
		}
	}
	s.dir, err = os.MkdirTemp(parent, "ledgerfeed-pgtest-")
	if err != nil {
		return nil, err
	}
	if err := s.init(bin); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	// A port another process takes between our probe and the server's bind
	// fails the start: try a few.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		err = s.start(port)
		if err == nil {
			s.admin = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
			s.watchdog()
			return s, nil
		}
		if attempt == 3 {
			log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
			os.RemoveAll(s.dir)
			return nil, fmt.Errorf("start postgres: %v\n%s", err, log)
		}
	}
}

// findBin returns the directory holding initdb and pg_ctl: PATH first, then
// the newest /usr/lib/postgresql/*/bin.
func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
				return d, nil
			}
		}
	}
	return "", errors.New("initdb and pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin")
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// install installs Debian's postgresql package, holding a lock so that test
// binaries running in parallel install it once.
func install(tb testing.TB) error {
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "ledgerfeed-pgtest-install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := findBin(); err == nil {
		return nil // another test binary installed it while we waited
	}
	start := time.Now()
	fmt.Fprintln(os.Stderr, "pgtest: PostgreSQL not found; installing Debian's postgresql package (apt-get)")
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	aptInstall := func() ([]byte, error) {
		cmd := exec.Command("apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql")
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	out, err := aptInstall()
	if err != nil {
		// A fresh machine has no package lists yet.
		upd := exec.Command("apt-get", "update", "-q")
		upd.Env = env
		if o, err := upd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get update: %v\n%s", err, o)
		}
		if out, err = aptInstall(); err != nil {
			return fmt.Errorf("apt-get install postgresql: %v\n%s", err, out)
		}
	}
	msg := fmt.Sprintf("pgtest: installed postgresql in %s", time.Since(start).Round(100*time.Millisecond))
	fmt.Fprintln(os.Stderr, msg)
	tb.Log(msg)
	return nil
}

// run runs a PostgreSQL program, as the postgres user when we are root.
func (s *server) run(prog string, args ...string) error {
	var cmd *exec.Cmd
	if s.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.asUser, "--", prog}, args...)...)
	} else {
		cmd = exec.Command(prog, args...)
	}
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", filepath.Base(prog), strings.Join(args, " "), err, out)
	}
	return nil
}

func (s *server) init(bin string) error {
	data := filepath.Join(s.dir, "data")
	if s.asUser != "" {
		u, err := user.Lookup(s.asUser)
		if err != nil {
			return fmt.Errorf("user %s: %w", s.asUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			return err
		}
	}
	// --no-sync: the cluster's initial files need no fsync for a test server
	// (the server itself runs with fsync on).
	return s.run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
}

func (s *server) start(port int) error {
	data := filepath.Join(s.dir, "data")
	opts := strings.Join([]string{
		"-c listen_addresses=127.0.0.1",
		"-p " + strconv.Itoa(port),
		"-c unix_socket_directories=" + s.dir,
		"-c fsync=on",
		"-c synchronous_commit=on",
		"-c max_connections=200",
	}, " ")
	return s.run(s.pgCtl, "start", "-D", data, "-w", "-t", "60", "-l", filepath.Join(s.dir, "log"), "-o", opts)
}

// watchdog starts a process that stops the server and removes its files
// once this test binary has exited, however it ended.
func (s *server) watchdog() {
	data := filepath.Join(s.dir, "data")
	stop := fmt.Sprintf("%q stop -D %q -m immediate -w", s.pgCtl, data)
	if s.asUser != "" {
		stop = fmt.Sprintf("runuser -u %s -- %s", s.asUser, stop)
	}
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; if [ -d %q ]; then %s >/dev/null 2>&1; rm -rf %q; fi",
		os.Getpid(), data, stop, s.dir)
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err == nil {
		go cmd.Wait() //nolint:errcheck // reaps the watchdog if it ends first
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
