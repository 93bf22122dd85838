package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// auditMaxScan is the bbolt store's bound on the events one ListAudit call
// looks at.
const auditMaxScan = 100000

// Audit appends events to the audit log and returns once they are durable
// (committed). One call is one statement, so one transaction and one round
// trip: package auth batches its events into one call. Sequences come from
// audit_head's row, locked until the commit, so they are gapless and
// committed in order on every node (see migration 0002).
func (s *Store) Audit(ctx context.Context, events ...ledger.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	err := s.checkWrite(ctx)
	if err == nil {
		now := s.now().UTC()
		clients := make([]string, len(events))
		actions := make([]string, len(events))
		bodies := make([]string, len(events))
		for i, ev := range events {
			if ev.Time.IsZero() {
				ev.Time = now
			}
			clients[i], actions[i], bodies[i] = ev.ClientID, ev.Action, mustJSON(ev)
		}
		_, err = s.pool.Exec(ctx, `WITH h AS (UPDATE audit_head SET seq = seq + $1 RETURNING seq)
			INSERT INTO audit (seq, client_id, action, body)
			SELECT h.seq - $1 + u.ord, u.client_id, u.action, u.body
			FROM h, unnest($2::text[], $3::text[], $4::json[]) WITH ORDINALITY AS u (client_id, action, body, ord)`,
			int64(len(events)), clients, actions, bodies)
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// ListAudit returns up to limit events after sequence after that match f,
// oldest first, and the sequence where the next call continues, exactly as
// the bbolt store does: it looks at no more than 100,000 events per call,
// and the sequence returned is the last event it looked at. Sequences are
// gapless, so "the events it looks at" are after+1 … after+100,000; the
// filter runs in the database. Events and head come from one statement, so
// one snapshot.
func (s *Store) ListAudit(f ledger.AuditFilter, after uint64, limit int) ([]ledger.AuditEvent, uint64, error) {
	if err := s.checkOpen(); err != nil {
		return nil, after, err
	}
	if limit <= 0 {
		return nil, after, nil
	}
	from := int64(min(after, math.MaxInt64-auditMaxScan))
	rows, err := s.pool.Query(context.Background(), `SELECT h.seq, e.seq, e.body FROM audit_head h LEFT JOIN LATERAL (
			SELECT seq, body FROM audit WHERE seq > $1 AND seq <= $1 + $2
				AND ($3 = '' OR client_id = $3) AND ($4 = '' OR action = $4)
			ORDER BY seq LIMIT $5) e ON true
		ORDER BY e.seq`, from, int64(auditMaxScan), f.ClientID, f.Action, int64(limit))
	if err != nil {
		return nil, after, err
	}
	defer rows.Close()
	var (
		out  []ledger.AuditEvent
		head int64
	)
	for rows.Next() {
		var (
			seq  *int64
			body *string
		)
		if err := rows.Scan(&head, &seq, &body); err != nil {
			return nil, after, err
		}
		if seq == nil {
			continue
		}
		var ev ledger.AuditEvent
		if err := json.Unmarshal([]byte(*body), &ev); err != nil {
			return nil, after, fmt.Errorf("%w: audit event %d: %v", ledger.ErrDamaged, *seq, err)
		}
		ev.Sequence = uint64(*seq)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, after, err
	}
	if len(out) == limit {
		return out, out[len(out)-1].Sequence, nil
	}
	// The scan ended at the end of the log or after auditMaxScan events.
	next := max(after, min(after+auditMaxScan, uint64(head)))
	return out, next, nil
}
