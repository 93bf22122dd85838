-- ledgerfeed PostgreSQL store, schema version 1. See docs/postgres.md.

-- One row per ledger. The row is the ledger's write lock: every append and
-- every date closing of the ledger takes it FOR NO KEY UPDATE first.
CREATE TABLE ledgers (
	id          text COLLATE "C" PRIMARY KEY,
	num         integer NOT NULL UNIQUE GENERATED ALWAYS AS IDENTITY,
	config      jsonb NOT NULL,          -- ledger.Ledger's configured fields
	currency    text NOT NULL,
	time_zone   text NOT NULL,
	cutoff      text NOT NULL,
	open_date   integer NOT NULL DEFAULT 0,
	has_entries boolean NOT NULL DEFAULT false,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);

-- The end of each topic log (topic 1 funds, 2 fees), made with the ledger.
CREATE TABLE heads (
	num         integer NOT NULL REFERENCES ledgers (num),
	topic       smallint NOT NULL CHECK (topic IN (1, 2)),
	seq         bigint NOT NULL DEFAULT 0,
	balance     bigint NOT NULL DEFAULT 0,
	hash        bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000',
	ledger_date integer NOT NULL DEFAULT 0,
	PRIMARY KEY (num, topic)
);

CREATE TABLE entries (
	num              integer NOT NULL,
	topic            smallint NOT NULL,
	seq              bigint NOT NULL,
	entry_id         text COLLATE "C" NOT NULL,
	psp_reference    text COLLATE "C" NOT NULL,
	time_us          bigint NOT NULL,
	ledger_date      integer NOT NULL,
	entry_type       text NOT NULL,
	reference        text COLLATE "C" NOT NULL,
	amount           bigint NOT NULL,
	balance_before   bigint NOT NULL,
	balance_after    bigint NOT NULL,
	recipient_handle text,
	hash             bytea NOT NULL,
	has_gdpr         boolean NOT NULL,
	PRIMARY KEY (num, topic, seq)
);
CREATE INDEX entries_reference ON entries (num, topic, reference, seq) WHERE reference <> '';
CREATE INDEX entries_psp_reference ON entries (num, topic, psp_reference, seq);
CREATE INDEX entries_time ON entries (num, topic, time_us, seq);

-- Idempotent ingest: an entryId is stored once per ledger and topic. A
-- table of its own whose one index leads with entry_id, so that the
-- duplicate check of a batch ("entry_id = ANY(ids)") can only probe it,
-- whatever the planner's statistics say (an index leading with num, topic
-- would tempt it to scan a whole log).
CREATE TABLE entry_ids (
	entry_id text COLLATE "C" NOT NULL,
	num      integer NOT NULL,
	topic    smallint NOT NULL,
	seq      bigint NOT NULL,
	PRIMARY KEY (entry_id, num, topic)
);

-- First and last sequence of each ledger date in each topic log.
CREATE TABLE dates (
	num         integer NOT NULL,
	topic       smallint NOT NULL,
	ledger_date integer NOT NULL,
	first_seq   bigint NOT NULL,
	last_seq    bigint NOT NULL,
	PRIMARY KEY (num, topic, ledger_date)
);

-- GDPR fields, sealed with AES-256-GCM under a per-entry key kept in
-- gdpr_keys. Erasure deletes both rows (and vacuums the tables).
CREATE TABLE gdpr (
	num    integer NOT NULL,
	topic  smallint NOT NULL,
	seq    bigint NOT NULL,
	sealed bytea NOT NULL,
	PRIMARY KEY (num, topic, seq)
);
CREATE TABLE gdpr_keys (
	num   integer NOT NULL,
	topic smallint NOT NULL,
	seq   bigint NOT NULL,
	key   bytea NOT NULL,
	PRIMARY KEY (num, topic, seq)
);
