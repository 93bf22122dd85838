package pgstore

import "github.com/ledgerfeed/ledgerfeed/ledger"

// The PostgreSQL store is a whole ledger.Backend: every role of
// ledger/backend.go. (ledger.Files — a local data file to back up and
// verify — is the bbolt store's alone.)
var _ ledger.Backend = (*Store)(nil)
