package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// reportLedger puts ledger 302321 (NOK) with 5 entries a date in each topic
// on 2024-05-01..03 into a new store in dir, the dates closed.
func reportLedger(t *testing.T, dir string) {
	t.Helper()
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := st.PutLedger(ctx, ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"}); err != nil {
		t.Fatal(err)
	}
	for d := range 3 {
		date, _ := ledger.ParseDate(fmt.Sprintf("2024-05-%02d", d+1))
		for _, topic := range ledger.Topics {
			var in []ledger.EntryInput
			for i := range 5 {
				in = append(in, ledger.EntryInput{EntryID: fmt.Sprintf("%d-%d", d, i), PSPReference: fmt.Sprintf("p%d%d", d, i),
					Time: time.Date(2024, 5, d+1, 10, i, 0, 0, time.UTC), LedgerDate: date, EntryType: "capture", Amount: int64(100*i + 5)})
			}
			if _, err := st.Append(ctx, "302321", topic, in); err != nil {
				t.Fatal(err)
			}
		}
	}
	last, _ := ledger.ParseDate("2024-05-03")
	if _, err := st.CloseDate(ctx, "302321", last); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReportCmd_RequestListDownload(t *testing.T) {
	dir := t.TempDir()
	reportLedger(t, dir)
	s := startServe(t, dir, "--token-rate-limit=-1")
	t.Setenv("LEDGERFEED_SERVER", "http://"+s.httpAddr)
	t.Setenv("LEDGERFEED_DATA", dir)
	t.Setenv("LEDGERFEED_CLIENT_ID", "")
	t.Setenv("LEDGERFEED_CLIENT_SECRET", "")
	t.Setenv("LEDGERFEED_CREDENTIALS", "")
	m := secretRE.FindStringSubmatch(mustRun(t, "client", "create", "acme", "--grant", "302321"))
	if m == nil {
		t.Fatal("client create printed no secret")
	}
	t.Setenv("LEDGERFEED_CLIENT_ID", "acme")
	t.Setenv("LEDGERFEED_CLIENT_SECRET", m[1])
	out := t.TempDir()

	// request -o: waits, shows progress, downloads.
	csvPath := filepath.Join(out, "may.csv")
	stdout, stderr, err := runCmd(t, "report", "request", "--ledger", "302321", "--from", "2024-05-01", "--to", "2024-05-03", "--topic", "funds", "-o", csvPath)
	if err != nil {
		t.Fatalf("report request: %v\n%s", err, stderr)
	}
	if strings.TrimSpace(stdout) != csvPath || !strings.Contains(stderr, ": successful (") || !strings.Contains(stderr, "wrote "+csvPath) {
		t.Errorf("report request printed %q, stderr:\n%s", stdout, stderr)
	}
	b, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+15 || recs[0][0] != "topic" || recs[1][0] != "funds" || recs[1][8] != "0.05" {
		t.Errorf("CSV: %d records, first %q %q", len(recs), recs[0], recs[1])
	}

	// request without -o answers at once with the id; download fetches it.
	stdout = mustRun(t, "report", "request", "--ledger", "302321", "--from", "2024-05-02", "--to", "2024-05-02", "--type", "balances", "--format", "xlsx", "--language", "nb")
	idm := regexp.MustCompile(`(?m)^id=(\S+)$`).FindStringSubmatch(stdout)
	if idm == nil || !strings.Contains(stdout, "status=pending") || !strings.Contains(stdout, "name=302321-balances-funds-fees-2024-05-02-2024-05-02.xlsx") {
		t.Fatalf("report request printed:\n%s", stdout)
	}
	// download with no -o: the file's own name, in the working directory.
	t.Chdir(out)
	if _, stderr, err := runCmd(t, "report", "download", idm[1]); err != nil {
		t.Fatalf("report download: %v\n%s", err, stderr)
	}
	xb, err := os.ReadFile(filepath.Join(out, "302321-balances-funds-fees-2024-05-02-2024-05-02.xlsx"))
	if err != nil || !bytes.HasPrefix(xb, []byte("PK")) {
		t.Errorf("xlsx: %v, starts %q", err, xb[:min(len(xb), 4)])
	}

	// list shows both, newest first.
	lines := strings.Split(strings.TrimSpace(mustRun(t, "report", "list")), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], idm[1]+" ") || !strings.Contains(lines[2], "successful") {
		t.Errorf("report list:\n%s", strings.Join(lines, "\n"))
	}

	// Errors: an unknown file, an open date, no temp files left.
	_, _, err = runCmd(t, "report", "download", "nosuchfile")
	if !isStatus(err, 404) {
		t.Errorf("download of an unknown file: %v", err)
	}
	_, _, err = runCmd(t, "report", "request", "--ledger", "302321", "--from", "2098-12-31", "--to", "2099-01-01")
	if !isStatus(err, 400) || !strings.Contains(err.Error(), "toLedgerDate") {
		t.Errorf("request of an open date: %v", err)
	}
	if _, _, err := runCmd(t, "report", "request", "--ledger", "302321"); exitCode(err, io.Discard) != 2 {
		t.Errorf("missing --from: %v", err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(out, ".*.tmp")); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

func TestReportSettings(t *testing.T) {
	env := map[string]string{"LEDGERFEED_REPORT_RETENTION": "48h", "LEDGERFEED_REPORT_DOWNLOADS_PER_HOUR": "5"}
	fs := newFlagSet("serve", "", "", io.Discard)
	rs, err := bindReportFlags(fs, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--report-link-ttl", "2m", "--report-downloads-per-hour", "7", "--public-url", "https://lf.example.com/"}); err != nil {
		t.Fatal(err)
	}
	if err := rs.check(); err != nil {
		t.Fatal(err)
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := rs.config(nil, "/data", 1, discard)
	if c.Retention != 48*time.Hour || c.TokenTTL != 2*time.Minute || c.DownloadsPerHour != 7 || c.BaseURL != "https://lf.example.com" || c.Dir != filepath.Join("/data", "reports") {
		t.Errorf("config %+v", c)
	}
	// Several nodes: each allows its share, rounded up; no limit stays none.
	if c := rs.config(nil, "/data", 3, discard); c.DownloadsPerHour != 3 {
		t.Errorf("7 an hour on 3 nodes: %d a node, want 3", c.DownloadsPerHour)
	}
	rs.DownloadsPerHour = 0
	if c := rs.config(nil, "/data", 2, discard); c.DownloadsPerHour != 13 {
		t.Errorf("the default 25 on 2 nodes: %d a node, want 13", c.DownloadsPerHour)
	}
	rs.DownloadsPerHour = -1
	if c := rs.config(nil, "/data", 3, discard); c.DownloadsPerHour != -1 {
		t.Errorf("no limit on 3 nodes: %d", c.DownloadsPerHour)
	}
	if _, err := bindReportFlags(newFlagSet("serve", "", "", io.Discard), func(k string) string {
		return map[string]string{"LEDGERFEED_REPORT_LINK_TTL": "soon"}[k]
	}); err == nil || !strings.Contains(err.Error(), "LEDGERFEED_REPORT_LINK_TTL") {
		t.Errorf("bad env: %v", err)
	}
	for _, bad := range [][]string{{"--public-url", "ftp://x"}, {"--public-url", "https://x/base"}, {"--report-retention", "-1h"}, {"--report-workers", "100"}} {
		fs := newFlagSet("serve", "", "", io.Discard)
		rs, _ := bindReportFlags(fs, func(string) string { return "" })
		if err := fs.Parse(bad); err != nil {
			t.Fatal(err)
		}
		if err := rs.check(); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
