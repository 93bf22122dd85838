package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/pgstore"
	"github.com/ledgerfeed/ledgerfeed/server"
)

// Files in the data directory.
const (
	dbFile     = "ledgerfeed.db"
	socketFile = "ledgerfeed.sock"
)

func socketPath(dataDir string) string { return filepath.Join(dataDir, socketFile) }

// resolveStore reads --store (c.Store) and returns the PostgreSQL DSN it
// names, or "" for the bbolt store. "" means bolt:<--data>. bolt:DIR makes
// DIR the data directory too (the bbolt store keeps its keys and files
// beside its file), so a --data other than the default must then name the
// same directory. postgres:// and postgresql:// name a PostgreSQL database;
// --data stays the node's directory for its local files.
func (c *config) resolveStore() (dsn string, err error) {
	switch s := c.Store; {
	case s == "":
		return "", nil
	case strings.HasPrefix(s, "bolt:"):
		dir := strings.TrimPrefix(s, "bolt:")
		if dir == "" {
			return "", fmt.Errorf("--store %q: want bolt:DIR", s)
		}
		if def := defaultConfig().DataDir; filepath.Clean(c.DataDir) != filepath.Clean(def) && filepath.Clean(c.DataDir) != filepath.Clean(dir) {
			return "", fmt.Errorf("--store %s and --data %s name different directories; a bolt store's data directory is its own", s, c.DataDir)
		}
		c.DataDir = dir
		return "", nil
	case isPostgres(s):
		return s, nil
	}
	return "", fmt.Errorf("--store: want bolt:DIR or postgres://USER@HOST:PORT/DB, not %q", redactDSN(c.Store))
}

func isPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// storeFlagCommands read --store after their own flags (resolveStore); the
// other commands take the store from LEDGERFEED_STORE before theirs, so
// that bolt:DIR moves their data directory too.
var storeFlagCommands = map[string]bool{"serve": true, "migrate": true, "keys": true}

// redactDSN hides a password in a URL-shaped store name before it is shown.
func redactDSN(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// openBackend opens the store serve uses: the bbolt store in dataDir, or
// the PostgreSQL store at dsn. A PostgreSQL store is used only once it
// implements all of ledger.Backend; until then this fails before
// connecting, naming what it lacks.
func openBackend(ctx context.Context, dataDir, dsn string, log *slog.Logger) (ledger.Backend, error) {
	if dsn == "" {
		st, err := openStore(dataDir, ledger.Options{Logger: log})
		if err != nil {
			return nil, err // not a nil *ledger.Store in a non-nil interface
		}
		return st, nil
	}
	if missing := missingMethods(reflect.TypeFor[*pgstore.Store](), reflect.TypeFor[ledger.Backend]()); len(missing) > 0 {
		return nil, fmt.Errorf("the PostgreSQL store cannot serve yet: it does not implement %s of ledger.Backend; use --store bolt:DIR", strings.Join(missing, ", "))
	}
	st, err := pgstore.Open(ctx, dsn, pgstore.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	// A database migrate-store is filling, or left half filled, is not
	// served: partners would read a partial copy.
	switch m, ok, err := st.ImportMarkerOf(); {
	case err != nil:
		st.Close()
		return nil, err
	case ok && m.State != "complete":
		st.Close()
		return nil, fmt.Errorf("the database holds a migrate-store copy of %s that has not completed (started %s): do not serve it; if no migrate-store is running, drop and recreate the database and run migrate-store again",
			m.Source, m.Started.Format(time.RFC3339))
	}
	b, ok := any(st).(ledger.Backend)
	if !ok { // missingMethods found none, so this does not happen
		st.Close()
		return nil, errors.New("the PostgreSQL store does not implement ledger.Backend")
	}
	return b, nil
}

// missingMethods returns the methods of interface iface that type t lacks
// or has with another signature, sorted.
func missingMethods(t, iface reflect.Type) []string {
	var out []string
	for i := range iface.NumMethod() {
		m := iface.Method(i)
		tm, ok := t.MethodByName(m.Name)
		// tm.Type has the receiver first; compare the rest.
		if !ok || !sameSignature(tm.Type, m.Type) {
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return out
}

func sameSignature(method, ifaceMethod reflect.Type) bool {
	if method.NumIn()-1 != ifaceMethod.NumIn() || method.NumOut() != ifaceMethod.NumOut() || method.IsVariadic() != ifaceMethod.IsVariadic() {
		return false
	}
	for i := range ifaceMethod.NumIn() {
		if method.In(i+1) != ifaceMethod.In(i) {
			return false
		}
	}
	for i := range ifaceMethod.NumOut() {
		if method.Out(i) != ifaceMethod.Out(i) {
			return false
		}
	}
	return true
}

// openStore opens the store in dataDir. The ledger's errors already say what
// to do (ErrDamaged: restore from a backup); this adds the directory.
func openStore(dataDir string, opts ledger.Options) (*ledger.Store, error) {
	st, err := ledger.Open(dataDir, opts)
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", dataDir, err)
	}
	return st, nil
}

// maintainer is what verify and backup need: the store itself, or a running
// server's admin socket when the server holds the store.
type maintainer interface {
	Verify(ctx context.Context, progress func(ledger.VerifyProgress)) (ledger.VerifyReport, error)
	Backup(ctx context.Context, w io.Writer) (ledger.BackupInfo, error)
	Close() error
}

// openMaintainer opens the store in dataDir, or, when a server holds it,
// a client of that server's admin socket. It never creates a store: a
// directory without one is an error, and so is a store (LEDGERFEED_STORE)
// in PostgreSQL, which has no file to check or copy.
func openMaintainer(store, dataDir string, stderr io.Writer) (maintainer, error) {
	if isPostgres(store) {
		return nil, errors.New("LEDGERFEED_STORE names a PostgreSQL database: verify and backup work on a bbolt store's file; back PostgreSQL up with its own tools (pg_dump, pg_basebackup)")
	}
	if _, err := os.Stat(filepath.Join(dataDir, dbFile)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no store in %s (no %s there; set --data or LEDGERFEED_DATA)", dataDir, dbFile)
		}
		return nil, err
	}
	st, err := openStore(dataDir, ledger.Options{})
	if err == nil {
		return st, nil
	}
	if !errors.Is(err, ledger.ErrLocked) {
		return nil, err
	}
	sock := socketPath(dataDir)
	if _, serr := os.Stat(sock); serr != nil {
		return nil, fmt.Errorf("%w, and no server's admin socket is at %s", err, sock)
	}
	fmt.Fprintf(stderr, "store in %s is held by a running server; using its admin socket %s\n", dataDir, sock)
	return server.NewAdminClient(sock), nil
}
