// Package pgstore is the ledger store over PostgreSQL (pgx/v5), for several
// stateless ledgerfeed nodes serving one set of ledgers. Its methods mirror
// *ledger.Store's (same types, results and errors) and keep every guarantee
// of the bbolt store across nodes: gapless per-topic sequences, exactly-once
// idempotent ingest, checked running balances, the hash chain (identical
// hashes for identical input), immutable closed dates, GDPR erasure.
//
// Appends to a ledger are serialized in the database by its ledgers row,
// locked FOR NO KEY UPDATE until commit; concurrent appends on one node are
// grouped into one transaction (group commit). A commit on any node wakes
// Changed/WaitAppend waiters on every node through LISTEN/NOTIFY, with a
// bounded fallback poll. The schema is versioned (migrations/*.sql, applied
// at Open under an advisory lock). See docs/postgres.md.
package pgstore
