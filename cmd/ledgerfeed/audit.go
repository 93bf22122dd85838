package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// auditFollowEvery is how often audit --follow asks for new events once it
// has read to the end of the log.
const auditFollowEvery = 2 * time.Second

// runAudit prints the audit log, oldest first, from GET /admin/v1/audit.
func runAudit(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit", "[--client-id-filter ID] [--action ACTION] [--follow] [--json]", `Prints the server's audit log, oldest first: every token issue, data read,
download and admin change with who, what, when, the result and the contextId.
--follow keeps waiting for new events until interrupted. --json prints one
JSON object per line. Connects as an admin client, like "ledgerfeed client";
prefer LEDGERFEED_CLIENT_SECRET to --client-secret: flags show in ps.`, stderr)
	ac := newAPIConfig(os.Getenv, cfg.DataDir)
	ac.bind(fs)
	var (
		clientID, action, cursor string
		follow, asJSON           bool
		pageSize                 int
		every                    time.Duration
	)
	fs.StringVar(&clientID, "client-id-filter", "", "only the events of the client `ID`")
	fs.StringVar(&action, "action", "", "only the events of `ACTION`, e.g. token.issue, client.create, feed.read")
	fs.StringVar(&cursor, "cursor", "", "start after `CURSOR` (printed to stderr at the end of a run without --follow)")
	fs.BoolVar(&follow, "follow", false, "keep printing new events until interrupted")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object per event and line")
	fs.IntVar(&pageSize, "page-size", 1000, "events per request, 1 to 1000")
	fs.DurationVar(&every, "interval", auditFollowEvery, "with --follow, wait this long between polls at the end of the log")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef(fs, "unexpected argument %q", pos[0])
	case pageSize < 1 || pageSize > 1000:
		return usagef(fs, "--page-size %d: want 1 to 1000", pageSize)
	case every <= 0:
		return usagef(fs, "--interval must be positive")
	}
	api, err := ac.connect(stderr)
	if err != nil {
		return usagef(fs, "%v", err)
	}

	print := auditPrinter(stdout, asJSON)
	for {
		page, err := api.listAudit(ctx, clientID, action, cursor, pageSize)
		if err != nil {
			if follow && errors.Is(err, context.Canceled) {
				return nil // interrupted: the normal end of --follow
			}
			return fmt.Errorf("audit: %w", err)
		}
		if err := print(page.Items); err != nil {
			return err
		}
		// A short page is the end of the log for now. (Reading the log
		// adds events to it, so "until an empty page" could chase itself.)
		atEnd := len(page.Items) < pageSize || page.Cursor == "" || page.Cursor == cursor
		if page.Cursor != "" {
			cursor = page.Cursor
		}
		if !atEnd {
			continue
		}
		if !follow {
			if cursor != "" {
				fmt.Fprintf(stderr, "to continue later: ledgerfeed audit --cursor %s\n", cursor)
			}
			return nil
		}
		if err := sleepCtx(ctx, every); err != nil {
			return nil // interrupted
		}
	}
}

// auditPrinter returns a function that prints a page of events: lines
// in fixed columns (so that pages, and --follow, line up), or JSON lines.
func auditPrinter(w io.Writer, asJSON bool) func([]auditEvent) error {
	const row = "%-27s  %-16s  %-20s  %-24s  %-6s  %-6s  %s\n"
	header := true
	return func(items []auditEvent) error {
		if asJSON {
			enc := json.NewEncoder(w)
			for _, e := range items {
				if err := enc.Encode(e); err != nil {
					return err
				}
			}
			return nil
		}
		if header {
			if _, err := fmt.Fprintf(w, row, "TIME", "CLIENT", "ACTION", "RESOURCE", "RESULT", "STATUS", "CONTEXT"); err != nil {
				return err
			}
			header = false
		}
		for _, e := range items {
			if _, err := fmt.Fprintf(w, row, e.Time, dash(e.ClientID), e.Action, dash(e.Resource), e.Result, strconv.Itoa(int(e.Status)), e.ContextID); err != nil {
				return err
			}
		}
		return nil
	}
}
