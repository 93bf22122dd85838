// Package client is the Go SDK for consumers of a ledgerfeed server (and of
// the Vipps MobilePay Report API it is wire-compatible with).
//
// A Client fetches an access token with the partner's client id and secret
// (POST /accesstoken/get) and refreshes it before it expires or when the
// server answers 401. Every call is retried with exponential backoff and full
// jitter on 429, 5xx (but 501) and transport errors, waiting at least as long
// as a Retry-After header asks; errors the server answers are *APIError
// (problem+json). Amounts and balances are int64 minor units.
//
// Reading: Ledgers, DateReport and Feed are iterators (range-over-func);
// GetFeed, GetDateReport and GetDateManifest fetch one page; SubscribeFeed
// follows a feed over gRPC as the server pushes it. A Verifier checks the
// seals of closed dates against the server's JWKS and recomputes each
// topic's hash chain (package ledger/chain) from the entries received.
//
// The package depends on the standard library, the generated gRPC types,
// ledger/chain and golang-jwt; never on the server's own packages.
package client
