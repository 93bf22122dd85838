package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Progress is printed at most this often, or after this many more entries.
const (
	verifyReportEvery   = time.Second
	verifyReportEntries = 1_000_000
)

// runVerify recomputes every hash chain and balance, in the store itself or,
// while a server holds it, through the server's admin socket. Progress goes
// to stderr; "ok: N ledgers, M entries verified" to stdout. A damaged store
// is an error naming the first broken place.
func runVerify(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", "[--data DIR]", "Recomputes every hash chain and running balance in the store and reports the\nfirst broken place. Works while a server runs (through its admin socket).\nExit status 0: intact; 1: damaged or failed; 2: usage.", stderr)
	cfg.dataFlag(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(fs, "unexpected argument %q", pos[0])
	}

	m, err := openMaintainer(cfg.Store, cfg.DataDir, stderr)
	if err != nil {
		return err
	}
	defer m.Close()

	var last time.Time
	var lastEntries uint64
	progress := func(p ledger.VerifyProgress) {
		now := time.Now()
		if now.Sub(last) < verifyReportEvery && p.Entries-lastEntries < verifyReportEntries {
			return
		}
		last, lastEntries = now, p.Entries
		fmt.Fprintf(stderr, "verifying: ledger %s %s, %d entries checked\n", p.LedgerID, p.Topic, p.Entries)
	}
	last = time.Now() // nothing to report in the first second
	rep, err := m.Verify(ctx, progress)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	fmt.Fprintf(stdout, "ok: %d ledgers, %d entries verified\n", rep.Ledgers, rep.Entries)
	return nil
}
