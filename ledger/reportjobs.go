package ledger

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// RecordKind names a set of small records that another package keeps in the
// store, durable and in one file with the ledgers: package report keeps its
// file jobs, schedules, download tokens and schedule runs here. The store
// knows nothing of their contents: keys are strings ordered bytewise, values
// opaque bytes (JSON by convention).
type RecordKind string

// The record kinds, one bucket each (schema.go).
const (
	RecordReportFiles     RecordKind = "reportFiles"
	RecordReportSchedules RecordKind = "reportSchedules"
	RecordDownloadTokens  RecordKind = "reportTokens"
	RecordScheduleRuns    RecordKind = "reportRuns"
)

// Record kinds of a store shared by several nodes only (the PostgreSQL
// store; the bbolt store refuses them, its node keeps these in files):
// package auth's signing keys and the server's secrets (the cursor key).
const (
	RecordSigningKeys RecordKind = "signingKeys"
	RecordSecrets     RecordKind = "secrets"
)

// maxRecordKeyLen bounds a record key (bbolt allows 32 KiB).
const maxRecordKeyLen = 1024

func (k RecordKind) bucket(tx *bolt.Tx) (*bolt.Bucket, error) {
	switch k {
	case RecordReportFiles:
		return tx.Bucket(bucketReportFiles), nil
	case RecordReportSchedules:
		return tx.Bucket(bucketReportSchedules), nil
	case RecordDownloadTokens:
		return tx.Bucket(bucketReportTokens), nil
	case RecordScheduleRuns:
		return tx.Bucket(bucketReportRuns), nil
	}
	return nil, fmt.Errorf("%w: unknown record kind %q", ErrInvalid, k)
}

func checkRecordKey(key string) error {
	if key == "" || len(key) > maxRecordKeyLen {
		return fmt.Errorf("%w: record key must be 1–%d bytes", ErrInvalid, maxRecordKeyLen)
	}
	return nil
}

// RecordTx is one atomic read-modify-write over records of any kinds, in
// UpdateRecords. Values it returns are copies. Each store has its own.
type RecordTx interface {
	// Get returns the value of a record, or nil when there is none.
	Get(kind RecordKind, key string) ([]byte, error)
	// Scan calls fn for each record of kind whose key starts with prefix, in
	// key order; value is valid only during the call. fn must not write.
	Scan(kind RecordKind, prefix string, fn func(key string, value []byte) error) error
	// Put creates or replaces a record.
	Put(kind RecordKind, key string, value []byte) error
	// Delete removes a record; a missing one is no error.
	Delete(kind RecordKind, key string) error
}

// boltRecordTx is the bbolt store's RecordTx.
type boltRecordTx struct {
	tx    *bolt.Tx
	wrote bool
}

// Get returns the value of a record, or nil when there is none.
func (t *boltRecordTx) Get(kind RecordKind, key string) ([]byte, error) {
	b, err := kind.bucket(t.tx)
	if err != nil {
		return nil, err
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil, nil
	}
	return bytes.Clone(v), nil
}

// Scan calls fn for each record of kind whose key starts with prefix, in
// key order; value is valid only during the call. fn must not write.
func (t *boltRecordTx) Scan(kind RecordKind, prefix string, fn func(key string, value []byte) error) error {
	b, err := kind.bucket(t.tx)
	if err != nil {
		return err
	}
	return scanBucket(b, prefix, fn)
}

// Put creates or replaces a record.
func (t *boltRecordTx) Put(kind RecordKind, key string, value []byte) error {
	b, err := kind.bucket(t.tx)
	if err != nil {
		return err
	}
	if err := checkRecordKey(key); err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	t.wrote = true
	return b.Put([]byte(key), value)
}

// Delete removes a record; a missing one is no error.
func (t *boltRecordTx) Delete(kind RecordKind, key string) error {
	b, err := kind.bucket(t.tx)
	if err != nil {
		return err
	}
	t.wrote = true
	return b.Delete([]byte(key))
}

// UpdateRecords runs fn in a write transaction and returns once its changes
// are durable (fsync'd), or with fn's error and nothing changed. It shares
// the commit of whatever else is being written. fn may run more than once
// (when another write of the same commit fails), so it must only read and
// write through t and its own locals.
func (s *Store) UpdateRecords(ctx context.Context, fn func(t RecordTx) error) error {
	_, err := s.write(ctx, func(w *wtx) (any, error) {
		t := &boltRecordTx{tx: w.Tx}
		if err := fn(t); err != nil {
			if t.wrote {
				return nil, dirty(err)
			}
			return nil, err
		}
		return nil, nil
	})
	return err
}

// GetRecord returns a copy of a record's value, or an error wrapping
// ErrNotFound.
func (s *Store) GetRecord(kind RecordKind, key string) ([]byte, error) {
	if !s.Ready() {
		return nil, ErrClosed
	}
	var out []byte
	err := s.viewTx(func(tx *bolt.Tx) error {
		b, err := kind.bucket(tx)
		if err != nil {
			return err
		}
		if v := b.Get([]byte(key)); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	if err == nil && out == nil {
		err = fmt.Errorf("%s %q: %w", kind, key, ErrNotFound)
	}
	return out, err
}

// ScanRecords calls fn for each record of kind whose key starts with prefix,
// in key order, within one read transaction (a consistent view). value is
// valid only during the call. fn returning an error stops the scan with it.
func (s *Store) ScanRecords(kind RecordKind, prefix string, fn func(key string, value []byte) error) error {
	if !s.Ready() {
		return ErrClosed
	}
	return s.viewTx(func(tx *bolt.Tx) error {
		b, err := kind.bucket(tx)
		if err != nil {
			return err
		}
		return scanBucket(b, prefix, fn)
	})
}

func scanBucket(b *bolt.Bucket, prefix string, fn func(key string, value []byte) error) error {
	p := []byte(prefix)
	c := b.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if err := fn(string(k), v); err != nil {
			return err
		}
	}
	return nil
}
