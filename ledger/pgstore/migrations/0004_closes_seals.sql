-- ledgerfeed PostgreSQL store, schema version 4: when dates closed, and the
-- seals of closed dates. See docs/postgres.md.

-- One row per move of a ledger's open date from a date to a later one:
-- every date before open_date not closed by an earlier move closed then. A
-- date d closed at the row with the smallest open_date > d.
CREATE TABLE closes (
	num       integer NOT NULL,
	open_date integer NOT NULL,
	closed_us bigint NOT NULL,
	PRIMARY KEY (num, open_date)
);

-- The seal of each sealed date: body is the seal, when it was stored and
-- the summaries it was made over, as JSON. Written once (PutSeals checks
-- under the ledger's row lock; the key is the backstop).
CREATE TABLE seals (
	num         integer NOT NULL,
	ledger_date integer NOT NULL,
	body        json NOT NULL,
	PRIMARY KEY (num, ledger_date)
);
