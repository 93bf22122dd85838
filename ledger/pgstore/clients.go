package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Clients are kept as the bbolt store keeps them: ledger.Client as JSON,
// one row per id (table clients, migration 0002). The methods below answer
// exactly as *ledger.Store's do, errors included.

// CreateClient stores a new client; an existing id fails with ErrConflict.
// Grants may name ledgers that do not exist yet.
func (s *Store) CreateClient(ctx context.Context, c ledger.Client) (ledger.Client, error) {
	if err := c.Validate(); err != nil {
		return ledger.Client{}, err
	}
	err := s.checkWrite(ctx)
	if err == nil {
		now := s.now().UTC()
		c.CreatedAt, c.UpdatedAt = now, now
		var tag pgconn.CommandTag
		tag, err = s.pool.Exec(ctx, "INSERT INTO clients (id, body) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", c.ID, mustJSON(c))
		if err == nil && tag.RowsAffected() == 0 {
			err = fmt.Errorf("%w: client %s exists", ledger.ErrConflict, c.ID)
		}
	}
	if err != nil {
		return ledger.Client{}, fmt.Errorf("create client %s: %w", c.ID, err)
	}
	return c, nil
}

// UpdateClient changes a stored client with fn, atomically: the row is
// locked from the read to the commit, so concurrent updates on any node
// apply one after the other. fn may run more than once and must only
// change its argument. An unknown id fails with ErrNotFound.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(*ledger.Client) error) (ledger.Client, error) {
	var out ledger.Client
	err := s.checkWrite(ctx)
	if err == nil {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var body string
			err := tx.QueryRow(ctx, "SELECT body FROM clients WHERE id = $1 FOR UPDATE", id).Scan(&body)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("client %s: %w", id, ledger.ErrNotFound)
			}
			if err != nil {
				return err
			}
			var c ledger.Client
			if err := json.Unmarshal([]byte(body), &c); err != nil {
				return fmt.Errorf("%w: client %s: %v", ledger.ErrDamaged, id, err)
			}
			if err := fn(&c); err != nil {
				return err
			}
			c.ID = id
			if err := c.Validate(); err != nil {
				return err
			}
			c.UpdatedAt = s.now().UTC()
			if _, err := tx.Exec(ctx, "UPDATE clients SET body = $2 WHERE id = $1", id, mustJSON(c)); err != nil {
				return err
			}
			out = c
			return nil
		})
	}
	if err != nil {
		return ledger.Client{}, fmt.Errorf("update client %s: %w", id, err)
	}
	return out, nil
}

// DeleteClient removes a client; an unknown id fails with ErrNotFound.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if err := s.checkWrite(ctx); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, "DELETE FROM clients WHERE id = $1", id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("client %s: %w", id, ledger.ErrNotFound)
	}
	return nil
}

// GetClient returns a client, or ErrNotFound.
func (s *Store) GetClient(id string) (ledger.Client, error) {
	if err := s.checkOpen(); err != nil {
		return ledger.Client{}, err
	}
	var body string
	err := s.pool.QueryRow(context.Background(), "SELECT body FROM clients WHERE id = $1", id).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return ledger.Client{}, fmt.Errorf("client %s: %w", id, ledger.ErrNotFound)
	}
	if err != nil {
		return ledger.Client{}, err
	}
	var c ledger.Client
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		return ledger.Client{}, fmt.Errorf("%w: client %s: %v", ledger.ErrDamaged, id, err)
	}
	return c, nil
}

// ListClients returns up to limit clients with ids after the given one, in
// byte order of the id.
func (s *Store) ListClients(after string, limit int) ([]ledger.Client, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(context.Background(), "SELECT id, body FROM clients WHERE id > $1 ORDER BY id LIMIT $2", after, limit)
	if err != nil {
		return nil, err
	}
	var out []ledger.Client
	var id, body string
	_, err = pgx.ForEachRow(rows, []any{&id, &body}, func() error {
		var c ledger.Client
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			return fmt.Errorf("%w: client %s: %v", ledger.ErrDamaged, id, err)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// checkWrite is what the bbolt store checks before a write: ctx first, then
// that the store is open.
func (s *Store) checkWrite(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.checkOpen()
}

// mustJSON encodes v as the bbolt store does; v's types always encode.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
