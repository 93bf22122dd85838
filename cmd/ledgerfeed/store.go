package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/server"
)

// Files in the data directory.
const (
	dbFile     = "ledgerfeed.db"
	socketFile = "ledgerfeed.sock"
)

func socketPath(dataDir string) string { return filepath.Join(dataDir, socketFile) }

// openStore opens the store in dataDir. The ledger's errors already say what
// to do (ErrDamaged: restore from a backup); this adds the directory.
func openStore(dataDir string, opts ledger.Options) (*ledger.Store, error) {
	st, err := ledger.Open(dataDir, opts)
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", dataDir, err)
	}
	return st, nil
}

// maintainer is what verify and backup need: the store itself, or a running
// server's admin socket when the server holds the store.
type maintainer interface {
	Verify(ctx context.Context, progress func(ledger.VerifyProgress)) (ledger.VerifyReport, error)
	Backup(ctx context.Context, w io.Writer) (ledger.BackupInfo, error)
	Close() error
}

// openMaintainer opens the store in dataDir, or, when a server holds it,
// a client of that server's admin socket. It never creates a store: a
// directory without one is an error.
func openMaintainer(dataDir string, stderr io.Writer) (maintainer, error) {
	if _, err := os.Stat(filepath.Join(dataDir, dbFile)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no store in %s (no %s there; set --data or LEDGERFEED_DATA)", dataDir, dbFile)
		}
		return nil, err
	}
	st, err := openStore(dataDir, ledger.Options{})
	if err == nil {
		return st, nil
	}
	if !errors.Is(err, ledger.ErrLocked) {
		return nil, err
	}
	sock := socketPath(dataDir)
	if _, serr := os.Stat(sock); serr != nil {
		return nil, fmt.Errorf("%w, and no server's admin socket is at %s", err, sock)
	}
	fmt.Fprintf(stderr, "store in %s is held by a running server; using its admin socket %s\n", dataDir, sock)
	return server.NewAdminClient(sock), nil
}
