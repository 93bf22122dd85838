package pgstore

import "github.com/ledgerfeed/ledgerfeed/ledger"

// The roles of ledger/backend.go the PostgreSQL store fills. Records is
// missing only because ledger.Records takes the bbolt transaction type
// *ledger.RecordTx; (*Store).UpdateRecords takes *pgstore.RecordTx, which
// has the same methods (Get, Scan, Put, Delete).
var (
	_ ledger.Entries  = (*Store)(nil)
	_ ledger.Ledgers  = (*Store)(nil)
	_ ledger.Clients  = (*Store)(nil)
	_ ledger.AuditLog = (*Store)(nil)
	_ ledger.Seals    = (*Store)(nil)
	_ ledger.Searcher = (*Store)(nil)
)
