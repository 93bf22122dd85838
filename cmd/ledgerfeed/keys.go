package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/pgstore"
)

// runKeys runs "ledgerfeed keys rotate".
func runKeys(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	const about = "Manages the keys that sign access tokens, in DATA/keys (in the database for a PostgreSQL store).\n\nCommands:\n  rotate  make a new signing key; tokens signed with the old one stay valid until they expire"
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: ledgerfeed keys rotate [--data DIR | --store postgres://…]\n\n%s\n", about)
	}
	if len(args) == 0 {
		usage(stderr)
		return usageError{errors.New("keys: no command")}
	}
	switch args[0] {
	case "rotate":
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	default:
		fmt.Fprintf(stderr, "ledgerfeed keys: unknown command %q\n\n", args[0])
		usage(stderr)
		return usageError{fmt.Errorf("keys: unknown command %q", args[0])}
	}
	fs := newFlagSet("keys rotate", "[--data DIR | --store postgres://…]", `Makes a new token signing key in DATA/keys and makes it the current one.
A server running on the data directory signs new tokens with it within a few
seconds, and serves it in /.well-known/jwks.json; tokens signed with the
previous key stay valid until they expire. Run it on the host of the data
directory, as the user the server runs as.
With --store postgres://… (or LEDGERFEED_STORE) it rotates the key that every
node serving that database shares, kept in the database: each node signs with
the new key within its --key-poll interval.`, stderr)
	cfg.dataFlag(fs)
	cfg.storeFlag(fs)
	var asJSON bool
	fs.BoolVar(&asJSON, "json", false, `print {"kid": …}`)
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(fs, "unexpected argument %q", pos[0])
	}
	dsn, err := cfg.resolveStore()
	if err != nil {
		return usagef(fs, "%v", err)
	}
	if dsn != "" {
		return rotateSharedKey(ctx, dsn, asJSON, stdout, stderr)
	}
	// A mistyped --data must not quietly make a key nobody uses.
	if _, err := os.Stat(filepath.Join(cfg.DataDir, dbFile)); err != nil {
		if _, kerr := os.Stat(auth.KeysDir(cfg.DataDir)); kerr != nil {
			return fmt.Errorf("keys rotate: no ledgerfeed data in %s (no %s, no keys; set --data or LEDGERFEED_DATA)", cfg.DataDir, dbFile)
		}
	}
	kid, err := auth.RotateKeyInDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	if asJSON {
		return writeJSON(stdout, map[string]string{"kid": kid})
	}
	fmt.Fprintf(stdout, "new signing key %s in %s\n", kid, auth.KeysDir(cfg.DataDir))
	fmt.Fprintln(stderr, "A server running on this data directory signs new tokens with it within a few\n"+
		"seconds; tokens signed with the previous key stay valid until they expire.")
	return nil
}

// rotateSharedKey rotates the signing key kept in a PostgreSQL store.
func rotateSharedKey(ctx context.Context, dsn string, asJSON bool, stdout, stderr io.Writer) error {
	st, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	defer st.Close()
	// A mistyped --store must not quietly make a key nobody uses.
	if _, err := st.GetRecord(ledger.RecordSigningKeys, auth.KeysRecordKey); errors.Is(err, ledger.ErrNotFound) {
		return fmt.Errorf("keys rotate: no signing keys in %s yet (a server makes the first when it starts on it)", redactDSN(dsn))
	} else if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	kid, err := auth.RotateKeyInRecords(st)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	if asJSON {
		return writeJSON(stdout, map[string]string{"kid": kid})
	}
	fmt.Fprintf(stdout, "new signing key %s in %s\n", kid, redactDSN(dsn))
	fmt.Fprintln(stderr, "Every server on this database signs new tokens with it within its --key-poll\n"+
		"interval (2s by default); tokens signed with the previous key stay valid until they expire.")
	return nil
}
