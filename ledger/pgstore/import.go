package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Bulk import, for ledgerfeed migrate-store ONLY: it writes a copy of
// another store (the bbolt store) into an empty database as given —
// sequences, dates, balances, hashes, times and ids unchanged — instead of
// computing them as Append does. Nothing else may call it: it bypasses the
// rules that Append, PutLedger and the rest enforce, checking only that
// what it writes is a consistent ledger (ImportLedger's list).
//
// A copy runs ImportBegin (the database must be empty; it writes the
// marker record), the Import* calls, ImportAnalyze, then ImportFinish
// (marks the copy complete). Each Import* call is one transaction: a crash leaves whole
// ledgers, whole batches, and a marker that still says "copying", so the
// next ImportBegin refuses the database, saying it holds a copy that did
// not complete and must be dropped and recreated.

// ImportMarkerKey is the record (kind ledger.RecordSecrets) that says a
// database was filled by a copy, and whether the copy completed.
const ImportMarkerKey = "migrate-store"

// ImportMarker is the value of the marker record.
type ImportMarker struct {
	State     string    `json:"state"` // "copying", then "complete"
	Source    string    `json:"source"`
	Started   time.Time `json:"started"`
	Completed time.Time `json:"completed,omitzero"`
}

// ErrNotEmpty is returned by ImportBegin for a database that holds data.
var ErrNotEmpty = errors.New("target database is not empty")

// Contents counts what a database holds, for ImportBegin's refusal and a
// copy's summary.
type Contents struct {
	Ledgers, Entries, Clients, AuditEvents, Seals, Closes, Blobs int64
	Records                                                      map[ledger.RecordKind]int64
}

// Empty reports whether c counts nothing at all.
func (c Contents) Empty() bool {
	n := c.Ledgers + c.Entries + c.Clients + c.AuditEvents + c.Seals + c.Closes + c.Blobs
	for _, v := range c.Records {
		n += v
	}
	return n == 0
}

func (c Contents) String() string {
	var parts []string
	add := func(n int64, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(c.Ledgers, "ledgers")
	add(c.Entries, "entries")
	add(c.Clients, "clients")
	add(c.AuditEvents, "audit events")
	add(c.Seals, "seals")
	add(c.Closes, "close times")
	add(c.Blobs, "files")
	kinds := make([]string, 0, len(c.Records))
	for k := range c.Records {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		add(c.Records[ledger.RecordKind(k)], "records of kind "+k)
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func readContents(ctx context.Context, q querier) (Contents, error) {
	var c Contents
	var hasBlobs bool
	err := q.QueryRow(ctx, `SELECT (SELECT count(*) FROM ledgers), (SELECT count(*) FROM entries), (SELECT count(*) FROM clients),
		(SELECT count(*) FROM audit), (SELECT count(*) FROM seals), (SELECT count(*) FROM closes), to_regclass('blobs') IS NOT NULL`).
		Scan(&c.Ledgers, &c.Entries, &c.Clients, &c.AuditEvents, &c.Seals, &c.Closes, &hasBlobs)
	if err != nil {
		return c, err
	}
	if hasBlobs {
		if err := q.QueryRow(ctx, "SELECT count(*) FROM blobs").Scan(&c.Blobs); err != nil {
			return c, err
		}
	}
	rows, err := q.Query(ctx, "SELECT kind, count(*) FROM records GROUP BY kind")
	if err != nil {
		return c, err
	}
	defer rows.Close()
	c.Records = map[ledger.RecordKind]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return c, err
		}
		c.Records[ledger.RecordKind(k)] = n
	}
	return c, rows.Err()
}

// Contents counts what the database holds.
func (s *Store) Contents(ctx context.Context) (Contents, error) {
	if err := s.checkOpen(); err != nil {
		return Contents{}, err
	}
	return readContents(ctx, s.pool)
}

// ImportBegin starts a copy from source (a name for the marker): in one
// transaction it checks that the database holds no ledger, entry, client,
// audit event, seal, record (signing keys and the cursor key are records)
// or file, and writes the marker record saying "copying". A database that
// holds anything is refused with an error wrapping ErrNotEmpty that says
// what it holds and, when the marker is there, whether an earlier copy
// completed or was cut short (then: drop and recreate the database).
func (s *Store) ImportBegin(ctx context.Context, source string, now time.Time) error {
	if err := s.checkWrite(ctx); err != nil {
		return err
	}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
		if err := checkEmpty(ctx, tx); err != nil {
			return err
		}
		return putMarker(ctx, tx, ImportMarker{State: "copying", Source: source, Started: now.UTC()})
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "23505") {
		return fmt.Errorf("%w: another migrate-store began copying into it at the same time", ErrNotEmpty)
	}
	return err
}

// ImportCheck returns ImportBegin's refusal for a database that is not
// empty, without writing anything: a copy checks it before its long work.
func (s *Store) ImportCheck(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return checkEmpty(ctx, tx)
	})
}

// checkEmpty is ImportBegin's check.
func checkEmpty(ctx context.Context, tx pgx.Tx) error {
	c, err := readContents(ctx, tx)
	if err != nil {
		return err
	}
	if !c.Empty() {
		var raw []byte
		err := tx.QueryRow(ctx, "SELECT value FROM records WHERE kind = $1 AND key = $2", string(ledger.RecordSecrets), []byte(ImportMarkerKey)).Scan(&raw)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: it holds %s; migrate-store copies only into an empty database (create a new one, or drop and recreate this one if nothing in it is needed)", ErrNotEmpty, c)
		}
		if err != nil {
			return err
		}
		var m ImportMarker
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("%w: it holds %s and an unreadable migrate-store marker (%v)", ErrNotEmpty, c, err)
		}
		if m.State == "complete" {
			return fmt.Errorf("%w: it already holds a completed copy of %s (started %s, completed %s): %s; nothing to do",
				ErrNotEmpty, m.Source, m.Started.Format(time.RFC3339), m.Completed.Format(time.RFC3339), c)
		}
		return fmt.Errorf("%w: it holds a copy of %s that did not complete (started %s; it holds %s): do not serve it; drop and recreate the database (DROP DATABASE …; CREATE DATABASE …) and run migrate-store again",
			ErrNotEmpty, m.Source, m.Started.Format(time.RFC3339), c)
	}
	return nil
}

func putMarker(ctx context.Context, tx pgx.Tx, m ImportMarker) error {
	_, err := tx.Exec(ctx, `INSERT INTO records (kind, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value`, string(ledger.RecordSecrets), []byte(ImportMarkerKey), mustJSON(m))
	return err
}

// ImportAnalyze refreshes the planner's statistics (ANALYZE), which a bulk
// import leaves stale: without them PostgreSQL plans reads of the copied
// logs as if the tables were empty (a GDPR read then scans the gdpr table
// for every entry). Run it after the copy, before reading it back.
func (s *Store) ImportAnalyze(ctx context.Context) error {
	if err := s.checkWrite(ctx); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, "ANALYZE ledgers, heads, entries, entry_ids, dates, gdpr, gdpr_keys, audit, records, closes, seals"); err != nil {
		return fmt.Errorf("import: analyze: %w", err)
	}
	return nil
}

// ImportFinish marks the copy complete.
func (s *Store) ImportFinish(ctx context.Context, now time.Time) error {
	if err := s.checkWrite(ctx); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var raw []byte
		if err := tx.QueryRow(ctx, "SELECT value FROM records WHERE kind = $1 AND key = $2 FOR UPDATE",
			string(ledger.RecordSecrets), []byte(ImportMarkerKey)).Scan(&raw); err != nil {
			return fmt.Errorf("read the marker: %w", err)
		}
		var m ImportMarker
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("read the marker: %w", err)
		}
		if m.State != "copying" {
			return fmt.Errorf("the marker says %q, not copying", m.State)
		}
		m.State, m.Completed = "complete", now.UTC()
		return putMarker(ctx, tx, m)
	})
	if err != nil {
		return fmt.Errorf("import finish: %w", err)
	}
	return nil
}

// ImportMarkerOf returns the database's marker record (ok false: none).
func (s *Store) ImportMarkerOf() (m ImportMarker, ok bool, err error) {
	raw, err := s.GetRecord(ledger.RecordSecrets, ImportMarkerKey)
	if errors.Is(err, ledger.ErrNotFound) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	return m, true, json.Unmarshal(raw, &m)
}

// EntryPages returns a topic's entries from sequence from on, a page at a
// time, with their GDPR fields (ledger.ReadOptions{GDPR: true}); an empty
// page ends the log.
type EntryPages func(topic ledger.Topic, from uint64) ([]ledger.Entry, error)

// ImportStats counts what ImportLedger wrote.
type ImportStats struct {
	Entries    int64 // both topics
	GDPR       int64 // entries with GDPR fields (not erased)
	Erased     int64 // entries whose GDPR fields were erased
	Dates      int64 // (topic, date) ranges
	Seals      int64
	CloseTimes int64
}

// ImportLedger writes one ledger, both topic logs with every entry exactly
// as given, its dates, close times and seals, in one transaction. It checks
// what it writes and writes nothing when a check fails: each entry names
// this ledger, topic and currency; sequences run 1, 2, 3 … without gaps;
// balanceBefore is the previous balanceAfter (0 first) and balanceAfter =
// balanceBefore + amount without overflow; each hash is
// ledger.ChainHash(previous hash, entry); dates do not decrease and none is
// after the open date; GDPR fields only on entries that had them; seals
// are of closed dates in order. Erased GDPR fields (HasGDPR without GDPR)
// stay erased. progress, when not nil, is called after each page with the
// entries written so far in this ledger.
func (s *Store) ImportLedger(ctx context.Context, l ledger.LedgerExport, pages EntryPages, progress func(n int64)) (ImportStats, error) {
	var st ImportStats
	if err := s.checkWrite(ctx); err != nil {
		return st, err
	}
	lg := l.Ledger
	if err := lg.Validate(); err != nil {
		return st, fmt.Errorf("import ledger %s: %w", lg.ID, err)
	}
	cfg := lg
	cfg.OpenDate, cfg.CreatedAt, cfg.UpdatedAt = 0, time.Time{}, time.Time{}
	config, err := json.Marshal(cfg)
	if err != nil {
		return st, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		st = ImportStats{}
		var num int32
		if err := tx.QueryRow(ctx, `INSERT INTO ledgers (id, config, currency, time_zone, cutoff, open_date, has_entries, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING num`,
			lg.ID, config, lg.Currency, lg.TimeZone, lg.Cutoff, int32(lg.OpenDate), l.HasEntries,
			lg.CreatedAt.UTC(), lg.UpdatedAt.UTC()).Scan(&num); err != nil {
			return err
		}
		var lastDate ledger.Date
		for _, topic := range ledger.Topics {
			h, err := importTopic(ctx, tx, num, &lg, topic, pages, &st, progress)
			if err != nil {
				return fmt.Errorf("%s: %w", topic, err)
			}
			if h.Sequence > 0 && !l.HasEntries {
				return fmt.Errorf("%s has entries but the ledger says it has none", topic)
			}
			lastDate = max(lastDate, h.LedgerDate)
			if _, err := tx.Exec(ctx, "INSERT INTO heads (num, topic, seq, balance, hash, ledger_date) VALUES ($1, $2, $3, $4, $5, $6)",
				num, topicCode(topic), int64(h.Sequence), h.Balance, h.Hash[:], int32(h.LedgerDate)); err != nil {
				return err
			}
		}
		if lastDate > lg.OpenDate {
			return fmt.Errorf("an entry is dated %s, after the open date %s", lastDate, lg.OpenDate)
		}
		// The idempotency keys and date ranges follow from the entries.
		if _, err := tx.Exec(ctx, `INSERT INTO entry_ids (entry_id, num, topic, seq) SELECT entry_id, num, topic, seq FROM entries WHERE num = $1`, num); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO dates (num, topic, ledger_date, first_seq, last_seq)
			SELECT num, topic, ledger_date, min(seq), max(seq) FROM entries WHERE num = $1 GROUP BY num, topic, ledger_date`, num)
		if err != nil {
			return err
		}
		st.Dates = tag.RowsAffected()
		if len(l.Closes) > 0 {
			opens := make([]int32, len(l.Closes))
			ats := make([]int64, len(l.Closes))
			for i, c := range l.Closes {
				if c.OpenDate == 0 || c.OpenDate > lg.OpenDate {
					return fmt.Errorf("a close time moves the open date to %s, after the ledger's open date %s", c.OpenDate, lg.OpenDate)
				}
				opens[i], ats[i] = int32(c.OpenDate), c.At.UnixMicro()
			}
			if _, err := tx.Exec(ctx, `INSERT INTO closes (num, open_date, closed_us) SELECT $1, * FROM unnest($2::integer[], $3::bigint[])`, num, opens, ats); err != nil {
				return err
			}
			st.CloseTimes = int64(len(l.Closes))
		}
		if len(l.Seals) > 0 {
			dates := make([]int32, len(l.Seals))
			bodies := make([]string, len(l.Seals))
			for i, sl := range l.Seals {
				switch {
				case sl.Seal == "":
					return fmt.Errorf("seal of %s is empty", sl.Date)
				case sl.Date >= lg.OpenDate:
					return fmt.Errorf("seal of %s: the date is not closed (open date %s)", sl.Date, lg.OpenDate)
				case i > 0 && sl.Date != l.Seals[i-1].Date+1:
					return fmt.Errorf("seal of %s follows the seal of %s: seals are of consecutive dates", sl.Date, l.Seals[i-1].Date)
				}
				dates[i] = int32(sl.Date)
				bodies[i] = mustJSON(sealRow{Seal: sl.Seal, SealedAt: sl.SealedAt, Funds: sl.Funds, Fees: sl.Fees})
			}
			if _, err := tx.Exec(ctx, "INSERT INTO seals (num, ledger_date, body) SELECT $1, * FROM unnest($2::integer[], $3::json[])", num, dates, bodies); err != nil {
				return err
			}
			st.Seals = int64(len(l.Seals))
		}
		return nil
	})
	if err != nil {
		return ImportStats{}, fmt.Errorf("import ledger %s: %w", lg.ID, err)
	}
	return st, nil
}

// importTopic COPYs one topic log page by page, checking each entry
// against the one before, and returns the head after the last. A goroutine
// reads, checks and prepares the next page (sealing GDPR fields) while the
// current one is COPYed.
func importTopic(ctx context.Context, tx pgx.Tx, num int32, l *ledger.Ledger, topic ledger.Topic, pages EntryPages,
	st *ImportStats, progress func(int64)) (ledger.Head, error) {
	type prepared struct {
		w            *rows
		n            int
		head         ledger.Head
		gdpr, erased int64
		err          error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan prepared, 1)
	go func() {
		defer close(ch)
		var h ledger.Head
		for {
			p := prepared{}
			p.w, p.n, p.gdpr, p.erased, p.err = prepareImport(num, l, topic, pages, &h)
			p.head = h
			if p.n == 0 && p.err == nil {
				return
			}
			select {
			case ch <- p:
			case <-ctx.Done():
				return
			}
			if p.err != nil {
				return
			}
		}
	}()
	var h ledger.Head
	for p := range ch {
		if p.err != nil {
			return h, p.err
		}
		w := p.w
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"entries"}, entryColNames, w.copySource(num)); err != nil {
			return h, err
		}
		if len(w.gSeq) > 0 {
			src := func(key bool) pgx.CopyFromSource {
				return pgx.CopyFromSlice(len(w.gSeq), func(i int) ([]any, error) {
					v := w.gSealed[i]
					if key {
						v = w.gKey[i]
					}
					return []any{num, w.gTopic[i], w.gSeq[i], v}, nil
				})
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"gdpr"}, []string{"num", "topic", "seq", "sealed"}, src(false)); err != nil {
				return h, err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"gdpr_keys"}, []string{"num", "topic", "seq", "key"}, src(true)); err != nil {
				return h, err
			}
		}
		h = p.head
		st.Entries += int64(p.n)
		st.GDPR += p.gdpr
		st.Erased += p.erased
		if progress != nil {
			progress(st.Entries)
		}
	}
	return h, ctx.Err()
}

// prepareImport reads the page after h, checks it and turns it into rows,
// advancing h. n is 0 at the end of the log.
func prepareImport(num int32, l *ledger.Ledger, topic ledger.Topic, pages EntryPages, h *ledger.Head) (w *rows, n int, gdpr, erased int64, err error) {
	page, err := pages(topic, h.Sequence+1)
	if err != nil || len(page) == 0 {
		return nil, 0, 0, 0, err
	}
	tc := topicCode(topic)
	w = &rows{dateIndex: map[dateKey]int{}}
	for i := range page {
		e := &page[i]
		if err := checkImported(l, topic, h, e); err != nil {
			return nil, 0, 0, 0, err
		}
		var g ledger.GDPR
		switch {
		case e.GDPR != nil && !e.HasGDPR:
			return nil, 0, 0, 0, fmt.Errorf("sequence %d: GDPR fields on an entry posted without them", e.Sequence)
		case e.GDPR != nil:
			if g = *e.GDPR; g == (ledger.GDPR{}) {
				return nil, 0, 0, 0, fmt.Errorf("sequence %d: empty GDPR fields", e.Sequence)
			}
			gdpr++
		case e.HasGDPR:
			erased++
		}
		// w.add seals g when e.HasGDPR; an erased entry (no fields) keeps
		// HasGDPR and gets no GDPR rows, as erasure leaves it.
		e2 := *e
		if e.GDPR == nil {
			e2.HasGDPR = false
		}
		if err := w.add(num, tc, &e2, g); err != nil {
			return nil, 0, 0, 0, err
		}
		w.hasGDPR[len(w.hasGDPR)-1] = e.HasGDPR
		h.Sequence, h.Balance, h.Hash, h.LedgerDate = e.Sequence, e.BalanceAfter, e.Hash, e.LedgerDate
	}
	return w, len(page), gdpr, erased, nil
}

// checkImported checks e against the head before it.
func checkImported(l *ledger.Ledger, topic ledger.Topic, h *ledger.Head, e *ledger.Entry) error {
	switch {
	case e.LedgerID != l.ID || e.Topic != topic:
		return fmt.Errorf("sequence %d names ledger %s topic %s", e.Sequence, e.LedgerID, e.Topic)
	case e.Sequence != h.Sequence+1:
		return fmt.Errorf("sequence %d follows %d: sequences must run without gaps", e.Sequence, h.Sequence)
	case e.Currency != l.Currency:
		return fmt.Errorf("sequence %d: currency %s, the ledger's is %s", e.Sequence, e.Currency, l.Currency)
	case e.BalanceBefore != h.Balance:
		return fmt.Errorf("sequence %d: balanceBefore %d, the previous balanceAfter is %d", e.Sequence, e.BalanceBefore, h.Balance)
	case e.Amount > 0 && e.BalanceBefore > math.MaxInt64-e.Amount, e.Amount < 0 && e.BalanceBefore < math.MinInt64-e.Amount:
		return fmt.Errorf("sequence %d: balance overflows", e.Sequence)
	case e.BalanceAfter != e.BalanceBefore+e.Amount:
		return fmt.Errorf("sequence %d: balanceAfter %d is not balanceBefore %d + amount %d", e.Sequence, e.BalanceAfter, e.BalanceBefore, e.Amount)
	case e.LedgerDate == 0 || e.LedgerDate < h.LedgerDate:
		return fmt.Errorf("sequence %d: date %s before the previous entry's %s", e.Sequence, e.LedgerDate, h.LedgerDate)
	case e.Time.IsZero():
		return fmt.Errorf("sequence %d: no time", e.Sequence)
	case ledger.ChainHash(h.Hash, e) != e.Hash:
		return fmt.Errorf("sequence %d: the hash does not chain from the previous entry's", e.Sequence)
	}
	return nil
}

// ImportClients writes clients exactly as given (secret hashes, grants,
// timestamps), in one transaction.
func (s *Store) ImportClients(ctx context.Context, clients []ledger.Client) error {
	if err := s.checkWrite(ctx); err != nil {
		return err
	}
	for i := range clients {
		if err := clients[i].Validate(); err != nil {
			return fmt.Errorf("import client %s: %w", clients[i].ID, err)
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"clients"}, []string{"id", "body"},
			pgx.CopyFromSlice(len(clients), func(i int) ([]any, error) {
				return []any{clients[i].ID, mustJSON(clients[i])}, nil
			}))
		return err
	})
	if err != nil {
		return fmt.Errorf("import clients: %w", err)
	}
	return nil
}

// ImportAudit appends audit events with their own sequences, which must
// continue the log without a gap (the first after the last stored), in one
// transaction.
func (s *Store) ImportAudit(ctx context.Context, events []ledger.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	if err := s.checkWrite(ctx); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var head int64
		if err := tx.QueryRow(ctx, "SELECT seq FROM audit_head FOR UPDATE").Scan(&head); err != nil {
			return err
		}
		for i, ev := range events {
			if want := uint64(head) + uint64(i) + 1; ev.Sequence != want {
				return fmt.Errorf("event %d has sequence %d, want %d: the audit log must run without gaps", i, ev.Sequence, want)
			}
			if ev.Time.IsZero() {
				return fmt.Errorf("event %d has no time", ev.Sequence)
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit"}, []string{"seq", "client_id", "action", "body"},
			pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
				ev := events[i]
				return []any{int64(ev.Sequence), ev.ClientID, ev.Action, mustJSON(ev)}, nil
			})); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE audit_head SET seq = $1", int64(events[len(events)-1].Sequence))
		return err
	})
	if err != nil {
		return fmt.Errorf("import audit: %w", err)
	}
	return nil
}

// ImportRecord is one record to import.
type ImportRecord struct {
	Key   string
	Value []byte
}

// ImportRecords writes records of one kind as given, in one transaction.
// The marker's key is refused.
func (s *Store) ImportRecords(ctx context.Context, kind ledger.RecordKind, recs []ImportRecord) error {
	if err := checkRecordKind(kind); err != nil {
		return err
	}
	for _, r := range recs {
		if err := checkRecordKey(r.Key); err != nil {
			return err
		}
		if kind == ledger.RecordSecrets && r.Key == ImportMarkerKey {
			return fmt.Errorf("%w: record %s/%s is migrate-store's own", ledger.ErrInvalid, kind, r.Key)
		}
	}
	if err := s.checkWrite(ctx); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"records"}, []string{"kind", "key", "value"},
			pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) {
				v := recs[i].Value
				if v == nil {
					v = []byte{}
				}
				return []any{string(kind), []byte(recs[i].Key), v}, nil
			}))
		return err
	})
	if err != nil {
		return fmt.Errorf("import records %s: %w", kind, err)
	}
	return nil
}
