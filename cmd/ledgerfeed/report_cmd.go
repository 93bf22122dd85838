package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// reportCommands are the subcommands of "ledgerfeed report".
var reportCommands = []apiSubcommand[*reportCmd]{
	{"request", "--ledger ID --from DATE --to DATE [--type entries|balances] [--format csv|xlsx] [-o FILE]", "ask for a report file; with -o (or --wait) wait for it and download it", (*reportCmd).request},
	{"list", "", "list your report files, newest first", (*reportCmd).list},
	{"download", "ID [-o FILE]", "wait until a report file is ready, showing its progress, and download it", (*reportCmd).download},
}

const reportAbout = `Report files (CSV or XLSX) through the server's report API, as the client given by
--client-id and its secret (--client-secret, --credentials, LEDGERFEED_CLIENT_SECRET).
The client needs scope read and a grant for the ledger. Downloads are written to
a temporary file, synced and renamed, so FILE is whole or absent.`

// Poll intervals while a file is pending or running.
var (
	reportPollFirst = 250 * time.Millisecond
	reportPollMax   = 5 * time.Second
)

// runReport runs "ledgerfeed report SUBCOMMAND".
func runReport(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	return apiGroup[*reportCmd]{name: "report", about: reportAbout, commands: reportCommands,
		wrap: func(c *apiCmd) *reportCmd { return &reportCmd{apiCmd: c} }}.run(ctx, cfg, args, stdout, stderr)
}

// reportCmd is one run of a report subcommand.
type reportCmd struct {
	*apiCmd
}

// apiReportFile is a report file as the API answers it.
type apiReportFile struct {
	ID             string   `json:"id"`
	Status         string   `json:"status"`
	Type           string   `json:"type"`
	LedgerID       string   `json:"ledgerId"`
	Topics         []string `json:"topics"`
	FromLedgerDate string   `json:"fromLedgerDate"`
	ToLedgerDate   string   `json:"toLedgerDate"`
	Format         string   `json:"format"`
	Language       string   `json:"language"`
	Source         string   `json:"source"`
	ScheduleID     string   `json:"scheduleId"`
	CreatedAt      string   `json:"createdAt"`
	CompletedAt    string   `json:"completedAt,omitempty"`
	FileName       string   `json:"fileName"`
	SizeBytes      flexInt  `json:"sizeBytes"`
	Error          string   `json:"error"`
	DownloadAction *struct {
		URL       string `json:"url"`
		Method    string `json:"method"`
		ExpiresAt string `json:"expiresAt"`
	} `json:"downloadAction,omitempty"`
}

func (rc *reportCmd) request(ctx context.Context, args []string) error {
	var topics listFlag
	ledgerID := rc.fs.String("ledger", "", "`ID` of the ledger (required)")
	from := rc.fs.String("from", "", "first ledger date, `YYYY-MM-DD` (required)")
	to := rc.fs.String("to", "", "last ledger date, `YYYY-MM-DD` (required; closed)")
	typ := rc.fs.String("type", "entries", "`TYPE`: entries (a row per entry) or balances (a row per date and topic)")
	format := rc.fs.String("format", "", "`FORMAT`: csv or xlsx (default: from -o's extension, else csv)")
	lang := rc.fs.String("language", "en", "column titles, `LANG`: en or nb")
	gdpr := rc.fs.Bool("gdpr", false, "add the GDPR-sensitive columns (needs GDPR consent)")
	rc.fs.Var(&topics, "topic", "`TOPIC` funds or fees; repeatable (default both)")
	out := rc.fs.String("o", "", "wait for the file and write it to `FILE`")
	wait := rc.fs.Bool("wait", false, "wait for the file and download it under its own name (as -o with no name)")
	if _, err := rc.parse(args); err != nil {
		return err
	}
	if *ledgerID == "" || *from == "" || *to == "" {
		return usagef(rc.fs, "--ledger, --from and --to are required")
	}
	if *format == "" {
		*format = "csv"
		if strings.EqualFold(filepath.Ext(*out), ".xlsx") {
			*format = "xlsx"
		}
	}
	body := map[string]any{"type": *typ, "ledgerId": *ledgerID, "fromLedgerDate": *from, "toLedgerDate": *to,
		"format": *format, "language": *lang, "topics": nonNil([]string(topics)), "includeGDPRSensitiveData": *gdpr}
	var f apiReportFile
	// Not idempotent: a retried POST could make a second file.
	if err := rc.api.call(ctx, http.MethodPost, "/report/v2/files", nil, body, &f, false); err != nil {
		return fmt.Errorf("request report file: %w", err)
	}
	if !*wait && *out == "" {
		return rc.printFile(f)
	}
	fmt.Fprintf(rc.stderr, "report file %s requested (%s)\n", f.ID, f.FileName)
	return rc.fetch(ctx, f.ID, *out)
}

func (rc *reportCmd) list(ctx context.Context, args []string) error {
	status := rc.fs.String("status", "", "only files in `STATUS`: pending, running, successful or failed")
	source := rc.fs.String("source", "", "only files from `SOURCE`: manual or auto (a schedule)")
	ledgerID := rc.fs.String("ledger", "", "only files of ledger `ID`")
	since := rc.fs.Duration("since", 0, "only files requested within `DURATION` (default: the server's, 30 days)")
	if _, err := rc.parse(args); err != nil {
		return err
	}
	q := url.Values{"limit": {"100"}}
	for k, v := range map[string]string{"status": *status, "source": *source, "ledgerId": *ledgerID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *since > 0 {
		q.Set("createdAfter", time.Now().Add(-*since).UTC().Format(time.RFC3339))
	}
	var all []apiReportFile
	for offset := 0; ; {
		q.Set("offset", strconv.Itoa(offset))
		var page struct {
			Count   int             `json:"count"`
			Next    *string         `json:"next"`
			Results []apiReportFile `json:"results"`
		}
		if err := rc.api.call(ctx, http.MethodGet, "/report/v2/files", q, nil, &page, true); err != nil {
			return fmt.Errorf("list report files: %w", err)
		}
		all = append(all, page.Results...)
		offset += len(page.Results)
		if page.Next == nil || len(page.Results) == 0 {
			break
		}
	}
	if rc.json {
		return writeJSON(rc.stdout, nonNil(all))
	}
	tw := tabwriter.NewWriter(rc.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tLEDGER\tTYPE\tDATES\tSOURCE\tCREATED\tSIZE\tNAME")
	for _, f := range all {
		size := "-"
		if f.Status == "successful" {
			size = humanBytes(int64(f.SizeBytes))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s..%s\t%s\t%s\t%s\t%s\n", f.ID, f.Status, f.LedgerID, f.Type,
			f.FromLedgerDate, f.ToLedgerDate, f.Source, f.CreatedAt, size, f.FileName)
	}
	return tw.Flush()
}

func (rc *reportCmd) download(ctx context.Context, args []string) error {
	out := rc.fs.String("o", "", "write the file to `FILE` (default: its own name in the current directory)")
	pos, err := rc.parse(args, "ID")
	if err != nil {
		return err
	}
	return rc.fetch(ctx, pos[0], *out)
}

func (rc *reportCmd) printFile(f apiReportFile) error {
	if rc.json {
		return writeJSON(rc.stdout, f)
	}
	fmt.Fprintf(rc.stdout, "id=%s\nstatus=%s\nname=%s\n", f.ID, f.Status, f.FileName)
	return nil
}

// fetch waits until file id has finished, saying what it is doing on
// stderr, and downloads it to path (its own name when path is "").
func (rc *reportCmd) fetch(ctx context.Context, id, path string) error {
	f, err := rc.waitFile(ctx, id)
	if err != nil {
		return err
	}
	if f.Status == "failed" {
		return fmt.Errorf("report file %s failed: %s", f.ID, f.Error)
	}
	if path == "" {
		path = filepath.Base(f.FileName)
	}
	for attempt := 0; ; attempt++ {
		if f.DownloadAction == nil {
			return fmt.Errorf("report file %s: the server gave no download link", f.ID)
		}
		n, err := rc.save(ctx, f.DownloadAction.URL, path, int64(f.SizeBytes))
		if isStatus(err, http.StatusNotFound) && attempt == 0 {
			// The link expired between the look and the download: a fresh one.
			if f, err = rc.getFile(ctx, id); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("download report file %s: %w", f.ID, err)
		}
		fmt.Fprintf(rc.stderr, "wrote %s (%s)\n", path, humanBytes(n))
		if rc.json {
			return writeJSON(rc.stdout, f)
		}
		fmt.Fprintln(rc.stdout, path)
		return nil
	}
}

func (rc *reportCmd) getFile(ctx context.Context, id string) (apiReportFile, error) {
	var f apiReportFile
	if err := rc.api.call(ctx, http.MethodGet, "/report/v2/files/"+url.PathEscape(id), nil, nil, &f, true); err != nil {
		return f, fmt.Errorf("report file %s: %w", id, err)
	}
	return f, nil
}

// waitFile polls a file until it is successful or failed, printing each
// status change and, while it runs, how long it has been waiting.
func (rc *reportCmd) waitFile(ctx context.Context, id string) (apiReportFile, error) {
	start := time.Now()
	last, lastNote := "", time.Now()
	wait := reportPollFirst
	for {
		f, err := rc.getFile(ctx, id)
		if err != nil {
			return f, err
		}
		switch {
		case f.Status != last:
			fmt.Fprintf(rc.stderr, "report file %s: %s (%s)\n", f.ID, f.Status, time.Since(start).Round(100*time.Millisecond))
			last, lastNote = f.Status, time.Now()
		case time.Since(lastNote) >= 5*time.Second:
			fmt.Fprintf(rc.stderr, "report file %s: still %s (%s)\n", f.ID, f.Status, time.Since(start).Round(time.Second))
			lastNote = time.Now()
		}
		if f.Status == "successful" || f.Status == "failed" {
			return f, nil
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return f, err
		}
		wait = min(wait*2, reportPollMax)
	}
}

// save downloads u with the client's bearer token into path: a temp file
// beside it, synced, then renamed. It waits out a 429 (Retry-After) a few
// times. It returns the bytes written.
func (rc *reportCmd) save(ctx context.Context, u, path string, size int64) (int64, error) {
	for throttled := 0; ; throttled++ {
		tok, err := rc.api.bearer(ctx)
		if err != nil {
			return 0, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := rc.api.hc.Do(req)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode == http.StatusTooManyRequests && throttled < 3 {
			d := min(retryAfter(resp.Header.Get("Retry-After"), time.Now()), 5*time.Minute)
			drain(resp)
			fmt.Fprintf(rc.stderr, "download limit reached; retrying in %s\n", d)
			if err := sleepCtx(ctx, d); err != nil {
				return 0, err
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			e := readAPIError(resp)
			resp.Body.Close()
			return 0, e
		}
		n, err := saveAtomic(path, &progressReader{r: resp.Body, total: size, w: rc.stderr})
		resp.Body.Close()
		return n, err
	}
}

// saveAtomic writes r to path through a temp file in the same directory,
// fsynced and renamed, then fsyncs the directory: path is whole or absent.
func saveAtomic(path string, r io.Reader) (int64, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	return n, syncDir(dir)
}

// progressReader reports a download's progress on w about once a second.
type progressReader struct {
	r     io.Reader
	total int64
	n     int64
	last  time.Time
	w     io.Writer
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if now := time.Now(); now.Sub(p.last) >= time.Second {
		if p.last.IsZero() {
			p.last = now // not at the very start
		} else {
			p.last = now
			if p.total > 0 {
				fmt.Fprintf(p.w, "downloading: %s of %s (%d%%)\n", humanBytes(p.n), humanBytes(p.total), p.n*100/p.total)
			} else {
				fmt.Fprintf(p.w, "downloading: %s\n", humanBytes(p.n))
			}
		}
	}
	return n, err
}
