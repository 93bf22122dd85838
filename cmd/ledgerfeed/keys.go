package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ledgerfeed/ledgerfeed/auth"
)

// runKeys runs "ledgerfeed keys rotate".
func runKeys(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	const about = "Manages the keys that sign access tokens, in DATA/keys.\n\nCommands:\n  rotate  make a new signing key; tokens signed with the old one stay valid until they expire"
	usage := func(w io.Writer) { fmt.Fprintf(w, "Usage: ledgerfeed keys rotate [--data DIR]\n\n%s\n", about) }
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
	fs := newFlagSet("keys rotate", "[--data DIR]", `Makes a new token signing key in DATA/keys and makes it the current one.
A server running on the data directory signs new tokens with it within a few
seconds, and serves it in /.well-known/jwks.json; tokens signed with the
previous key stay valid until they expire. Run it on the host of the data
directory, as the user the server runs as.`, stderr)
	cfg.dataFlag(fs)
	var asJSON bool
	fs.BoolVar(&asJSON, "json", false, `print {"kid": …}`)
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(fs, "unexpected argument %q", pos[0])
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
