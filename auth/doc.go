// Package auth authenticates and authorises API clients: client secrets
// (argon2id), JWT access tokens (EdDSA, signed with a key kept in the data
// directory, rotated with a grace period, published as a JWKS), tokens of
// configured external issuers, scopes, per-ledger grants and GDPR consent,
// per-client rate limits, and an asynchronous audit writer. Client records and
// the audit log live in the ledger store; auth knows nothing of HTTP or gRPC.
package auth
