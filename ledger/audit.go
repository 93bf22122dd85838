package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AuditEvent is one record of the append-only audit log: who did what, when,
// with what result.
type AuditEvent struct {
	Sequence  uint64    `json:"-"`         // assigned by the store, 1, 2, 3 …
	Time      time.Time `json:"time"`      // set by the store when zero
	ClientID  string    `json:"clientId"`  // who ("" when unknown, e.g. a failed token request)
	Action    string    `json:"action"`    // what, e.g. "token.issue", "feed.read", "ledger.put"
	Resource  string    `json:"resource"`  // on what, e.g. "ledgers/302321/funds"
	Result    string    `json:"result"`    // "ok", "denied", "error", …
	Status    int       `json:"status"`    // the HTTP status answered
	ContextID string    `json:"contextId"` // the request id
}

// Audit appends events to the audit log and returns once they are durable.
// It shares the commit of whatever else is being written at the time.
func (s *Store) Audit(ctx context.Context, events ...AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	now := s.now().UTC()
	_, err := s.write(ctx, func(w *wtx) (any, error) {
		b := w.Bucket(bucketAudit)
		for _, ev := range events {
			seq, err := b.NextSequence()
			if err != nil {
				return nil, dirty(err)
			}
			if ev.Time.IsZero() {
				ev.Time = now
			}
			if err := b.Put(itob(seq), mustJSON(ev)); err != nil {
				return nil, dirty(err)
			}
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// AuditFilter selects audit events; empty fields match everything.
type AuditFilter struct {
	ClientID string
	Action   string
}

// ListAudit returns up to limit events after sequence after that match f,
// oldest first. It stops after scanning maxScan events, so a filter that
// matches little cannot make one call read the whole log; the returned
// sequence is where the next call continues (the last event scanned).
func (s *Store) ListAudit(f AuditFilter, after uint64, limit int) ([]AuditEvent, uint64, error) {
	const maxScan = 100000
	var out []AuditEvent
	next := after
	err := s.viewTx(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		scanned := 0
		for k, v := c.Seek(itob(after + 1)); k != nil && len(out) < limit && scanned < maxScan; k, v = c.Next() {
			scanned++
			next = btoi(k)
			var ev AuditEvent
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("%w: audit event %d: %v", ErrDamaged, next, err)
			}
			ev.Sequence = next
			if (f.ClientID == "" || ev.ClientID == f.ClientID) && (f.Action == "" || ev.Action == f.Action) {
				out = append(out, ev)
			}
		}
		return nil
	})
	return out, next, err
}
