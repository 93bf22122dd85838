// Package ledger is ledgerfeed's domain and its storage: ledgers, their two
// append-only topic logs (funds and fees) with gapless sequences, running
// balances and a SHA-256 hash chain, ledger dates in the ledger's own time zone
// and cutoff, idempotent batch ingest, GDPR fields kept apart from the chained
// entry, and the bbolt file that holds all of it.
//
// The package knows nothing of HTTP, gRPC or JWT. All writes go through one
// writer goroutine that shares each fsync'd commit among every caller waiting
// at that moment (group commit); a caller is answered only after its data is
// durable. Reads use short bbolt read transactions and never block writers.
package ledger
