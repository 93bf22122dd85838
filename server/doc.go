// Package server wires ledgerfeed to the network: the HTTP listener (health,
// readiness, Prometheus metrics, the token endpoints, the JWKS and the REST
// gateway of the admin and report APIs), the gRPC listener (the admin and
// report services, grpc.health.v1, server reflection), and the local admin
// socket that the verify and backup commands use while a server holds the
// store. REST and gRPC calls pass one interceptor chain (chain.go): request
// id, authentication, scope, rate limit, audit, and one error table
// (errors.go) that maps core errors to gRPC codes and HTTP statuses.
//
// The server owns neither the store nor the auth service: the caller opens
// them before New and closes them after Serve has returned.
package server
