package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Scopes a client can hold.
const (
	ScopeRead  = "read"  // the public report API, for granted ledgers
	ScopeAdmin = "admin" // the admin and ingest API
)

// Grant lets a client read one ledger, with or without its GDPR fields.
type Grant struct {
	LedgerID    string `json:"ledgerId"`
	GDPRConsent bool   `json:"gdprConsent"`
}

// Client is an API client as stored. Its secret is kept only as a hash
// (made and checked by package auth).
type Client struct {
	ID         string    `json:"clientId"`
	SecretHash string    `json:"secretHash"`
	Scopes     []string  `json:"scopes"`
	Grants     []Grant   `json:"grants"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// HasScope reports whether c holds scope.
func (c *Client) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// Grant returns c's grant for a ledger.
func (c *Client) Grant(ledgerID string) (Grant, bool) {
	for _, g := range c.Grants {
		if g.LedgerID == ledgerID {
			return g, true
		}
	}
	return Grant{}, false
}

// validate checks the fields a caller sets.
func (c *Client) validate() error {
	if !validIdent(c.ID, maxIDLen) {
		return fieldErr("clientId", "must be 1–%d characters of A–Z a–z 0–9 . _ - :", maxIDLen)
	}
	if c.SecretHash == "" {
		return fieldErr("clientSecret", "required")
	}
	if len(c.Scopes) == 0 {
		return fieldErr("scopes", "required: read, admin or both")
	}
	for i, s := range c.Scopes {
		if s != ScopeRead && s != ScopeAdmin {
			return fieldErr(fmt.Sprintf("scopes[%d]", i), "%q is not a scope (read or admin)", s)
		}
		if slices.Contains(c.Scopes[:i], s) {
			return fieldErr(fmt.Sprintf("scopes[%d]", i), "%q is listed twice", s)
		}
	}
	if len(c.Grants) > 10000 {
		return fieldErr("grants", "more than 10000 grants")
	}
	seen := make(map[string]bool, len(c.Grants))
	for i, g := range c.Grants {
		if !validIdent(g.LedgerID, maxIDLen) {
			return fieldErr(fmt.Sprintf("grants[%d].ledgerId", i), "%q is not a ledger id", g.LedgerID)
		}
		if seen[g.LedgerID] {
			return fieldErr(fmt.Sprintf("grants[%d].ledgerId", i), "ledger %s is granted twice", g.LedgerID)
		}
		seen[g.LedgerID] = true
	}
	return nil
}

// CreateClient stores a new client; an existing id fails with ErrConflict.
// Grants may name ledgers that do not exist yet.
func (s *Store) CreateClient(ctx context.Context, c Client) (Client, error) {
	if err := c.validate(); err != nil {
		return Client{}, err
	}
	res, err := s.write(ctx, func(w *wtx) (any, error) {
		b := w.Bucket(bucketClients)
		if b.Get([]byte(c.ID)) != nil {
			return nil, conflictErr("client %s exists", c.ID)
		}
		now := s.now().UTC()
		c.CreatedAt, c.UpdatedAt = now, now
		return c, dirty(b.Put([]byte(c.ID), mustJSON(c)))
	})
	if err != nil {
		return Client{}, fmt.Errorf("create client %s: %w", c.ID, err)
	}
	return res.(Client), nil
}

// UpdateClient changes a stored client with fn, atomically; fn may run more
// than once and must only change its argument. It fails with ErrNotFound for
// an unknown id.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(*Client) error) (Client, error) {
	res, err := s.write(ctx, func(w *wtx) (any, error) {
		b := w.Bucket(bucketClients)
		v := b.Get([]byte(id))
		if v == nil {
			return nil, fmt.Errorf("client %s: %w", id, ErrNotFound)
		}
		var c Client
		if err := json.Unmarshal(v, &c); err != nil {
			return nil, fmt.Errorf("%w: client %s: %v", ErrDamaged, id, err)
		}
		if err := fn(&c); err != nil {
			return nil, err
		}
		c.ID = id
		if err := c.validate(); err != nil {
			return nil, err
		}
		c.UpdatedAt = s.now().UTC()
		return c, dirty(b.Put([]byte(id), mustJSON(c)))
	})
	if err != nil {
		return Client{}, fmt.Errorf("update client %s: %w", id, err)
	}
	return res.(Client), nil
}

// DeleteClient removes a client; an unknown id fails with ErrNotFound.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	_, err := s.write(ctx, func(w *wtx) (any, error) {
		b := w.Bucket(bucketClients)
		if b.Get([]byte(id)) == nil {
			return nil, fmt.Errorf("client %s: %w", id, ErrNotFound)
		}
		return nil, dirty(b.Delete([]byte(id)))
	})
	return err
}

// GetClient returns a client, or ErrNotFound.
func (s *Store) GetClient(id string) (Client, error) {
	var c Client
	err := s.viewTx(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketClients).Get([]byte(id))
		if v == nil {
			s.clientRecs.forget(id)
			return fmt.Errorf("client %s: %w", id, ErrNotFound)
		}
		shared, err := s.clientRecs.get(id, v, func(b []byte) (c Client, err error) {
			return c, json.Unmarshal(b, &c)
		})
		// The caller owns what it gets: its slices are copies.
		c = shared
		c.Scopes = slices.Clone(shared.Scopes)
		c.Grants = slices.Clone(shared.Grants)
		return err
	})
	return c, err
}

// ListClients returns up to limit clients with ids after the given one.
func (s *Store) ListClients(after string, limit int) ([]Client, error) {
	var out []Client
	err := s.viewTx(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketClients).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			var cl Client
			if err := json.Unmarshal(v, &cl); err != nil {
				return fmt.Errorf("%w: client %s: %v", ErrDamaged, k, err)
			}
			out = append(out, cl)
		}
		return nil
	})
	return out, err
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
