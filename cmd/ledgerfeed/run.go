package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand. Each parses its own flags from args.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"serve", "run the server: REST, gRPC, metrics, health checks", runServe},
	{"migrate", "apply the PostgreSQL store's schema migrations and exit", runMigrate},
	{"migrate-store", "copy a bbolt store into an empty PostgreSQL database and verify it there", runMigrateStore},
	{"verify", "recompute every hash chain and balance in the store", runVerify},
	{"backup", "write a consistent backup of the store to a tar file", runBackup},
	{"client", "manage API clients: create, list, show, grant, revoke, rotate, delete", runClient},
	{"import", "post the entries of a JSON lines or CSV file through the admin API", runImport},
	{"report", "report files (CSV, XLSX): request, list, download", runReport},
	{"audit", "print the server's audit log", runAudit},
	{"keys", "rotate the key that signs access tokens: keys rotate", runKeys},
	{"sync", "mirror the ledgers a client may read into CSV files, checking balances and seals", runSync},
}

// run is the whole program: main adds only the signals, the real output
// streams and the exit code. ctx ends on SIGINT or SIGTERM.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaultConfig()
	if err := cfg.loadEnv(os.Getenv); err != nil {
		fmt.Fprintln(stderr, "ledgerfeed:", err)
		return usageError{err}
	}
	if len(args) == 0 {
		printUsage(stderr)
		return usageError{errors.New("no command")}
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 0 {
			// "ledgerfeed help serve" is "ledgerfeed serve -h".
			return run(ctx, []string{args[0], "-h"}, stdout, stderr)
		}
		printUsage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == name {
			if !storeFlagCommands[name] {
				if _, err := cfg.resolveStore(); err != nil {
					fmt.Fprintln(stderr, "ledgerfeed: LEDGERFEED_STORE:", err)
					return usageError{err}
				}
			}
			return c.run(ctx, cfg, args, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "ledgerfeed: unknown command %q\n\n", name)
	printUsage(stderr)
	return usageError{fmt.Errorf("unknown command %q", name)}
}

func printUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString("ledgerfeed serves settlement ledger entries as daily reports and cursor feeds.\n\n")
	b.WriteString("Usage:\n  ledgerfeed <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(&b, "  %-8s %s\n", "help", "show this help, or a command's flags: ledgerfeed help serve")
	b.WriteString("\nEvery flag can also be set by its LEDGERFEED_* environment variable; a flag wins.\n")
	io.WriteString(w, b.String())
}

// usageError is a mistake in the command line, already reported with usage
// on stderr; the program exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return "usage: " + e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// newFlagSet returns a FlagSet that reports to stderr with a usage line.
func newFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ledgerfeed "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ledgerfeed %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses args with fs, allowing flags after positional arguments
// ("backup FILE --data DIR"), and returns the positional arguments. Errors
// are usageError (already reported) or flag.ErrHelp.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// usagef reports a usage mistake found after flag parsing.
func usagef(fs *flag.FlagSet, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
	fs.Usage()
	return usageError{err}
}
