package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Why a reader never sees sequence N before N−1: every append to a ledger
// runs in one transaction that holds the ledger's row lock (FOR NO KEY
// UPDATE) from before it reads the head until after it commits, so the
// transactions that write a topic's sequences commit one after another in
// sequence order. PostgreSQL makes a transaction visible (ProcArray) before
// it releases its locks, so the transaction writing N+1, which could only
// read the head after N's lock was released, commits strictly after N is
// visible: every snapshot that sees N+1 also sees N. Each read below is one
// statement, so one snapshot. TestAppend_ReadersSeeNoGap checks it with
// writers on several pools and a reader that fails on the first gap.

func topicCode(t ledger.Topic) int16 {
	if t == ledger.TopicFees {
		return 2
	}
	return 1
}

func notFound(id string) error { return fmt.Errorf("ledger %s: %w", id, ledger.ErrNotFound) }

// Head returns the end of a topic log.
func (s *Store) Head(ledgerID string, topic ledger.Topic) (ledger.Head, error) {
	if _, err := ledger.ParseTopic(string(topic)); err != nil {
		return ledger.Head{}, err
	}
	if err := s.checkOpen(); err != nil {
		return ledger.Head{}, err
	}
	var (
		h          ledger.Head
		seq        int64
		hash       []byte
		date, open int32
	)
	err := s.pool.QueryRow(context.Background(), `SELECT h.seq, h.balance, h.hash, h.ledger_date, l.open_date
		FROM ledgers l JOIN heads h ON h.num = l.num AND h.topic = $2 WHERE l.id = $1`, ledgerID, topicCode(topic)).
		Scan(&seq, &h.Balance, &hash, &date, &open)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, notFound(ledgerID)
	}
	if err != nil {
		return h, err
	}
	h.Sequence, h.LedgerDate, h.OpenDate = uint64(seq), ledger.Date(date), ledger.Date(open)
	copy(h.Hash[:], hash)
	return h, nil
}

const entryCols = `e.seq, e.entry_id, e.psp_reference, e.time_us, e.ledger_date, e.entry_type, e.reference,
	e.amount, e.balance_before, e.balance_after, e.recipient_handle, e.hash, e.has_gdpr`

// scanEntry scans entryCols into e, and with withGDPR also the sealed GDPR
// value and its key (nil when none or erased), which it returns.
func scanEntry(row pgx.Row, e *ledger.Entry, withGDPR bool) (sealed, key []byte, err error) {
	var (
		seq, timeUS int64
		date        int32
		hash        []byte
	)
	dst := []any{&seq, &e.EntryID, &e.PSPReference, &timeUS, &date, &e.EntryType, &e.Reference,
		&e.Amount, &e.BalanceBefore, &e.BalanceAfter, &e.RecipientHandle, &hash, &e.HasGDPR}
	if withGDPR {
		dst = append(dst, &sealed, &key)
	}
	if err := row.Scan(dst...); err != nil {
		return nil, nil, err
	}
	e.Sequence, e.LedgerDate = uint64(seq), ledger.Date(date)
	e.Time = time.UnixMicro(timeUS).UTC()
	copy(e.Hash[:], hash)
	return sealed, key, nil
}

// openEntryGDPR decrypts the GDPR fields scanned with e (nil: erased).
func openEntryGDPR(e *ledger.Entry, num int32, sealed, key []byte) (*ledger.GDPR, error) {
	if !e.HasGDPR {
		return nil, nil
	}
	g, err := openGDPR(key, sealed, gdprAAD(num, topicCode(e.Topic), e.Sequence))
	if err != nil {
		return nil, fmt.Errorf("ledger %s %s sequence %d: %w", e.LedgerID, e.Topic, e.Sequence, err)
	}
	return g, nil
}

// Entries returns up to limit entries of a topic log with sequence ≥ from,
// in sequence order. An empty answer means the log ends before from.
func (s *Store) Entries(ledgerID string, topic ledger.Topic, from uint64, limit int, opt ledger.ReadOptions) ([]ledger.Entry, error) {
	if _, err := ledger.ParseTopic(string(topic)); err != nil {
		return nil, err
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 0
	}
	num, currency, err := s.fixedLedger(ledgerID)
	if err != nil || num == 0 {
		return nil, err // not found, or no entries yet
	}
	gdprCols, gdprJoin := "", ""
	if opt.GDPR {
		gdprCols = ", g.sealed, k.key"
		gdprJoin = ` LEFT JOIN gdpr g ON g.num = e.num AND g.topic = e.topic AND g.seq = e.seq
			LEFT JOIN gdpr_keys k ON k.num = e.num AND k.topic = e.topic AND k.seq = e.seq`
	}
	rows, err := s.pool.Query(context.Background(), `SELECT `+entryCols+gdprCols+` FROM entries e`+gdprJoin+`
		WHERE e.num = $1 AND e.topic = $2 AND e.seq >= $3 ORDER BY e.seq LIMIT $4`,
		num, topicCode(topic), int64(max(from, 1)), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledger.Entry
	for rows.Next() {
		if out == nil {
			out = make([]ledger.Entry, 0, limit)
		}
		out = append(out, ledger.Entry{LedgerID: ledgerID, Topic: topic, Currency: currency})
		e := &out[len(out)-1]
		sealed, key, err := scanEntry(rows, e, opt.GDPR)
		if err != nil {
			return nil, err
		}
		if opt.GDPR {
			if e.GDPR, err = openEntryGDPR(e, num, sealed, key); err != nil {
				return nil, err
			}
		}
	}
	return out, rows.Err()
}

// fixedLedger returns a ledger's internal number and currency once it has
// entries (both are fixed from then on, and remembered); num is 0 for a
// ledger without entries, and the error ErrNotFound for no ledger.
func (s *Store) fixedLedger(id string) (num int32, currency string, err error) {
	if v, ok := s.fixed.Load(id); ok {
		f := v.(fixedLedger)
		return f.num, f.currency, nil
	}
	var has bool
	err = s.pool.QueryRow(context.Background(), "SELECT num, currency, has_entries FROM ledgers WHERE id = $1", id).Scan(&num, &currency, &has)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", notFound(id)
	}
	if err != nil || !has {
		return 0, "", err
	}
	s.fixed.Store(id, fixedLedger{num, currency})
	return num, currency, nil
}

type fixedLedger struct {
	num      int32
	currency string
}

// prefixRow scans into extra destinations first, then the caller's.
type prefixRow struct {
	rows  pgx.Rows
	extra []any
}

func (p prefixRow) Scan(dst ...any) error { return p.rows.Scan(append(p.extra, dst...)...) }

// DateRange returns the first and last sequence of a date in a topic log;
// ok is false when the date has no entries in it (yet).
func (s *Store) DateRange(ledgerID string, topic ledger.Topic, d ledger.Date) (first, last uint64, ok bool, err error) {
	if _, err := ledger.ParseTopic(string(topic)); err != nil {
		return 0, 0, false, err
	}
	if err := s.checkOpen(); err != nil {
		return 0, 0, false, err
	}
	var f, l *int64
	err = s.pool.QueryRow(context.Background(), `SELECT d.first_seq, d.last_seq FROM ledgers l
		LEFT JOIN dates d ON d.num = l.num AND d.topic = $2 AND d.ledger_date = $3 WHERE l.id = $1`,
		ledgerID, topicCode(topic), int32(d)).Scan(&f, &l)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, false, notFound(ledgerID)
	}
	if err != nil || f == nil {
		return 0, 0, false, err
	}
	return uint64(*f), uint64(*l), true, nil
}

// seqs runs a query whose rows are sequences, for a ledger with entries.
func (s *Store) seqs(query string, args ...any) ([]uint64, error) {
	rows, err := s.pool.Query(context.Background(), query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return nil, err
		}
		out = append(out, uint64(seq))
	}
	return out, rows.Err()
}

// Lookup returns the sequences of up to limit entries whose reference (or
// pspReference) equals value, in sequence order, starting after sequence
// after. Entries with an empty reference are not found by reference.
func (s *Store) Lookup(ledgerID string, topic ledger.Topic, by ledger.Index, value string, after uint64, limit int) ([]uint64, error) {
	if _, err := ledger.ParseTopic(string(topic)); err != nil {
		return nil, err
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	num, _, err := s.fixedLedger(ledgerID)
	if err != nil || num == 0 || limit <= 0 || (by != ledger.ByPSPReference && value == "") {
		return nil, err
	}
	cond := "reference = $3 AND reference <> ''"
	if by == ledger.ByPSPReference {
		cond = "psp_reference = $3"
	}
	return s.seqs(`SELECT seq FROM entries WHERE num = $1 AND topic = $2 AND `+cond+` AND seq > $4 ORDER BY seq LIMIT $5`,
		num, topicCode(topic), value, int64(after), limit)
}

// LookupTime returns the sequences of up to limit entries whose time is in
// [fromMicros, toMicros), ordered by time then sequence.
func (s *Store) LookupTime(ledgerID string, topic ledger.Topic, fromMicros, toMicros int64, limit int) ([]uint64, error) {
	if _, err := ledger.ParseTopic(string(topic)); err != nil {
		return nil, err
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	num, _, err := s.fixedLedger(ledgerID)
	if err != nil || num == 0 || limit <= 0 {
		return nil, err
	}
	return s.seqs(`SELECT seq FROM entries WHERE num = $1 AND topic = $2 AND time_us >= $3 AND time_us < $4
		ORDER BY time_us, seq LIMIT $5`, num, topicCode(topic), fromMicros, toMicros, limit)
}
