package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Records: the generic kind/key/value records of ledger.RecordKind, with
// the bbolt store's semantics (table records, migration 0003).
//
// UpdateRecords runs its function in a SERIALIZABLE transaction and, when
// PostgreSQL reports a serialization failure or a deadlock, runs it again
// (the contract allows it: fn may run more than once). So a read-modify-write
// — including "scan for an unclaimed job, then claim it" — behaves on any
// number of nodes as if the calls ran one at a time, as they do in bbolt.

// maxRecordKeyLen is the bbolt store's bound on a record key.
const maxRecordKeyLen = 1024

// recordRetries bounds the reruns of one UpdateRecords after serialization
// failures.
const recordRetries = 100

func checkRecordKind(k ledger.RecordKind) error {
	switch k {
	case ledger.RecordReportFiles, ledger.RecordReportSchedules, ledger.RecordDownloadTokens, ledger.RecordScheduleRuns,
		ledger.RecordSigningKeys, ledger.RecordSecrets:
		return nil
	}
	return fmt.Errorf("%w: unknown record kind %q", ledger.ErrInvalid, k)
}

func checkRecordKey(key string) error {
	if key == "" || len(key) > maxRecordKeyLen {
		return fmt.Errorf("%w: record key must be 1–%d bytes", ledger.ErrInvalid, maxRecordKeyLen)
	}
	return nil
}

// prefixRange returns the bounds of the keys starting with prefix: key >=
// lo and, when hi is not nil, key < hi.
func prefixRange(prefix string) (lo, hi []byte) {
	lo = []byte(prefix)
	for i := len(lo) - 1; i >= 0; i-- {
		if lo[i] != 0xff {
			hi = append(bytes.Clone(lo[:i]), lo[i]+1)
			break
		}
	}
	return lo, hi
}

const scanSQL = `SELECT key, value FROM records WHERE kind = $1 AND key >= $2 AND ($3::bytea IS NULL OR key < $3) ORDER BY key`

// RecordTx is one atomic read-modify-write over records of any kinds, in
// UpdateRecords: the counterpart of ledger.RecordTx, with the same methods
// and answers. Values it returns are copies.
type RecordTx struct {
	ctx context.Context
	tx  pgx.Tx
}

// Get returns the value of a record, or nil when there is none.
func (t *RecordTx) Get(kind ledger.RecordKind, key string) ([]byte, error) {
	if err := checkRecordKind(kind); err != nil {
		return nil, err
	}
	var v []byte
	err := t.tx.QueryRow(t.ctx, "SELECT value FROM records WHERE kind = $1 AND key = $2", string(kind), []byte(key)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if v == nil && err == nil {
		v = []byte{}
	}
	return v, err
}

// Scan calls fn for each record of kind whose key starts with prefix, in
// key order; value is valid only during the call. fn must not write; it may
// read through t.
func (t *RecordTx) Scan(kind ledger.RecordKind, prefix string, fn func(key string, value []byte) error) error {
	if err := checkRecordKind(kind); err != nil {
		return err
	}
	lo, hi := prefixRange(prefix)
	rows, err := t.tx.Query(t.ctx, scanSQL, string(kind), lo, hi)
	if err != nil {
		return err
	}
	// Read them all first: fn may call Get, and one connection runs one
	// query at a time.
	type kv struct{ k, v []byte }
	var all []kv
	var k, v []byte
	if _, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error {
		all = append(all, kv{bytes.Clone(k), bytes.Clone(v)})
		return nil
	}); err != nil {
		return err
	}
	for _, r := range all {
		if r.v == nil {
			r.v = []byte{}
		}
		if err := fn(string(r.k), r.v); err != nil {
			return err
		}
	}
	return nil
}

// Put creates or replaces a record.
func (t *RecordTx) Put(kind ledger.RecordKind, key string, value []byte) error {
	if err := checkRecordKind(kind); err != nil {
		return err
	}
	if err := checkRecordKey(key); err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	_, err := t.tx.Exec(t.ctx, `INSERT INTO records (kind, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value`, string(kind), []byte(key), value)
	return err
}

// Delete removes a record; a missing one is no error.
func (t *RecordTx) Delete(kind ledger.RecordKind, key string) error {
	if err := checkRecordKind(kind); err != nil {
		return err
	}
	_, err := t.tx.Exec(t.ctx, "DELETE FROM records WHERE kind = $1 AND key = $2", string(kind), []byte(key))
	return err
}

// UpdateRecords runs fn in one SERIALIZABLE transaction and returns once its
// changes are committed, or with fn's error and nothing changed. fn may run
// more than once (after a serialization failure), so it must only read and
// write through t and its own locals.
func (s *Store) UpdateRecords(ctx context.Context, fn func(t ledger.RecordTx) error) error {
	if err := s.checkWrite(ctx); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
			return fn(&RecordTx{ctx: ctx, tx: tx})
		})
		// A serialization failure or deadlock may surface at commit or in a
		// statement fn ran (and returned, wrapped or not): run fn again.
		var pe *pgconn.PgError
		if err != nil && errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01") && attempt < recordRetries && ctx.Err() == nil {
			continue
		}
		return err
	}
}

// GetRecord returns a copy of a record's value, or an error wrapping
// ErrNotFound.
func (s *Store) GetRecord(kind ledger.RecordKind, key string) ([]byte, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := checkRecordKind(kind); err != nil {
		return nil, err
	}
	var v []byte
	err := s.pool.QueryRow(context.Background(), "SELECT value FROM records WHERE kind = $1 AND key = $2", string(kind), []byte(key)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s %q: %w", kind, key, ledger.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// ScanRecords calls fn for each record of kind whose key starts with prefix,
// in bytewise key order, over one snapshot (one statement). value is valid
// only during the call. fn returning an error stops the scan with it.
func (s *Store) ScanRecords(kind ledger.RecordKind, prefix string, fn func(key string, value []byte) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := checkRecordKind(kind); err != nil {
		return err
	}
	lo, hi := prefixRange(prefix)
	rows, err := s.pool.Query(context.Background(), scanSQL, string(kind), lo, hi)
	if err != nil {
		return err
	}
	var k, v []byte
	_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error {
		if v == nil {
			v = []byte{}
		}
		return fn(string(k), v)
	})
	return err
}
