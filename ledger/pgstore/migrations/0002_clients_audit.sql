-- ledgerfeed PostgreSQL store, schema version 2: API clients and the audit
-- log. See docs/postgres.md.

-- One row per API client; body is ledger.Client as JSON, byte for byte what
-- the bbolt store keeps.
CREATE TABLE clients (
	id   text COLLATE "C" PRIMARY KEY,
	body json NOT NULL
);

-- The audit log. audit_head's one row holds the last sequence: an append
-- takes it with UPDATE … RETURNING and holds its lock until commit, so
-- sequences are gapless (a rolled-back append rolls the head back too) and
-- commit in sequence order, across nodes: a reader paging by sequence never
-- passes an event that commits later below it. body is ledger.AuditEvent
-- as JSON (as in bbolt); client_id and action are copied out for filters.
CREATE TABLE audit_head (
	one boolean PRIMARY KEY DEFAULT true CHECK (one),
	seq bigint NOT NULL
);
INSERT INTO audit_head (seq) VALUES (0);

CREATE TABLE audit (
	seq       bigint PRIMARY KEY,
	client_id text COLLATE "C" NOT NULL,
	action    text COLLATE "C" NOT NULL,
	body      json NOT NULL
);
