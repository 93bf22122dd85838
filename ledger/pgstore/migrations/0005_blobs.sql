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

-- Chunks are compressed with lz4 where the server has it (PostgreSQL 14+
-- built with lz4, as Debian's is), else with the default pglz: report CSV
-- shrinks about 4×, in the table, the WAL and the backups; measured here on
-- 64 MiB of report CSV, lz4 stores as fast as no compression (pglz about
-- 40% slower). XLSX, zipped already, is stored as it is.
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
		ALTER TABLE blob_chunks ALTER COLUMN data SET COMPRESSION lz4;
	END IF;
END $$;
