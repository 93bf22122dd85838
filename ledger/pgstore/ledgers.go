package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

const ledgerCols = "id, config, open_date, created_at, updated_at"

func scanLedger(row pgx.Row) (ledger.Ledger, error) {
	var (
		l        ledger.Ledger
		id       string
		config   []byte
		open     int32
		cre, upd time.Time
	)
	if err := row.Scan(&id, &config, &open, &cre, &upd); err != nil {
		return l, err
	}
	if err := json.Unmarshal(config, &l); err != nil {
		return l, fmt.Errorf("%w: ledger %s: %v", ledger.ErrDamaged, id, err)
	}
	l.ID, l.OpenDate, l.CreatedAt, l.UpdatedAt = id, ledger.Date(open), cre.UTC(), upd.UTC()
	return l, nil
}

// PutLedger creates or updates a ledger's configuration and returns it as
// stored, and whether it was created. Once a ledger has entries its currency,
// time zone and cutoff are fixed: a change fails with ErrConflict. Times are
// kept to the microsecond.
func (s *Store) PutLedger(ctx context.Context, l ledger.Ledger) (ledger.Ledger, bool, error) {
	if l.Cutoff == "" {
		l.Cutoff = "00:00"
	}
	if err := l.Validate(); err != nil {
		return ledger.Ledger{}, false, err
	}
	if l.SettlesForRecipientHandles == nil {
		l.SettlesForRecipientHandles = []string{}
	}
	if l.SalesUnits == nil {
		l.SalesUnits = []ledger.SalesUnit{}
	}
	if err := s.checkOpen(); err != nil {
		return ledger.Ledger{}, false, err
	}
	cfg := l
	cfg.OpenDate, cfg.CreatedAt, cfg.UpdatedAt = 0, time.Time{}, time.Time{}
	config, err := json.Marshal(cfg)
	if err != nil {
		return ledger.Ledger{}, false, err
	}
	var out ledger.Ledger
	var created bool
	for {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			now := s.now().UTC().Truncate(time.Microsecond)
			var (
				hasEntries        bool
				cur, zone, cutoff string
			)
			err := tx.QueryRow(ctx, "SELECT has_entries, currency, time_zone, cutoff FROM ledgers WHERE id = $1 FOR NO KEY UPDATE", l.ID).
				Scan(&hasEntries, &cur, &zone, &cutoff)
			switch {
			case err == nil:
				if hasEntries {
					switch {
					case l.Currency != cur:
						return fmt.Errorf("%w: currency: ledger %s has entries in %s; it cannot change", ledger.ErrConflict, l.ID, cur)
					case l.TimeZone != zone:
						return fmt.Errorf("%w: timeZone: ledger %s has entries dated in %s; it cannot change", ledger.ErrConflict, l.ID, zone)
					case l.Cutoff != cutoff:
						return fmt.Errorf("%w: cutoff: ledger %s has entries dated with cutoff %s; it cannot change", ledger.ErrConflict, l.ID, cutoff)
					}
				}
				out, err = scanLedger(tx.QueryRow(ctx, `UPDATE ledgers SET config = $2, currency = $3, time_zone = $4, cutoff = $5, updated_at = $6
					WHERE id = $1 RETURNING `+ledgerCols, l.ID, config, l.Currency, l.TimeZone, l.Cutoff, now))
				created = false
				return err
			case errors.Is(err, pgx.ErrNoRows):
				var num int32
				err := tx.QueryRow(ctx, `INSERT INTO ledgers (id, config, currency, time_zone, cutoff, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO NOTHING RETURNING num`,
					l.ID, config, l.Currency, l.TimeZone, l.Cutoff, now).Scan(&num)
				if errors.Is(err, pgx.ErrNoRows) {
					return errRetry // created by another node meanwhile: update it instead
				}
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "INSERT INTO heads (num, topic) VALUES ($1, 1), ($1, 2)", num); err != nil {
					return err
				}
				out = l
				out.OpenDate, out.CreatedAt, out.UpdatedAt = 0, now, now
				created = true
				return nil
			default:
				return err
			}
		})
		if !errors.Is(err, errRetry) {
			break
		}
	}
	if err != nil {
		return ledger.Ledger{}, false, fmt.Errorf("put ledger %s: %w", l.ID, err)
	}
	return out, created, nil
}

var errRetry = errors.New("retry")

// GetLedger returns a ledger, or ErrNotFound.
func (s *Store) GetLedger(id string) (ledger.Ledger, error) {
	if err := s.checkOpen(); err != nil {
		return ledger.Ledger{}, err
	}
	l, err := scanLedger(s.pool.QueryRow(context.Background(), "SELECT "+ledgerCols+" FROM ledgers WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return ledger.Ledger{}, fmt.Errorf("ledger %s: %w", id, ledger.ErrNotFound)
	}
	return l, err
}

// ListLedgers returns up to limit ledgers with ids after the given one, in
// byte order of their ids.
func (s *Store) ListLedgers(after string, limit int) ([]ledger.Ledger, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(context.Background(), "SELECT "+ledgerCols+" FROM ledgers WHERE id > $1 ORDER BY id LIMIT $2", after, max(limit, 0))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledger.Ledger
	for rows.Next() {
		l, err := scanLedger(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// notifyKeys queues NOTIFYs for the keys inside tx: PostgreSQL delivers
// them to every listening node when (and only if) tx commits.
func notifyKeys(ctx context.Context, tx pgx.Tx, keys []watchKey) error {
	if len(keys) == 0 {
		return nil
	}
	payloads := make([]string, len(keys))
	for i, k := range keys {
		payloads[i] = k.ledgerID + "/" + string(k.topic)
	}
	_, err := tx.Exec(ctx, "SELECT pg_notify('"+channel+"', p) FROM unnest($1::text[]) p", payloads)
	return err
}

func bothTopics(id string) []watchKey {
	return []watchKey{{id, ledger.TopicFunds}, {id, ledger.TopicFees}}
}

// advanceOpenDate moves a locked ledger's open date forward to d (never
// back) inside tx and queues the wake-ups. It returns the open date after.
func (s *Store) advanceOpenDate(ctx context.Context, tx pgx.Tx, id string, open, d ledger.Date) (ledger.Date, bool, error) {
	if d <= open {
		return open, false, nil
	}
	// The dates open..d-1 close now (closes table), unless the ledger had no
	// open date yet: dates before its first never opened.
	now := s.now().UTC().Truncate(time.Microsecond)
	if _, err := tx.Exec(ctx, `WITH l AS (UPDATE ledgers SET open_date = $2, updated_at = $3 WHERE id = $1 RETURNING num)
		INSERT INTO closes (num, open_date, closed_us) SELECT num, $2, $4 FROM l WHERE $5
		ON CONFLICT (num, open_date) DO UPDATE SET closed_us = excluded.closed_us`,
		id, int32(d), now, now.UnixMicro(), open != 0); err != nil {
		return open, false, err
	}
	return d, true, notifyKeys(ctx, tx, bothTopics(id))
}

// CloseDate closes date d of a ledger and every earlier date. Closing a date
// that is already closed changes nothing; closing one that has not begun is
// refused. It returns the ledger's open date afterwards.
func (s *Store) CloseDate(ctx context.Context, ledgerID string, d ledger.Date) (ledger.Date, error) {
	if d <= 0 {
		return 0, &ledger.FieldError{Field: "ledgerDate", Reason: "required"}
	}
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	var open ledger.Date
	var moved bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var zone, cutoff string
		var o int32
		err := tx.QueryRow(ctx, "SELECT time_zone, cutoff, open_date FROM ledgers WHERE id = $1 FOR NO KEY UPDATE", ledgerID).Scan(&zone, &cutoff, &o)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("ledger %s: %w", ledgerID, ledger.ErrNotFound)
		}
		if err != nil {
			return err
		}
		cal, err := (&ledger.Ledger{TimeZone: zone, Cutoff: cutoff}).Calendar()
		if err != nil {
			return fmt.Errorf("%w: ledger %s: %v", ledger.ErrDamaged, ledgerID, err)
		}
		if cal.Start(d).After(s.now().Add(ledger.FutureTimeSkew)) {
			return &ledger.FieldError{Field: "ledgerDate", Reason: fmt.Sprintf("%s has not begun in %s", d, zone)}
		}
		open, moved, err = s.advanceOpenDate(ctx, tx, ledgerID, ledger.Date(o), d+1)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("close %s of ledger %s: %w", d, ledgerID, err)
	}
	if moved {
		s.wakeLocal(bothTopics(ledgerID))
	}
	return open, nil
}

// CloseDue closes, in every ledger, each date whose end plus the grace period
// has passed. Ledgers without an open date are left alone. Every node may
// call it; the row lock makes concurrent calls harmless.
func (s *Store) CloseDue(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	type due struct {
		id string
		to ledger.Date
	}
	var todo []due
	now := s.now()
	rows, err := s.pool.Query(ctx, "SELECT id, time_zone, cutoff, open_date FROM ledgers WHERE open_date > 0")
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, zone, cutoff string
		var open int32
		if err := rows.Scan(&id, &zone, &cutoff, &open); err != nil {
			rows.Close()
			return err
		}
		cal, err := (&ledger.Ledger{TimeZone: zone, Cutoff: cutoff}).Calendar()
		if err != nil {
			rows.Close()
			return fmt.Errorf("%w: ledger %s: %v", ledger.ErrDamaged, id, err)
		}
		if d := cal.DateOf(now.Add(-s.grace)); d > ledger.Date(open) {
			todo = append(todo, due{id, d})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, d := range todo {
		var moved bool
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var o int32
			if err := tx.QueryRow(ctx, "SELECT open_date FROM ledgers WHERE id = $1 FOR NO KEY UPDATE", d.id).Scan(&o); err != nil {
				return err
			}
			var err error
			_, moved, err = s.advanceOpenDate(ctx, tx, d.id, ledger.Date(o), d.to)
			return err
		})
		if err != nil {
			return fmt.Errorf("close due dates of ledger %s: %w", d.id, err)
		}
		if moved {
			s.wakeLocal(bothTopics(d.id))
		}
	}
	return nil
}

// wakeLocal wakes this node's waiters right after a commit, without waiting
// for the notification's round trip (which wakes them again, harmlessly).
func (s *Store) wakeLocal(keys []watchKey) {
	for _, k := range keys {
		s.watch.Notify(k.ledgerID, k.topic)
	}
}
