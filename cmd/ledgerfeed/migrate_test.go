package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/pgstore"
)

// TestMain stops the private PostgreSQL server of the tests that start one.
func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConfig_ResolveStore(t *testing.T) {
	for _, tc := range []struct {
		name, store, data string
		wantDSN, wantData string
		wantErr           string // "" = no error
	}{
		{name: "default is bolt in --data", data: "/d", wantData: "/d"},
		{name: "default data dir", data: "./data", wantData: "./data"},
		{name: "bolt dir becomes the data dir", store: "bolt:/srv/lf", data: "./data", wantData: "/srv/lf"},
		{name: "bolt and the same --data", store: "bolt:/srv/lf", data: "/srv/lf/", wantData: "/srv/lf"},
		{name: "bolt and another --data", store: "bolt:/srv/lf", data: "/other", wantErr: "name different directories"},
		{name: "bolt without a dir", store: "bolt:", data: "./data", wantErr: "want bolt:DIR"},
		{name: "postgres keeps --data", store: "postgres://lf@db:5432/lf?sslmode=disable", data: "/node", wantDSN: "postgres://lf@db:5432/lf?sslmode=disable", wantData: "/node"},
		{name: "postgresql scheme", store: "postgresql://lf@db/lf", data: "./data", wantDSN: "postgresql://lf@db/lf", wantData: "./data"},
		{name: "bare directory", store: "./data", data: "./data", wantErr: "want bolt:DIR or postgres://"},
		{name: "other scheme, password hidden", store: "mysql://lf:hunter2@db/lf", data: "./data", wantErr: "mysql://lf:xxxxx@db/lf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.Store, cfg.DataDir = tc.store, tc.data
			dsn, err := cfg.resolveStore()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("err shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if dsn != tc.wantDSN || filepath.Clean(cfg.DataDir) != filepath.Clean(tc.wantData) {
				t.Fatalf("got dsn %q data %q, want %q %q", dsn, cfg.DataDir, tc.wantDSN, tc.wantData)
			}
		})
	}
}

func TestConfig_StoreEnvThenFlag(t *testing.T) {
	cfg := defaultConfig()
	if err := cfg.loadEnv(func(k string) string {
		if k == "LEDGERFEED_STORE" {
			return "bolt:/env"
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	if cfg.Store != "bolt:/env" {
		t.Fatalf("after env: Store = %q", cfg.Store)
	}
	fs := newFlagSet("serve", "", "", &syncBuffer{})
	cfg.serveFlags(fs)
	if err := fs.Parse([]string{"--store", "postgres://db/lf"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Store != "postgres://db/lf" {
		t.Fatalf("after flag: Store = %q", cfg.Store)
	}
}

// --store bolt:DIR serves the bbolt store in DIR, with its keys and
// credentials beside it, and leaves the default ./data alone.
func TestServe_StoreBolt(t *testing.T) {
	dir := t.TempDir()
	_, before := os.Stat("data")
	s := startServe(t, "./data", "--store", "bolt:"+dir)
	if code, body := s.get(t, "/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{dbFile, "admin-credentials", "cursor.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not in the bolt dir: %v", f, err)
		}
	}
	if _, err := os.Stat("data"); errors.Is(before, os.ErrNotExist) && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("./data was made: %v", err)
	}
}

func TestServe_StoreBad(t *testing.T) {
	_, stderr, err := runCmd(t, "serve", "--data", t.TempDir(), "--store", "sqlite:x.db")
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(stderr, "want bolt:DIR or postgres://") {
		t.Fatalf("err = %v, stderr %q; want a usage error naming the forms", err, stderr)
	}
}

// Until the PostgreSQL store implements all of ledger.Backend, serve with
// it fails at once, before connecting, naming each method it lacks; once it
// does, serve runs on it.
func TestServe_StorePostgres(t *testing.T) {
	missing := missingMethods(reflect.TypeFor[*pgstore.Store](), reflect.TypeFor[ledger.Backend]())
	if len(missing) > 0 {
		dir := t.TempDir()
		start := time.Now()
		// Nothing listens on port 1: a connection attempt would fail differently.
		_, _, err := runCmd(t, "serve", "--data", dir, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
			"--store", "postgres://lf@127.0.0.1:1/lf?connect_timeout=5")
		if err == nil || !strings.Contains(err.Error(), "PostgreSQL store cannot serve yet") {
			t.Fatalf("err = %v, want the PostgreSQL store refused", err)
		}
		for _, m := range missing {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("error does not name %s: %v", m, err)
			}
		}
		if strings.Contains(err.Error(), "Append,") || strings.Contains(err.Error(), "Head,") {
			t.Errorf("error names methods the store has: %v", err)
		}
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("took %v: it should fail before connecting", took)
		}
		if _, err := os.Stat(filepath.Join(dir, dbFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a bolt store was made in --data: %v", err)
		}
		return
	}
	// The demo served from PostgreSQL answers as the one served from bbolt.
	pg := demoAnswers(t, "--store", pgtest.Start(t))
	bolt := demoAnswers(t)
	if pg != bolt {
		t.Fatalf("answers differ:\npostgres: %s\nbolt:     %s", pg, bolt)
	}
}

// demoAnswers serves the demo on a new data directory (and the store extra
// names) and returns the ledger list and the first feed page of a demo
// ledger, without what differs from run to run (times, cursors, hashes).
func demoAnswers(t *testing.T, extra ...string) string {
	t.Helper()
	s, out := serveWithStdout(t, t.TempDir(), append([]string{"--demo", "--demo-secret", "demo-secret-0123456789"}, extra...)...)
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.text(), "includeGDPRSensitiveData=true"); {
		if time.Now().After(deadline) {
			t.Fatalf("demo not seeded within 60s\nstdout:\n%s\nstderr:\n%s", out.text(), s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, tok := saToken(t, s.httpAddr, "demo-partner", "demo-secret-0123456789")
	if code != 200 {
		t.Fatalf("token: %d", code)
	}
	code, ledgers := saDo(t, "GET", "http://"+s.httpAddr+"/settlement/v1/ledgers", tok, "")
	if code != 200 {
		t.Fatalf("ledgers: %d %s", code, ledgers)
	}
	code, body := saDo(t, "GET", "http://"+s.httpAddr+"/report/v2/ledgers/302321/funds/feed?pageSize=200", tok, "")
	if code != 200 {
		t.Fatalf("feed: %d %s", code, body)
	}
	var page struct {
		Items []struct {
			PSPReference string `json:"pspReference"`
			Reference    string `json:"reference"`
			EntryType    string `json:"entryType"`
			Amount       int64  `json:"amount"`
			BalanceAfter int64  `json:"balanceAfter"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil || len(page.Items) == 0 {
		t.Fatalf("feed page: %v, %d items: %s", err, len(page.Items), body)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s %+v", ledgers, page.Items)
}

func TestMigrate_Bolt(t *testing.T) {
	dir := t.TempDir()
	stdout, _, err := runCmd(t, "migrate", "--store", "bolt:"+dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "nothing to migrate") || !strings.Contains(stdout, dir) {
		t.Fatalf("stdout %q", stdout)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("migrate wrote into the bolt dir: %v", ents)
	}
}

func TestMigrate_Postgres(t *testing.T) {
	dsn := pgtest.Start(t)
	want := pgstore.SchemaVersion()

	stdout, _, err := runCmd(t, "migrate", "--store", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if w := "from version 0 to " + strconv.Itoa(want); !strings.Contains(stdout, w) {
		t.Fatalf("first run: stdout %q, want %q", stdout, w)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n, max int
	if err := conn.QueryRow(ctx, "SELECT count(*), max(version) FROM schema_migrations").Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != want || max != want {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, max, want)
	}

	// Again: nothing left, nothing applied twice.
	stdout, _, err = runCmd(t, "migrate", "--store", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if w := "at version " + strconv.Itoa(want) + ": nothing to migrate"; !strings.Contains(stdout, w) {
		t.Fatalf("second run: stdout %q, want %q", stdout, w)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != want {
		t.Fatalf("after the second run: %d rows, %v", n, err)
	}

	// The store opens on the migrated schema and works.
	st, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.PutLedger(ctx, ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"}); err != nil {
		t.Fatal(err)
	}
	if l, err := st.GetLedger("302321"); err != nil || l.ID != "302321" {
		t.Fatalf("GetLedger = %+v, %v", l, err)
	}
}

func TestMigrate_PostgresUnreachable(t *testing.T) {
	_, _, err := runCmd(t, "migrate", "--store", "postgres://lf@127.0.0.1:1/lf?connect_timeout=5")
	if err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("err = %v, want a migrate error", err)
	}
}

// partialStore has one method of ledger.Backend right and one wrong.
type partialStore struct{}

func (partialStore) Head(string, ledger.Topic) (ledger.Head, error) { return ledger.Head{}, nil }
func (partialStore) Close()                                         {} // Backend's returns error

func TestMissingMethods(t *testing.T) {
	iface := reflect.TypeFor[ledger.Backend]()
	if m := missingMethods(reflect.TypeFor[*ledger.Store](), iface); len(m) != 0 {
		t.Fatalf("*ledger.Store lacks %v", m)
	}
	m := missingMethods(reflect.TypeFor[partialStore](), iface)
	if len(m) != iface.NumMethod()-1 {
		t.Fatalf("missing %d of %d: %v", len(m), iface.NumMethod(), m)
	}
	for _, name := range m {
		if name == "Head" {
			t.Fatalf("Head reported missing: %v", m)
		}
	}
	if !strings.Contains(strings.Join(m, ","), "Close") {
		t.Fatalf("Close with another signature not reported: %v", m)
	}
}

// LEDGERFEED_STORE=bolt:DIR moves the data directory of the commands that
// have no --store flag; a PostgreSQL one is refused by verify and backup,
// which work on the bbolt file.
func TestStoreEnv_OtherCommands(t *testing.T) {
	dir := t.TempDir()
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutLedger(context.Background(), ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	t.Setenv("LEDGERFEED_DATA", "")
	t.Setenv("LEDGERFEED_STORE", "bolt:"+dir)
	stdout, stderr, err := runCmd(t, "verify")
	if err != nil || !strings.Contains(stdout, "ok: 1 ledgers") {
		t.Fatalf("verify with LEDGERFEED_STORE=bolt:DIR: %v\nstdout %q\nstderr %q", err, stdout, stderr)
	}
	t.Setenv("LEDGERFEED_DATA", t.TempDir())
	if _, _, err := runCmd(t, "verify"); err == nil || !strings.Contains(err.Error(), "different directories") {
		t.Fatalf("verify with another LEDGERFEED_DATA: %v", err)
	}

	t.Setenv("LEDGERFEED_DATA", dir)
	t.Setenv("LEDGERFEED_STORE", "postgres://lf@127.0.0.1:1/lf")
	for _, args := range [][]string{{"verify"}, {"backup", filepath.Join(t.TempDir(), "b.tar")}} {
		if _, _, err := runCmd(t, args...); err == nil || !strings.Contains(err.Error(), "PostgreSQL") {
			t.Errorf("%s with a PostgreSQL store: %v", args[0], err)
		}
	}
}
