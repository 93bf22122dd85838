-- ledgerfeed PostgreSQL store, schema version 3: other packages' records
-- (ledger.RecordKind: report files, schedules, download tokens, schedule
-- runs). Keys are bytea, not text: they are arbitrary bytes (package report
-- joins its key parts with NUL) ordered bytewise, as in bbolt. Values are
-- opaque bytes. See docs/postgres.md.
CREATE TABLE records (
	kind  text COLLATE "C" NOT NULL,
	key   bytea NOT NULL,
	value bytea NOT NULL,
	PRIMARY KEY (kind, key)
);
