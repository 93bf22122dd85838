package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// newStore makes a seeded store in a temp dir, closed again, and returns
// the dir.
func newStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seedStore(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestVerify_Direct(t *testing.T) {
	dir := newStore(t)
	stdout, stderr, err := runCmd(t, "verify", "--data", dir)
	if err != nil {
		t.Fatalf("verify: %v\nstderr:\n%s", err, stderr)
	}
	if want := "ok: 2 ledgers, 80 entries verified\n"; stdout != want {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	if strings.Contains(stderr, "admin socket") {
		t.Errorf("verify went through a socket with no server running:\n%s", stderr)
	}
}

func TestVerify_WhileServing(t *testing.T) {
	dir := newStore(t)
	want, _, err := runCmd(t, "verify", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	startServe(t, dir)
	stdout, stderr, err := runCmd(t, "verify", "--data", dir)
	if err != nil {
		t.Fatalf("verify while serving: %v\nstderr:\n%s", err, stderr)
	}
	if stdout != want {
		t.Errorf("verify through the socket says %q, directly %q", stdout, want)
	}
	if !strings.Contains(stderr, "admin socket") {
		t.Errorf("stderr does not say the socket was used:\n%s", stderr)
	}
}

func TestVerify_NoStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	_, _, err := runCmd(t, "verify", "--data", dir)
	if err == nil || !strings.Contains(err.Error(), "no store in") {
		t.Fatalf("err = %v, want no store", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("verify created %s", dir)
	}
}

func TestVerify_DamagedFile(t *testing.T) {
	dir := t.TempDir()
	garbage := []byte(strings.Repeat("this is not a bbolt file. ", 2000))
	if err := os.WriteFile(filepath.Join(dir, "ledgerfeed.db"), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"verify", "--data", dir},
		{"backup", filepath.Join(t.TempDir(), "b.tar"), "--data", dir},
		{"serve", "--data", dir, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"},
	} {
		t.Run(args[0], func(t *testing.T) {
			_, _, err := runCmd(t, args...)
			if !errors.Is(err, ledger.ErrDamaged) {
				t.Fatalf("err = %v, want ErrDamaged", err)
			}
			if exitCode(err, io.Discard) != 1 {
				t.Errorf("exit code %d, want 1", exitCode(err, io.Discard))
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "backup") {
				t.Errorf("message %q: want one line that points to restoring a backup", msg)
			}
		})
	}
}

func TestBackup_Direct_Restores(t *testing.T) {
	dir := newStore(t)
	file := filepath.Join(t.TempDir(), "backup.tar")
	stdout, stderr, err := runCmd(t, "backup", file, "--data", dir)
	if err != nil {
		t.Fatalf("backup: %v\nstderr:\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "bytes") {
		t.Errorf("stdout = %q, want the size", stdout)
	}
	checkRestore(t, file, dir)
}

func TestBackup_WhileServing_Restores(t *testing.T) {
	dir := newStore(t)
	s := startServe(t, dir)
	file := filepath.Join(t.TempDir(), "backup.tar")
	stdout, stderr, err := runCmd(t, "backup", "--data", dir, file)
	if err != nil {
		t.Fatalf("backup while serving: %v\nstderr:\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "bytes") || !strings.Contains(stderr, "admin socket") {
		t.Errorf("stdout %q, stderr %q: want the size, and a note that the socket was used", stdout, stderr)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	checkRestore(t, file, dir)
}

func TestBackup_NoStore(t *testing.T) {
	file := filepath.Join(t.TempDir(), "backup.tar")
	_, _, err := runCmd(t, "backup", file, "--data", filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "no store in") {
		t.Fatalf("err = %v, want no store", err)
	}
	for _, f := range []string{file, file + ".tmp"} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a failed backup", f)
		}
	}
}

// checkRestore restores file into a new data directory as README says
// (tar -xf FILE -C DIR) and checks that the copy opens and verifies as the
// original does.
func checkRestore(t *testing.T, file, origDir string) {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode = %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(file + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.tmp left behind", file)
	}

	restored := t.TempDir()
	names := untar(t, file, restored)
	for _, want := range []string{"ledgerfeed.db", "gdpr.keys"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("backup holds %v, want %s among them", names, want)
		}
	}
	want, _, err := runCmd(t, "verify", "--data", origDir)
	if err != nil {
		t.Fatal(err)
	}
	got, stderr, err := runCmd(t, "verify", "--data", restored)
	if err != nil {
		t.Fatalf("verify restored: %v\nstderr:\n%s", err, stderr)
	}
	if got != want {
		t.Errorf("restored copy verifies as %q, original as %q", got, want)
	}
}

func untar(t *testing.T, file, dir string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("read backup: %v", err)
		}
		names = append(names, h.Name)
		if h.Typeflag != tar.TypeReg || !filepath.IsLocal(h.Name) {
			continue
		}
		dst := filepath.Join(dir, h.Name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
