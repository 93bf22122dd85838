-- ledgerfeed PostgreSQL store, schema version 5: blobs (ledger.Blobs), the
-- report files every node can serve. See docs/postgres.md.
--
-- A blob is one row of blobs and its bytes in chunks of blob_chunks (1 MiB
-- each, the last one shorter), all written by PutBlob in one transaction:
-- a half-written blob is never visible, and a failed write leaves nothing.
-- Chunks belong to the blob's id, not its key, so a reader that opened one
-- version never reads chunks of the next; deleting the row deletes its
-- chunks (ON DELETE CASCADE).
CREATE SEQUENCE blob_ids;

CREATE TABLE blobs (
	key        bytea PRIMARY KEY,
	id         bigint NOT NULL UNIQUE,
	size       bigint NOT NULL,
	chunk_size integer NOT NULL,
	stored_us  bigint NOT NULL
);

CREATE TABLE blob_chunks (
	blob bigint NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
	n    integer NOT NULL,
	data bytea NOT NULL,
	PRIMARY KEY (blob, n)
);

-- Stored out of line without compression: report CSV would compress, but
-- pglz costs more CPU per MB than writing the bytes, XLSX is zipped already,
-- and uncompressed TOAST lets a read fetch only the slices it needs.
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
