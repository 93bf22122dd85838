package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Blobs: ledger.Blobs over tables blobs and blob_chunks (migration 0005).
//
// Why chunked bytea rows and not large objects: rows are ordinary table
// data — in pg_dump, logical and physical replication, dropped with the
// row (large objects need lo_unlink or they stay forever, and their own
// privileges) — and a chunk is fetched by primary key, so a Range request
// reads only the chunks it covers. A chunk is 1 MiB: one TOASTed value,
// small enough for the writer's and a reader's buffer, large enough that a
// 500 MB file is 500 rows.

// BlobChunk is the size of a blob's chunks in bytes.
const BlobChunk = 1 << 20

// blobLock is the first key of the advisory lock a PutBlob holds on its
// blob key until it commits, so that writes of one key run one at a time.
const blobLock int32 = 0x626c6f62 // "blob"

func checkBlobKey(key string) error {
	if key == "" || len(key) > maxRecordKeyLen {
		return fmt.Errorf("%w: blob key must be 1–%d bytes", ledger.ErrInvalid, maxRecordKeyLen)
	}
	return nil
}

// PutBlob stores what r yields under key, in one transaction: the blob's
// row (replacing the old one and, by cascade, its chunks) and its chunks,
// streamed with COPY as r is read, 1 MiB at a time. The transaction is open
// while r is read: hand it a file, not a slow producer. A cancelled ctx
// fails the write, but only once r's Read returns.
func (s *Store) PutBlob(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := s.checkWrite(ctx); err != nil {
		return 0, err
	}
	if err := checkBlobKey(key); err != nil {
		return 0, err
	}
	var size int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext(encode($2::bytea, 'hex')))", blobLock, []byte(key)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM blobs WHERE key = $1", []byte(key)); err != nil {
			return err
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO blobs (key, id, size, chunk_size, stored_us)
			VALUES ($1, nextval('blob_ids'), 0, $2, 0) RETURNING id`, []byte(key), BlobChunk).Scan(&id); err != nil {
			return err
		}
		src := &chunkSource{r: r, id: id, buf: make([]byte, BlobChunk)}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"blob_chunks"}, []string{"blob", "n", "data"}, src); err != nil {
			if src.err != nil {
				return fmt.Errorf("read blob %q: %w", key, src.err)
			}
			return err
		}
		if src.err != nil {
			return fmt.Errorf("read blob %q: %w", key, src.err)
		}
		size = src.size
		_, err := tx.Exec(ctx, "UPDATE blobs SET size = $2, stored_us = $3 WHERE id = $1", id, size, s.now().UnixMicro())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("put blob: %w", err)
	}
	return size, nil
}

// chunkSource feeds COPY the chunks of r. pgx encodes each row's values
// before it asks for the next, so one buffer serves every chunk.
type chunkSource struct {
	r    io.Reader
	id   int64
	n    int32
	buf  []byte
	cur  []byte
	size int64
	err  error
	eof  bool
}

func (c *chunkSource) Next() bool {
	if c.eof || c.err != nil {
		return false
	}
	k, err := io.ReadFull(c.r, c.buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		c.eof = true
	case err != nil:
		c.err = err
		return false
	}
	if k == 0 {
		return false
	}
	c.cur = c.buf[:k]
	c.size += int64(k)
	c.n++
	return true
}

func (c *chunkSource) Values() ([]any, error) { return []any{c.id, c.n - 1, c.cur}, nil }

func (c *chunkSource) Err() error { return c.err }

// OpenBlob opens the blob under key: its id and size are read now; its
// chunks as they are read.
func (s *Store) OpenBlob(ctx context.Context, key string) (ledger.BlobReader, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := checkBlobKey(key); err != nil {
		return nil, err
	}
	b := &blobReader{s: s, ctx: ctx, key: key, n: -1}
	err := s.pool.QueryRow(ctx, "SELECT id, size, chunk_size FROM blobs WHERE key = $1", []byte(key)).Scan(&b.id, &b.size, &b.chunk)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("blob %q: %w", key, ledger.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return b, nil
}

// blobReader reads one version of a blob, a chunk at a time, keeping the
// last chunk it fetched.
type blobReader struct {
	s     *Store
	ctx   context.Context
	key   string
	id    int64
	size  int64
	chunk int32
	off   int64
	n     int32  // number of the chunk in data; -1: none
	data  []byte // chunk n
}

func (b *blobReader) Size() int64 { return b.size }

func (b *blobReader) Close() error {
	b.data = nil
	return nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	n, err := b.ReadAt(p, b.off)
	b.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (b *blobReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.off
	case io.SeekEnd:
		offset += b.size
	default:
		return 0, errors.New("blob seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("blob seek: negative position")
	}
	b.off = offset
	return offset, nil
}

// ReadAt reads len(p) bytes at off, fetching the chunks they lie in.
func (b *blobReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("blob read: negative offset")
	}
	done := 0
	for done < len(p) {
		if off >= b.size {
			return done, io.EOF
		}
		n := int32(off / int64(b.chunk))
		if n != b.n {
			if err := b.fetch(n); err != nil {
				return done, err
			}
		}
		k := copy(p[done:], b.data[off-int64(n)*int64(b.chunk):])
		if k == 0 {
			return done, fmt.Errorf("blob %q: chunk %d is short: %w", b.key, n, io.ErrUnexpectedEOF)
		}
		done += k
		off += int64(k)
	}
	return done, nil
}

func (b *blobReader) fetch(n int32) error {
	if err := b.s.checkOpen(); err != nil {
		return err
	}
	b.n, b.data = -1, b.data[:0]
	err := b.s.pool.QueryRow(b.ctx, "SELECT data FROM blob_chunks WHERE blob = $1 AND n = $2", b.id, n).Scan(&b.data)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("blob %q was deleted or replaced while open: %w", b.key, ledger.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read blob %q: %w", b.key, err)
	}
	b.n = n
	return nil
}

// DeleteBlob deletes the blob under key and its chunks.
func (s *Store) DeleteBlob(ctx context.Context, key string) error {
	if err := s.checkWrite(ctx); err != nil {
		return err
	}
	if err := checkBlobKey(key); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM blobs WHERE key = $1", []byte(key)); err != nil {
		return fmt.Errorf("delete blob: %w", err)
	}
	return nil
}

// ListBlobs calls fn for each blob whose key starts with prefix, in key
// order. The list is read whole first, so fn may use the store.
func (s *Store) ListBlobs(ctx context.Context, prefix string, fn func(ledger.BlobInfo) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	lo, hi := prefixRange(prefix)
	rows, err := s.pool.Query(ctx, `SELECT key, size, stored_us FROM blobs
		WHERE key >= $1 AND ($2::bytea IS NULL OR key < $2) ORDER BY key`, lo, hi)
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	var all []ledger.BlobInfo
	var k []byte
	var size, us int64
	if _, err := pgx.ForEachRow(rows, []any{&k, &size, &us}, func() error {
		all = append(all, ledger.BlobInfo{Key: string(k), Size: size, Stored: time.UnixMicro(us).UTC()})
		return nil
	}); err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, bi := range all {
		if err := fn(bi); err != nil {
			return err
		}
	}
	return nil
}
