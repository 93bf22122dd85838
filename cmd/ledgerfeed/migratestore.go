package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ledgerfeed/ledgerfeed/feed"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/pgstore"
)

// Copy sizes: entries read from bbolt and COPYed per page, audit events
// per transaction, and how often progress is printed.
const (
	migrateEntryPage     = 10000
	migrateAuditBatch    = 50000
	migrateProgressEvery = 100000
)

// runMigrateStore copies a bbolt store (its file and the keys beside it)
// into an empty PostgreSQL database, then checks the copy there. See
// docs/postgres.md, "Moving a bbolt store to PostgreSQL".
//
// Order: the source is opened alone (a server holding it is refused); the
// target's schema is migrated and it must be empty; the source is
// verified; a marker record saying "copying" is written (with a second
// emptiness check, in one transaction); ledgers (one transaction each,
// entries by COPY), clients, the audit log, report records, report files,
// the signing keys and the cursor key are copied; every chain and seal is
// checked on the target and every count and head compared with the source;
// only then the marker says "complete". A run cut short leaves the marker
// at "copying": the next run refuses the database, telling to drop and
// recreate it.
func runMigrateStore(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate-store", "--from bolt:DIR --to postgres://USER@HOST:PORT/DB",
		"Copies a bbolt store — ledgers, entries (GDPR fields and erasures kept), seals,\n"+
			"clients, audit log, report jobs, schedules, tokens and files, the signing keys\n"+
			"and the cursor key — into an empty PostgreSQL database, then recomputes every\n"+
			"chain and verifies every seal there and compares it with the source. Stop the\n"+
			"server on DIR first. Progress goes to stderr, the summary to stdout.", stderr)
	var from, to string
	fs.StringVar(&from, "from", "", "the bbolt store to copy: bolt:DIR, its data directory (env LEDGERFEED_MIGRATE_FROM)")
	fs.StringVar(&to, "to", "", "the empty PostgreSQL database to copy into: postgres://USER@HOST:PORT/DB?… (env LEDGERFEED_MIGRATE_TO)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	// From the environment after parsing, so that -h never prints a DSN's
	// password as a default.
	if from == "" {
		from = os.Getenv("LEDGERFEED_MIGRATE_FROM")
	}
	if to == "" {
		to = os.Getenv("LEDGERFEED_MIGRATE_TO")
	}
	switch {
	case len(pos) > 0:
		return usagef(fs, "unexpected argument %q", pos[0])
	case from == "":
		return usagef(fs, "--from is required: bolt:DIR")
	case to == "":
		return usagef(fs, "--to is required: postgres://USER@HOST:PORT/DB")
	case !strings.HasPrefix(from, "bolt:") || from == "bolt:":
		return usagef(fs, "--from %q: want bolt:DIR", from)
	case !isPostgres(to):
		return usagef(fs, "--to %q: want postgres://USER@HOST:PORT/DB", redactDSN(to))
	}
	m := &storeMigration{dir: strings.TrimPrefix(from, "bolt:"), dsn: to, stdout: stdout, stderr: stderr, start: time.Now()}
	return m.run(ctx)
}

type storeMigration struct {
	dir, dsn       string
	stdout, stderr io.Writer
	start          time.Time

	src *ledger.Store
	dst *pgstore.Store

	keys      []byte              // the signing keys as a record value; nil when the store has none
	fileSums  map[string][32]byte // SHA-256 of each report file copied, by name
	cursorKey []byte              // nil when the store has none

	sum migrationSummary
}

// migrationSummary is what was copied, and checked.
type migrationSummary struct {
	Ledgers, Entries, GDPR, Erased, Dates, Seals, CloseTimes int64
	Clients, AuditEvents, Records, Files, FileBytes          int64
	SourceBytes, Keys                                        int64
	MissingFiles                                             int64 // report records whose file is gone
	CopyTime, VerifyTime                                     time.Duration
}

func (m *storeMigration) progressf(format string, args ...any) {
	fmt.Fprintf(m.stderr, "migrate-store: "+format+"\n", args...)
}

func (m *storeMigration) run(ctx context.Context) error {
	if err := m.openSource(); err != nil {
		return err
	}
	defer m.src.Close()
	if err := m.readKeys(); err != nil {
		return err
	}
	dst, err := pgstore.Open(ctx, m.dsn, pgstore.Options{})
	if err != nil {
		return fmt.Errorf("migrate-store: open the target: %w", err)
	}
	m.dst = dst
	defer dst.Close()
	if err := dst.ImportCheck(ctx); err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	m.progressf("verifying the source %s", m.dir)
	last := time.Now()
	rep, err := m.src.Verify(ctx, func(p ledger.VerifyProgress) {
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			m.progressf("verifying the source: %d entries checked", p.Entries)
		}
	})
	if err != nil {
		return fmt.Errorf("migrate-store: the source does not verify; nothing copied: %w", err)
	}
	m.progressf("source intact: %d ledgers, %d entries", rep.Ledgers, rep.Entries)

	if err := dst.ImportBegin(ctx, "bolt:"+m.absDir(), time.Now()); err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	copyStart := time.Now()
	if err := m.copyAll(ctx); err != nil {
		return fmt.Errorf("migrate-store: copy cut short; the target holds part of the store and is marked as an incomplete copy: drop and recreate it before running again: %w", err)
	}
	if err := dst.ImportAnalyze(ctx); err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	m.sum.CopyTime = time.Since(copyStart)
	m.progressf("copied %d entries in %s (%.0f entries/s); verifying the target", m.sum.Entries, m.sum.CopyTime.Round(time.Millisecond),
		float64(m.sum.Entries)/m.sum.CopyTime.Seconds())
	verifyStart := time.Now()
	if err := m.verifyTarget(ctx); err != nil {
		return fmt.Errorf("migrate-store: the copy does not match the source; the target is marked as an incomplete copy: drop and recreate it: %w", err)
	}
	m.sum.VerifyTime = time.Since(verifyStart)
	if err := dst.ImportFinish(ctx, time.Now()); err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	m.printSummary()
	return nil
}

func (m *storeMigration) absDir() string {
	if a, err := filepath.Abs(m.dir); err == nil {
		return a
	}
	return m.dir
}

// openSource opens the bbolt store alone, as verify and backup do when no
// server runs; a store a server holds is refused (migrate-store copies a
// store that nothing writes to), and so is a directory without one.
func (m *storeMigration) openSource() error {
	path := filepath.Join(m.dir, dbFile)
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("migrate-store: no bbolt store in %s (no %s there)", m.dir, dbFile)
	}
	if err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	m.sum.SourceBytes = fi.Size()
	st, err := ledger.Open(m.dir, ledger.Options{})
	if errors.Is(err, ledger.ErrLocked) {
		return fmt.Errorf("migrate-store: the bbolt store in %s is in use (a server holds it; its admin socket is %s): stop that server first — migrate-store copies a store that nothing writes to", m.dir, socketPath(m.dir))
	}
	if err != nil {
		return fmt.Errorf("migrate-store: open the source: %w", err)
	}
	m.src = st
	return nil
}

// copyAll copies everything, each part in its own transactions.
func (m *storeMigration) copyAll(ctx context.Context) error {
	if err := m.copyLedgers(ctx); err != nil {
		return err
	}
	if err := m.copyClients(ctx); err != nil {
		return err
	}
	if err := m.copyAudit(ctx); err != nil {
		return err
	}
	if err := m.copyRecords(ctx); err != nil {
		return err
	}
	if err := m.copyFiles(ctx); err != nil {
		return err
	}
	return m.copyKeys(ctx)
}

// eachLedger calls fn for every ledger of the source, by id.
func eachLedger(st ledger.Ledgers, fn func(l ledger.Ledger) error) error {
	after := ""
	for {
		ls, err := st.ListLedgers(after, 1000)
		if err != nil {
			return err
		}
		for _, l := range ls {
			if err := fn(l); err != nil {
				return err
			}
		}
		if len(ls) < 1000 {
			return nil
		}
		after = ls[len(ls)-1].ID
	}
}

func (m *storeMigration) copyLedgers(ctx context.Context) error {
	var done int64 // entries of the ledgers copied before this one
	nextReport := int64(migrateProgressEvery)
	return eachLedger(m.src, func(l ledger.Ledger) error {
		ex, err := m.src.ExportLedger(l.ID)
		if err != nil {
			return err
		}
		pages := func(t ledger.Topic, from uint64) ([]ledger.Entry, error) {
			return m.src.Entries(l.ID, t, from, migrateEntryPage, ledger.ReadOptions{GDPR: true})
		}
		st, err := m.dst.ImportLedger(ctx, ex, pages, func(n int64) {
			if done+n >= nextReport {
				m.progressf("%d entries copied (ledger %s)", done+n, l.ID)
				for nextReport <= done+n {
					nextReport += migrateProgressEvery
				}
			}
		})
		if err != nil {
			return err
		}
		done += st.Entries
		m.sum.Ledgers++
		m.sum.Entries += st.Entries
		m.sum.GDPR += st.GDPR
		m.sum.Erased += st.Erased
		m.sum.Dates += st.Dates
		m.sum.Seals += st.Seals
		m.sum.CloseTimes += st.CloseTimes
		return nil
	})
}

// allClients returns every client of a store, by id.
func allClients(st ledger.Clients) ([]ledger.Client, error) {
	var out []ledger.Client
	after := ""
	for {
		cs, err := st.ListClients(after, 1000)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
		if len(cs) < 1000 {
			return out, nil
		}
		after = cs[len(cs)-1].ID
	}
}

func (m *storeMigration) copyClients(ctx context.Context) error {
	cs, err := allClients(m.src)
	if err != nil {
		return err
	}
	if err := m.dst.ImportClients(ctx, cs); err != nil {
		return err
	}
	m.sum.Clients = int64(len(cs))
	return nil
}

// eachAuditBatch calls fn with the audit log's events in order, up to
// batch at a time.
func eachAuditBatch(st ledger.AuditLog, batch int, fn func([]ledger.AuditEvent) error) error {
	var after uint64
	for {
		evs, next, err := st.ListAudit(ledger.AuditFilter{}, after, batch)
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			if err := fn(evs); err != nil {
				return err
			}
		}
		if next == after {
			return nil
		}
		after = next
	}
}

func (m *storeMigration) copyAudit(ctx context.Context) error {
	return eachAuditBatch(m.src, migrateAuditBatch, func(evs []ledger.AuditEvent) error {
		if err := m.dst.ImportAudit(ctx, evs); err != nil {
			return err
		}
		m.sum.AuditEvents += int64(len(evs))
		return nil
	})
}

// allRecords returns every record of a kind, in key order.
func allRecords(st ledger.Records, kind ledger.RecordKind) ([]pgstore.ImportRecord, error) {
	var out []pgstore.ImportRecord
	err := st.ScanRecords(kind, "", func(key string, value []byte) error {
		out = append(out, pgstore.ImportRecord{Key: key, Value: append([]byte{}, value...)})
		return nil
	})
	return out, err
}

func (m *storeMigration) copyRecords(ctx context.Context) error {
	for _, kind := range ledger.RecordKinds {
		recs, err := allRecords(m.src, kind)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			continue
		}
		if err := m.dst.ImportRecords(ctx, kind, recs); err != nil {
			return err
		}
		m.sum.Records += int64(len(recs))
	}
	return nil
}

// copyKeys writes the signing keys and the cursor key as the records
// PostgreSQL nodes share, last: a target cut short before this has no
// keys of the source.
func (m *storeMigration) copyKeys(ctx context.Context) error {
	if m.keys != nil {
		if err := m.dst.ImportRecords(ctx, ledger.RecordSigningKeys, []pgstore.ImportRecord{{Key: keysRecordKey, Value: m.keys}}); err != nil {
			return err
		}
	}
	if m.cursorKey != nil {
		if err := m.dst.ImportRecords(ctx, ledger.RecordSecrets, []pgstore.ImportRecord{{Key: cursorKeyRecord, Value: m.cursorKey}}); err != nil {
			return err
		}
	}
	return nil
}

// readKeys reads the signing keys (DIR/keys) and the cursor key
// (DIR/cursor.key). A store that never served has neither: the first
// PostgreSQL node then makes them, as for a new store.
func (m *storeMigration) readKeys() error {
	rec, n, err := keyRingRecord(m.dir)
	if err != nil {
		return fmt.Errorf("migrate-store: signing keys in %s: %w", m.dir, err)
	}
	m.keys, m.sum.Keys = rec, int64(n)
	if rec == nil {
		m.progressf("no signing keys in %s (the store never served): the first PostgreSQL node makes them", m.dir)
	}
	b, err := os.ReadFile(filepath.Join(m.dir, feed.KeyFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		m.progressf("no cursor key in %s (the store never served): the first PostgreSQL node makes one", m.dir)
	case err != nil:
		return fmt.Errorf("migrate-store: cursor key: %w", err)
	case len(b) < cursorKeyLen:
		return fmt.Errorf("migrate-store: cursor key %s: %d bytes, want at least %d", filepath.Join(m.dir, feed.KeyFile), len(b), cursorKeyLen)
	default:
		m.cursorKey = b
	}
	return nil
}

func (m *storeMigration) printSummary() {
	s := m.sum
	total := time.Since(m.start)
	rate := 0.0
	if s.CopyTime > 0 {
		rate = float64(s.Entries) / s.CopyTime.Seconds()
	}
	fmt.Fprintf(m.stdout, "migrated bolt:%s to %s and verified it there\n", m.dir, redactDSN(m.dsn))
	fmt.Fprintf(m.stdout, "  ledgers       %d\n", s.Ledgers)
	fmt.Fprintf(m.stdout, "  entries       %d (%d with GDPR fields, %d erased; %d dates, %d seals, %d close times)\n", s.Entries, s.GDPR, s.Erased, s.Dates, s.Seals, s.CloseTimes)
	fmt.Fprintf(m.stdout, "  clients       %d\n", s.Clients)
	fmt.Fprintf(m.stdout, "  audit events  %d\n", s.AuditEvents)
	fmt.Fprintf(m.stdout, "  records       %d (report jobs, schedules, tokens, runs)\n", s.Records)
	fmt.Fprintf(m.stdout, "  files         %d report files, %s\n", s.Files, humanBytes(s.FileBytes))
	if s.MissingFiles > 0 {
		fmt.Fprintf(m.stdout, "  missing       %d report records name a file that is not in %s (their downloads answer alike: gone)\n",
			s.MissingFiles, filepath.Join(m.dir, "reports"))
	}
	fmt.Fprintf(m.stdout, "  keys          %d signing keys, cursor key %s\n", s.Keys, map[bool]string{true: "copied", false: "none"}[m.cursorKey != nil])
	fmt.Fprintf(m.stdout, "  source        %s data file\n", humanBytes(s.SourceBytes))
	fmt.Fprintf(m.stdout, "  took          %s (copy %s, %.0f entries/s; verify %s)\n", total.Round(time.Millisecond),
		s.CopyTime.Round(time.Millisecond), rate, s.VerifyTime.Round(time.Millisecond))
}
