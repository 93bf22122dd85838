package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Export: read-only views of what the bbolt store keeps and no Backend
// method returns as stored, for copying a whole store into another one
// (ledgerfeed migrate-store). Entries, clients, the audit log and records
// are read through the Backend methods (Entries with GDPR, ListClients,
// ListAudit, ScanRecords); what is here is the rest.

// LedgerExport is one ledger as the store keeps it.
type LedgerExport struct {
	Ledger     Ledger // configuration, open date, timestamps as stored
	HasEntries bool   // set at the first append: currency, zone and cutoff are fixed
	// Closes are the moves of the open date, oldest first: at At the open
	// date moved to OpenDate, closing the dates before it (closes.go).
	Closes []CloseTime
	// Seals are the stored seals, oldest date first.
	Seals []StoredSeal
}

// CloseTime is one move of a ledger's open date.
type CloseTime struct {
	OpenDate Date      // the open date moved to
	At       time.Time // when, UTC, microseconds
}

// StoredSeal is a date's seal as stored: the JWS, when it was stored, and
// the summaries it was made over.
type StoredSeal struct {
	Date     Date
	Seal     string
	SealedAt time.Time
	Funds    TopicSummary
	Fees     TopicSummary
}

// RecordKinds are the record kinds the bbolt store keeps (one bucket each);
// RecordSigningKeys and RecordSecrets are a shared store's only.
var RecordKinds = []RecordKind{RecordReportFiles, RecordReportSchedules, RecordDownloadTokens, RecordScheduleRuns}

// ExportLedger returns ledger id as stored, with its close times and seals,
// from one read transaction. An unknown id is ErrNotFound.
func (s *Store) ExportLedger(id string) (LedgerExport, error) {
	var out LedgerExport
	err := s.view(id, func(tx *bolt.Tx, rec *ledgerRecord) error {
		out.Ledger, out.HasEntries = rec.Ledger, rec.HasEntries
		// rec is shared by readers: copy what the caller could change.
		out.Ledger.SettlesForRecipientHandles = slices.Clone(rec.SettlesForRecipientHandles)
		out.Ledger.SalesUnits = slices.Clone(rec.SalesUnits)
		prefix := binary.BigEndian.AppendUint32(nil, rec.Num)
		c := tx.Bucket(bucketCloses).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != 8 || len(v) != 8 {
				return fmt.Errorf("%w: close time of ledger %s: key %x value %x", ErrDamaged, id, k, v)
			}
			out.Closes = append(out.Closes, CloseTime{
				OpenDate: Date(binary.BigEndian.Uint32(k[4:])),
				At:       time.UnixMicro(int64(btoi(v))).UTC(),
			})
		}
		c = tx.Bucket(bucketSeals).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			d := Date(0)
			if len(k) == 8 {
				d = Date(binary.BigEndian.Uint32(k[4:]))
			}
			r, err := unmarshalSeal(v)
			if err != nil || len(k) != 8 {
				return fmt.Errorf("%w: seal of ledger %s date %s: %v", ErrDamaged, id, d, err)
			}
			out.Seals = append(out.Seals, StoredSeal{Date: d, Seal: r.Seal, SealedAt: r.SealedAt, Funds: r.Funds, Fees: r.Fees})
		}
		return nil
	})
	if err != nil {
		return LedgerExport{}, fmt.Errorf("export ledger %s: %w", id, err)
	}
	return out, nil
}
