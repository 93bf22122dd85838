package ledger

import (
	"context"
	"io"
	"time"
)

// The interfaces below are the store as its callers use it, one per role, so
// that each caller takes only what it needs and a second store (PostgreSQL,
// package pgstore) can sit behind the same contract. *Store implements all
// of them. Every implementation must give the guarantees written here; the
// bbolt store's methods document the details (limits, orderings) that an
// implementation must reproduce exactly, since the wire answers depend on
// them.
//
// Errors common to every method: ErrClosed once the store is closed (or a
// ctx error when ctx ends first); ErrNotFound (wrapped) for a ledger, client,
// record or seal that does not exist; ErrInvalid (wrapped, usually as a
// *FieldError naming the field) for input that breaks a rule, with nothing
// changed; ErrConflict (wrapped) when the input is valid but contradicts
// what is stored. A write returns only once it is durable; a failed write
// changes nothing.

// EntryReader reads a ledger's topic logs and waits for them to grow.
//
// Sequences of a topic are 1, 2, 3 … without gaps. A reader never sees
// sequence N before N−1 (a read that finds N finds every earlier one), and
// a returned entry never changes afterwards except for its GDPR fields,
// which EraseGDPR may blank. Reads answer from one consistent view.
type EntryReader interface {
	// Ready reports whether the store is open and accepting work.
	Ready() bool
	// Head returns the topic's last sequence, balance, hash and date, and
	// the ledger's open date (zero values for an empty log).
	Head(ledgerID string, topic Topic) (Head, error)
	// Entries returns up to limit entries from sequence from on, in
	// sequence order.
	Entries(ledgerID string, topic Topic, from uint64, limit int, opt ReadOptions) ([]Entry, error)
	// DateRange returns the first and last sequence of date d (ok false when
	// the date holds no entry of the topic).
	DateRange(ledgerID string, topic Topic, d Date) (first, last uint64, ok bool, err error)
	// Lookup returns up to limit sequences after after whose reference (or
	// pspReference) equals value, in sequence order.
	Lookup(ledgerID string, topic Topic, by Index, value string, after uint64, limit int) ([]uint64, error)
	// LookupTime returns up to limit sequences of entries whose time is in
	// [fromMicros, toMicros), ordered by time then sequence.
	LookupTime(ledgerID string, topic Topic, fromMicros, toMicros int64, limit int) ([]uint64, error)
	// Changed returns a channel closed after the next commit (by this
	// process or, for a shared store, any other) that appends to (ledgerID,
	// topic) or closes one of the ledger's dates, and when the store closes.
	// Take the channel first, then read: a commit between the two still
	// closes it. A wake-up may be spurious; one must never be lost for
	// longer than a bounded fallback interval.
	Changed(ledgerID string, topic Topic) <-chan struct{}
	// WaitAppend blocks until the topic holds a sequence greater than after,
	// ctx ends, or the store closes (ErrClosed), and returns the head then.
	WaitAppend(ctx context.Context, ledgerID string, topic Topic, after uint64) (Head, error)
}

// Entries is the topic logs: reading them and appending to them.
type Entries interface {
	EntryReader
	// Append appends a batch to a topic, all or nothing. Entry ids make it
	// idempotent: an entry whose id is stored with the same content answers
	// its original sequence and is not written again; with other content
	// the whole batch fails with ErrConflict naming the field. Appends to
	// one topic are serialized, so balances and the hash chain follow from
	// the previous entry.
	Append(ctx context.Context, ledgerID string, topic Topic, in []EntryInput) (AppendResult, error)
}

// Ledgers keeps the ledgers themselves and their dates.
type Ledgers interface {
	// PutLedger creates or updates a ledger and returns it as stored, and
	// whether it was created. Once a ledger has entries its currency, zone
	// and cutoff are fixed: a change is ErrConflict.
	PutLedger(ctx context.Context, l Ledger) (out Ledger, created bool, err error)
	GetLedger(id string) (Ledger, error)
	// ListLedgers returns up to limit ledgers with ids after after, by id.
	ListLedgers(after string, limit int) ([]Ledger, error)
	// CloseDate closes date d and every earlier one, exactly once whoever
	// calls it; closing a closed date changes nothing, one not begun is
	// refused. It returns the open date afterwards.
	CloseDate(ctx context.Context, ledgerID string, d Date) (Date, error)
	// CloseDue closes every date whose end plus the store's grace has
	// passed, in every ledger.
	CloseDue(ctx context.Context) error
	// EraseGDPR blanks the GDPR fields of every entry (both topics) with
	// the given reference or pspReference and returns how many had fields
	// erased; entries, balances and hashes stay as they were.
	EraseGDPR(ctx context.Context, ledgerID string, by Erasure) (int, error)
}

// Clients keeps the API clients (ids, secret hashes, grants).
type Clients interface {
	// CreateClient stores a new client; an existing id is ErrConflict.
	CreateClient(ctx context.Context, c Client) (Client, error)
	// UpdateClient runs fn on the stored client and stores the result
	// atomically (no lost update between concurrent callers); fn may run
	// more than once and must only change its argument; its error aborts
	// with nothing changed.
	UpdateClient(ctx context.Context, id string, fn func(*Client) error) (Client, error)
	DeleteClient(ctx context.Context, id string) error
	GetClient(id string) (Client, error)
	// ListClients returns up to limit clients with ids after after, by id.
	ListClients(after string, limit int) ([]Client, error)
}

// AuditLog is the append-only audit log.
type AuditLog interface {
	// Audit appends events, durable when it returns.
	Audit(ctx context.Context, events ...AuditEvent) error
	// ListAudit returns up to limit events after sequence after matching f,
	// oldest first, and the sequence to continue from.
	ListAudit(f AuditFilter, after uint64, limit int) ([]AuditEvent, uint64, error)
}

// Records keeps other packages' small records by kind and key (package
// report's jobs, schedules, tokens and runs).
type Records interface {
	// UpdateRecords runs fn in one atomic read-modify-write and returns once
	// its changes are durable, or with fn's error and nothing changed. fn
	// may run more than once.
	UpdateRecords(ctx context.Context, fn func(t RecordTx) error) error
	// GetRecord returns a copy of a record's value, or ErrNotFound.
	GetRecord(kind RecordKind, key string) ([]byte, error)
	// ScanRecords calls fn for each record of kind whose key starts with
	// prefix, in bytewise key order, over one consistent view.
	ScanRecords(kind RecordKind, prefix string, fn func(key string, value []byte) error) error
}

// Seals keeps the signed seals of closed dates, the date manifest built on
// them, and when dates closed.
type Seals interface {
	// Unsealed returns up to limit closed, unsealed dates, oldest first,
	// with their summaries and the seal they chain to.
	Unsealed(ledgerID string, limit int) (SealWork, error)
	// PutSeals stores seals of consecutive closed dates atomically, each
	// written once: a date already sealed, not closed, or out of order, or
	// a prev that is not the stored previous seal, is ErrConflict with
	// nothing stored (so of two nodes sealing a date, one wins).
	PutSeals(ctx context.Context, ledgerID, prev string, seals []Seal) error
	// SealOf returns a date's seal ("" when none).
	SealOf(ledgerID string, d Date) (string, error)
	// Manifest returns the summaries of dates from..to, oldest first.
	Manifest(ledgerID string, from, to Date) ([]DateSummary, error)
	// ClosedAt returns when date d closed; ok is false while it is open.
	ClosedAt(ledgerID string, d Date) (t time.Time, ok bool, err error)
}

// Searcher searches a topic log.
type Searcher interface {
	// Search returns one page of the entries matching q.
	Search(ledgerID string, topic Topic, q SearchQuery) (SearchPage, error)
}

// Blobs keeps large byte strings by key — report files — in a store that
// several nodes share, so that bytes written on one node can be read on
// any. Only a shared store has it (package pgstore); with the bbolt store,
// report files stay files in the node's own directory (big files never go
// into bbolt). A caller checks for it with a type assertion.
//
// Keys are 1–1024 bytes, ordered bytewise. A stored blob never changes:
// PutBlob of an existing key replaces it whole, DeleteBlob removes it.
type Blobs interface {
	// PutBlob stores everything r yields under key, replacing a blob
	// stored there, and returns the size. It reads r in chunks, so a blob
	// of any size is never held in memory whole. The write is atomic and
	// durable: readers find the new blob only once PutBlob returned nil,
	// then with all its bytes; until then they find the old one (or none).
	// A write that fails, is cancelled or cut by a crash leaves no trace.
	// Concurrent writes of one key end as one of them.
	PutBlob(ctx context.Context, key string, r io.Reader) (int64, error)
	// OpenBlob opens the blob under key for reading; ErrNotFound when there
	// is none. The reader's reads run under ctx. It reads the bytes stored
	// when it was opened: if the blob is deleted or replaced meanwhile, a
	// later read fails (wrapping ErrNotFound), never mixing in other bytes.
	// The caller closes it.
	OpenBlob(ctx context.Context, key string) (BlobReader, error)
	// DeleteBlob deletes the blob under key; a missing one is no error.
	DeleteBlob(ctx context.Context, key string) error
	// ListBlobs calls fn for each blob whose key starts with prefix, in
	// bytewise key order; fn's error stops the listing with it.
	ListBlobs(ctx context.Context, prefix string, fn func(BlobInfo) error) error
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Key    string
	Size   int64
	Stored time.Time // when its PutBlob committed, UTC
}

// BlobReader reads one blob as a read-only file: Read, Seek (from the
// start, the current offset or the end) and ReadAt, as http.ServeContent
// needs for Range requests. It is not safe for concurrent use.
type BlobReader interface {
	io.ReadSeekCloser
	io.ReaderAt
	// Size returns the blob's size in bytes.
	Size() int64
}

// Backend is a whole store: everything the server needs. Close waits for
// queued writes, wakes every waiter (they answer ErrClosed) and releases
// the store; later calls return nil.
type Backend interface {
	Entries
	Ledgers
	Clients
	AuditLog
	Records
	Seals
	Searcher
	Close() error
}

// Files is what only a store kept in local files has: its directory, a
// consistent copy of its file, and a full check of it. A caller that needs
// it checks for it with a type assertion and says so when the store is not
// one.
type Files interface {
	// Dir returns the data directory.
	Dir() string
	// Backup writes a consistent copy of the store to w.
	Backup(ctx context.Context, w io.Writer) (BackupInfo, error)
	// Verify checks every chain, index and seal and reports what it found.
	Verify(ctx context.Context, progress func(VerifyProgress)) (VerifyReport, error)
}

var (
	_ Backend = (*Store)(nil)
	_ Files   = (*Store)(nil)
)
