package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// AdminClientID is the client Bootstrap makes.
const AdminClientID = "admin"

// AdminCredentialsFile is the file in the data directory where Bootstrap
// writes a random admin secret.
const AdminCredentialsFile = "admin-credentials"

// CreateClient stores a new client with a new random secret and returns the
// client and the secret, which is not kept anywhere in clear. Invalid fields
// fail with a *ledger.FieldError, an existing id with ledger.ErrConflict.
func (a *Service) CreateClient(ctx context.Context, id string, scopes []string, grants []ledger.Grant) (ledger.Client, string, error) {
	secret := NewSecret()
	c, err := a.createClient(ctx, id, secret, scopes, grants)
	if err != nil {
		return ledger.Client{}, "", err
	}
	return c, secret, nil
}

func (a *Service) createClient(ctx context.Context, id, secret string, scopes []string, grants []ledger.Grant) (ledger.Client, error) {
	hash, err := a.HashSecret(ctx, secret)
	if err != nil {
		return ledger.Client{}, err
	}
	return a.store.CreateClient(ctx, ledger.Client{
		ID: id, SecretHash: hash, Scopes: slices.Clone(scopes), Grants: cloneGrants(grants),
	})
}

// ReplaceClient replaces a client's scopes and grants (PUT semantics); its
// secret stays. An unknown id fails with ledger.ErrNotFound.
func (a *Service) ReplaceClient(ctx context.Context, id string, scopes []string, grants []ledger.Grant) (ledger.Client, error) {
	return a.store.UpdateClient(ctx, id, func(c *ledger.Client) error {
		c.Scopes = slices.Clone(scopes)
		c.Grants = cloneGrants(grants)
		return nil
	})
}

// RotateSecret gives a client a new random secret and returns it; the old
// secret stops working at once. Tokens already issued stay valid until they
// expire. An unknown id fails with ledger.ErrNotFound.
func (a *Service) RotateSecret(ctx context.Context, id string) (string, error) {
	if _, err := a.store.GetClient(id); err != nil {
		return "", err
	}
	secret := NewSecret()
	hash, err := a.HashSecret(ctx, secret)
	if err != nil {
		return "", err
	}
	if _, err := a.store.UpdateClient(ctx, id, func(c *ledger.Client) error {
		c.SecretHash = hash
		return nil
	}); err != nil {
		return "", err
	}
	return secret, nil
}

// Bootstrap makes the "admin" client (scope admin) when the store has no
// client at all, and does nothing otherwise (created false). Its secret is
// adminSecret when given; else a random one, which is also written to
// DataDir/admin-credentials (mode 0600) as "client_id=admin\nclient_secret=…\n".
// The secret is returned for the caller to print once.
func (a *Service) Bootstrap(ctx context.Context, adminSecret string) (created bool, secret string, err error) {
	existing, err := a.store.ListClients("", 1)
	if err != nil {
		return false, "", fmt.Errorf("bootstrap: %w", err)
	}
	if len(existing) > 0 {
		return false, "", nil
	}
	secret = adminSecret
	path := ""
	if secret == "" {
		secret = NewSecret()
		path = filepath.Join(a.cfg.DataDir, AdminCredentialsFile)
		body := fmt.Sprintf("client_id=%s\nclient_secret=%s\n", AdminClientID, secret)
		if err := writeFileAtomic(path, []byte(body)); err != nil {
			return false, "", fmt.Errorf("bootstrap: write %s: %w", path, err)
		}
	}
	if _, err := a.createClient(ctx, AdminClientID, secret, []string{ledger.ScopeAdmin}, nil); err != nil {
		if path != "" {
			os.Remove(path)
		}
		if errors.Is(err, ledger.ErrConflict) {
			return false, "", nil // made by a concurrent start
		}
		return false, "", fmt.Errorf("bootstrap: %w", err)
	}
	return true, secret, nil
}

func cloneGrants(g []ledger.Grant) []ledger.Grant {
	if g == nil {
		return []ledger.Grant{}
	}
	return slices.Clone(g)
}
