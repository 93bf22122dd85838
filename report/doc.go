// Package report makes report files: asynchronous CSV and XLSX jobs over a
// ledger's closed dates, kept in a durable queue in the store, run by a
// bounded number of workers, written atomically under a directory, handed
// out through expiring client-bound download tokens, made automatically by
// per-ledger schedules, and deleted after a retention period. It builds on
// package ledger only; HTTP, gRPC and tokens stay in package server.
package report
