// Package server wires ledgerfeed to the network: the HTTP listener (health,
// readiness, Prometheus metrics and, in later issues, the Vipps-compatible
// REST gateway), the gRPC listener (grpc.health.v1, server reflection and, in
// later issues, the report and admin services), and the local admin socket
// that the verify and backup commands use while a server holds the store.
//
// The server does not own the store: the caller opens it before New and
// closes it after Serve has returned.
package server
