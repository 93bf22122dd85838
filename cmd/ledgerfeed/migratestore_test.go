package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/pgstore"
)

const (
	msAdminSecret = "migrate-store-admin-secret"
	msDemoSecret  = "migrate-store-demo-secret"
)

// msGet does one request and returns status, body and the response
// headers' Content-Type.
func msGet(t *testing.T, method, addr, path, token, body string) (int, string) {
	t.Helper()
	return saDo(t, method, "http://"+addr+path, token, body)
}

// msJSON decodes a JSON answer into v or fails.
func msJSON(t *testing.T, what, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, body)
	}
}

// msDemoStore serves the demo on a bbolt store and adds what the demo
// lacks: a GDPR erasure, a finished report file and a schedule. It waits
// until every closed date is sealed, and returns the running server, the
// partner's and the admin's tokens from it, and the report file's
// download path.
func msDemoStore(t *testing.T, dir string) (s *serving, partner, admin, download, erasedDate string) {
	t.Helper()
	s, out := serveWithStdout(t, dir, "--demo", "--demo-secret", msDemoSecret, "--admin-secret", msAdminSecret,
		"--rate-limit=-1", "--token-rate-limit=-1")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.text(), "includeGDPRSensitiveData=true") {
		if time.Now().After(deadline) {
			t.Fatalf("demo not seeded within 60s:\n%s\n%s", out.text(), s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var code int
	if code, partner = saToken(t, s.httpAddr, demoClientID, msDemoSecret); code != 200 {
		t.Fatalf("partner token: %d", code)
	}
	if code, admin = saToken(t, s.httpAddr, "admin", msAdminSecret); code != 200 {
		t.Fatalf("admin token: %d", code)
	}

	// Erase the GDPR fields of the first funds entry that has them.
	code, body := msGet(t, "GET", s.httpAddr, "/report/v2/ledgers/302321/funds/feed?pageSize=100&includeGDPRSensitiveData=true", partner, "")
	var page struct {
		Items []map[string]any `json:"items"`
	}
	msJSON(t, "feed", body, &page)
	psp := ""
	for _, it := range page.Items {
		if it["name"] != nil {
			psp, _ = it["pspReference"].(string)
			erasedDate, _ = it["ledgerDate"].(string)
			break
		}
	}
	if code != 200 || psp == "" {
		t.Fatalf("no entry with GDPR fields in the first page: %d %s", code, body)
	}
	code, body = msGet(t, "POST", s.httpAddr, "/admin/v1/ledgers/302321/gdpr-erasures", admin, `{"pspReference":"`+psp+`"}`)
	if code != 200 || !strings.Contains(body, "1") {
		t.Fatalf("erasure: %d %s", code, body)
	}

	// A schedule and a finished report file.
	code, body = msGet(t, "PUT", s.httpAddr, "/admin/v1/ledgers/302321/report-schedules/weekly-csv", admin,
		`{"clientId":"demo-partner","frequency":"weekly","type":"entries","format":"csv","language":"nb"}`)
	if code != 201 {
		t.Fatalf("schedule: %d %s", code, body)
	}
	yesterday := time.Now().UTC().AddDate(0, 0, -3).Format("2006-01-02")
	from := time.Now().UTC().AddDate(0, 0, -10).Format("2006-01-02")
	code, body = msGet(t, "POST", s.httpAddr, "/report/v2/files", partner,
		`{"type":"entries","ledgerId":"302321","topics":["funds","fees"],"fromLedgerDate":"`+from+`","toLedgerDate":"`+yesterday+`","format":"csv","language":"en"}`)
	var f struct {
		ID             string `json:"id"`
		Status         string `json:"status"`
		DownloadAction struct {
			URL string `json:"url"`
		} `json:"downloadAction"`
	}
	msJSON(t, "report file", body, &f)
	if code != 202 || f.ID == "" {
		t.Fatalf("report file: %d %s", code, body)
	}
	for f.Status != "successful" {
		if time.Now().After(deadline) || f.Status == "failed" {
			t.Fatalf("report file not done: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
		_, body = msGet(t, "GET", s.httpAddr, "/report/v2/files/"+f.ID, partner, "")
		msJSON(t, "report file", body, &f)
	}
	u, err := url.Parse(f.DownloadAction.URL)
	if err != nil || u.Path == "" {
		t.Fatalf("download url %q: %v", f.DownloadAction.URL, err)
	}
	download = u.RequestURI()

	// Every closed date sealed (the sealer runs in the background).
	for _, id := range []string{"302321", "302322", "302323", "302324", "302325"} {
		for {
			_, body := msGet(t, "GET", s.httpAddr, "/report/v2/ledgers/"+id+"/dates", partner, "")
			var man struct {
				Items []struct {
					State string `json:"state"`
					Seal  string `json:"seal"`
				} `json:"items"`
			}
			msJSON(t, "manifest", body, &man)
			unsealed := 0
			for _, it := range man.Items {
				if it.State == "closed" && it.Seal == "" {
					unsealed++
				}
			}
			if len(man.Items) > 0 && unsealed == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ledger %s: %d closed dates not sealed within 60s: %s", id, unsealed, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return s, partner, admin, download, erasedDate
}

// The demo store (with a GDPR erasure, a report file and a schedule) moved
// to PostgreSQL: migrate-store refuses while a server holds the source,
// copies and verifies once it is stopped, refuses a second run; then both
// stores, served side by side, answer every public request with the same
// bytes — ledgers, every date of every ledger and topic, the feed walked
// with the bbolt server's cursors, with and without GDPR data — for the
// token the bbolt server issued; the audit log up to the move is the same
// and the report file downloads the same.
func TestMigrateStore_DemoRoundTrip(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	dir := t.TempDir()
	t0 := time.Now()
	s, partner, admin, download, erasedDate := msDemoStore(t, dir)
	t.Logf("demo store ready in %s", time.Since(t0))

	// A source in use is refused, and nothing is written to the target.
	_, _, err := runCmd(t, "migrate-store", "--from", "bolt:"+dir, "--to", dsn)
	if err == nil || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), "stop that server first") {
		t.Fatalf("migrate-store while serving: %v", err)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if c := pgContents(t, dsn); !c.Empty() {
		t.Fatalf("the refused run wrote to the target: %s", c)
	}

	start := time.Now()
	stdout, stderr, err := runCmd(t, "migrate-store", "--from", "bolt:"+dir, "--to", dsn)
	if err != nil {
		t.Fatalf("migrate-store: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	t.Logf("migrate-store took %s:\n%s%s", time.Since(start), stdout, stderr)
	for _, want := range []string{"ledgers       5\n", "entries       37", "1 erased", "clients       2\n", "files         1 report files", "verified"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}

	// A second run is refused, saying the copy is there.
	before := pgContents(t, dsn)
	_, _, err = runCmd(t, "migrate-store", "--from", "bolt:"+dir, "--to", dsn)
	if err == nil || !strings.Contains(err.Error(), "already holds a completed copy of bolt:") {
		t.Fatalf("second migrate-store: %v", err)
	}
	if after := pgContents(t, dsn); after.String() != before.String() {
		t.Fatalf("the refused second run changed the target: %s → %s", before, after)
	}

	// Both stores served side by side.
	b := startServe(t, dir, "--rate-limit=-1", "--token-rate-limit=-1")
	p := startServe(t, t.TempDir(), "--store", dsn, "--rate-limit=-1", "--token-rate-limit=-1")
	m := regexp.MustCompile(`(?m)^  audit events  (\d+)$`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no audit count in the summary:\n%s", stdout)
	}
	auditEvents, _ := strconv.Atoi(m[1])
	if auditEvents < 5 {
		t.Fatalf("only %d audit events copied: the demo's token issues and admin changes are more", auditEvents)
	}
	t1 := time.Now()
	msCompareServers(t, b, p, partner, admin, download, erasedDate, auditEvents)
	t.Logf("compared in %s", time.Since(t1))
}

// pgContents counts what the database at dsn holds.
func pgContents(t *testing.T, dsn string) pgstore.Contents {
	t.Helper()
	st, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.Contents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// msCompareServers requires byte-identical answers from the bbolt server b
// and the PostgreSQL server p.
func msCompareServers(t *testing.T, b, p *serving, partner, admin, download, erasedDate string, auditEvents int) {
	t.Helper()
	var mu sync.Mutex
	requests, refused := 0, 0
	// compare GETs path from both and returns the body when both answered
	// 200 alike ("" otherwise; a difference fails the test). Safe in
	// goroutines.
	compare := func(path, token string, normalize bool) string {
		t.Helper()
		cb, bb := msGet(t, "GET", b.httpAddr, path, token, "")
		cp, bp := msGet(t, "GET", p.httpAddr, path, token, "")
		mu.Lock()
		requests++
		mu.Unlock()
		nb, np := bb, bp
		if normalize || cb != 200 {
			// A refusal's problem+json names its own request.
			nb, np = msNormalize(t, bb), msNormalize(t, bp)
		}
		if cb != cp || nb != np {
			t.Errorf("GET %s: bbolt %d, postgresql %d; first difference: %s", path, cb, cp, msDiff(nb, np))
			return ""
		}
		if cb != 200 {
			mu.Lock()
			refused++
			mu.Unlock()
			return ""
		}
		return bb
	}
	same := func(path, token string) string { t.Helper(); return compare(path, token, false) }
	same("/.well-known/jwks.json", "")
	var ledgers struct {
		Items []struct {
			LedgerID string `json:"ledgerId"`
		} `json:"items"`
	}
	msJSON(t, "ledgers", same("/settlement/v1/ledgers", partner), &ledgers)
	if len(ledgers.Items) != 5 {
		t.Fatalf("ledgers: %+v", ledgers)
	}

	// Searches through the copied indexes: by type (a walk of the log),
	// by time, and by the pspReference of the first refund, both ways.
	var refunds struct {
		Items []struct {
			PSPReference string `json:"pspReference"`
		} `json:"items"`
		LastObjectID string `json:"lastObjectId"`
	}
	msJSON(t, "search", same("/report/v2/ledgers/302321/funds/entries?entryType=refund&limit=20&includeGDPRSensitiveData=true", partner), &refunds)
	if len(refunds.Items) == 0 {
		t.Fatalf("no refunds found")
	}
	same("/report/v2/ledgers/302321/funds/entries?entryType=refund&limit=20&startingAfter="+refunds.LastObjectID, partner)
	same("/report/v2/ledgers/302321/funds/entries?pspReference="+url.QueryEscape(refunds.Items[0].PSPReference), partner)
	same("/report/v2/ledgers/302321/fees/entries?fromTime="+time.Now().UTC().AddDate(0, 0, -20).Format(time.RFC3339)+
		"&toTime="+time.Now().UTC().AddDate(0, 0, -19).Format(time.RFC3339)+"&limit=100", partner)

	var wg sync.WaitGroup
	for _, l := range ledgers.Items {
		id := l.LedgerID
		// The manifest names every date from the first on, with seals.
		var man struct {
			Items []struct {
				LedgerDate string `json:"ledgerDate"`
				Topics     map[string]struct {
					EntryCount int `json:"entryCount"`
				} `json:"topics"`
			} `json:"items"`
		}
		first := time.Now().UTC().AddDate(0, 0, -200).Format("2006-01-02")
		last := time.Now().UTC().AddDate(0, 0, 2).Format("2006-01-02")
		msJSON(t, "manifest", compare("/report/v2/ledgers/"+id+"/dates?fromLedgerDate="+first+"&toLedgerDate="+last, partner, false), &man)
		// From the first date with an entry on (the ones before are empty
		// alike: one of them is compared).
		for len(man.Items) > 1 && man.Items[1].Topics["funds"].EntryCount+man.Items[1].Topics["fees"].EntryCount == 0 {
			man.Items = man.Items[1:]
		}
		if len(man.Items) < 30 {
			t.Fatalf("ledger %s: %d dates in the manifest", id, len(man.Items))
		}
		for _, topic := range []string{"funds", "fees"} {
			for _, gdpr := range []string{"", "&includeGDPRSensitiveData=true"} {
				wg.Go(func() {
					for _, d := range man.Items {
						size := "1000"
						if gdpr != "" {
							// With GDPR data: every entry through the feed
							// below, and the date of the erasure, in pages
							// (date cursors); the test's time is in requests.
							if d.LedgerDate != erasedDate || id != "302321" {
								if d.LedgerDate != man.Items[len(man.Items)-2].LedgerDate {
									continue // one date per ledger: refused alike without consent
								}
							}
							size = "25"
						}
						path := "/report/v2/ledgers/" + id + "/" + topic + "/dates/" + d.LedgerDate + "?pageSize=" + size + gdpr
						for {
							var pg struct {
								HasMore bool   `json:"hasMore"`
								Cursor  string `json:"cursor"`
							}
							body := same(path, partner)
							if body == "" && gdpr != "" {
								break // no GDPR consent for this ledger: refused alike
							}
							if body == "" || json.Unmarshal([]byte(body), &pg) != nil || !pg.HasMore {
								break
							}
							path = "/report/v2/ledgers/" + id + "/" + topic + "/dates/" + d.LedgerDate + "?pageSize=" + size + gdpr + "&cursor=" + pg.Cursor
						}
					}
					// The feed from the start, page by page: each cursor the
					// bbolt server hands out works on the PostgreSQL server.
					cursor := ""
					for n := 0; ; n++ {
						var pg struct {
							TryLater bool   `json:"tryLater"`
							Cursor   string `json:"cursor"`
						}
						body := same("/report/v2/ledgers/"+id+"/"+topic+"/feed?pageSize=1000"+gdpr+"&cursor="+cursor, partner)
						if body == "" || json.Unmarshal([]byte(body), &pg) != nil || pg.TryLater {
							break
						}
						cursor = pg.Cursor
						if n > 1000 {
							t.Errorf("feed of %s/%s does not end", id, topic)
							return
						}
					}
				})
			}
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// The audit log up to the move: each server has added its own events
	// since (these requests), so the first auditEvents.
	var logs [2][]json.RawMessage
	for i, srv := range []*serving{b, p} {
		var audit struct {
			Items []json.RawMessage `json:"items"`
		}
		_, body := msGet(t, "GET", srv.httpAddr, fmt.Sprintf("/admin/v1/audit?pageSize=%d", auditEvents), admin, "")
		msJSON(t, "audit", body, &audit)
		logs[i] = audit.Items
	}
	if len(logs[0]) != auditEvents || !reflect.DeepEqual(logs[0], logs[1]) {
		t.Errorf("the audit logs' first %d events differ:\nbbolt      %s\npostgresql %s", auditEvents, logs[0], logs[1])
	}
	n := len(logs[0])
	// The report file made on the bbolt server downloads the same from the
	// PostgreSQL server, by the URL the bbolt server handed out.
	cb, fb := msGet(t, "GET", b.httpAddr, download, partner, "")
	cp, fp := msGet(t, "GET", p.httpAddr, download, partner, "")
	if cb != 200 || cp != 200 || fb != fp || !strings.Contains(fb, "302321") {
		t.Errorf("report file download: bbolt %d (%d bytes), postgresql %d (%d bytes): %s", cb, len(fb), cp, len(fp), msDiff(fb, fp))
	}
	t.Logf("%d requests answered alike (%d of them refused alike); audit logs alike for %d events; report file of %d bytes alike",
		requests, refused, n, len(fb))
}

// msNormalize re-marshals a JSON text (object keys sorted).
func msNormalize(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	if m, ok := v.(map[string]any); ok && m["contextId"] != nil {
		delete(m, "contextId")
		delete(m, "instance")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// msDiff shows where two texts first differ.
func msDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-120)
	return fmt.Sprintf("at byte %d:\nbbolt      …%s\npostgresql …%s", i, a[from:min(len(a), i+200)], b[from:min(len(b), i+200)])
}

// A target that holds anything is refused, naming what it holds, and left
// as it was; so is one a run cut short filled, saying to drop and
// recreate it; and a directory without a store.
func TestMigrateStore_Refusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	src, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seedStore(t, src)
	src.Close()

	dsn := pgtest.Start(t)
	st, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutLedger(ctx, ledger.Ledger{ID: "900001", Currency: "NOK", TimeZone: "Europe/Oslo"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	before := pgContents(t, dsn)
	_, _, err = runCmd(t, "migrate-store", "--from", "bolt:"+dir, "--to", dsn)
	if err == nil || !strings.Contains(err.Error(), "target database is not empty: it holds 1 ledgers;") {
		t.Errorf("non-empty target: %v", err)
	}
	if after := pgContents(t, dsn); after.String() != before.String() {
		t.Errorf("the refused run changed the target: %s → %s", before, after)
	}

	// A run cut short after its first ledger (as a crash leaves it).
	dsn = pgtest.Start(t)
	st, err = pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.ImportBegin(ctx, "bolt:"+dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	src, err = ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := src.ExportLedger("302321")
	if err == nil {
		_, err = st.ImportLedger(ctx, ex, func(tp ledger.Topic, from uint64) ([]ledger.Entry, error) {
			return src.Entries("302321", tp, from, 100, ledger.ReadOptions{GDPR: true})
		}, nil)
	}
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = runCmd(t, "migrate-store", "--from", "bolt:"+dir, "--to", dsn)
	if err == nil || !strings.Contains(err.Error(), "holds a copy of bolt:") || !strings.Contains(err.Error(), "did not complete") ||
		!strings.Contains(err.Error(), "drop and recreate the database") {
		t.Errorf("target of a run cut short: %v", err)
	}
	// … and serve refuses it: partners must not read half a copy.
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second) // a serve that starts ends here, with no error
	err = run(sctx, []string{"serve", "--data", t.TempDir(), "--store", dsn, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}, io.Discard, io.Discard)
	scancel()
	if err == nil || !strings.Contains(err.Error(), "migrate-store copy of bolt:") || !strings.Contains(err.Error(), "has not completed") {
		t.Errorf("serve on the target of a run cut short: %v", err)
	}

	_, _, err = runCmd(t, "migrate-store", "--from", "bolt:"+t.TempDir(), "--to", pgtest.Start(t))
	if err == nil || !strings.Contains(err.Error(), "no bbolt store in") {
		t.Errorf("no store: %v", err)
	}
	for _, args := range [][]string{
		{"--to", dsn},
		{"--from", "bolt:" + dir},
		{"--from", dir, "--to", dsn},
		{"--from", "bolt:" + dir, "--to", "bolt:" + dir},
	} {
		if _, _, err := runCmd(t, append([]string{"migrate-store"}, args...)...); exitCode(err, io.Discard) != 2 {
			t.Errorf("migrate-store %v: %v, want a usage error", args, err)
		}
	}
}

// The check on the target finds a copy that differs from the source: a
// changed amount, a lost GDPR value, a date range, an audit event, a
// record, a client.
func TestMigrateStore_VerifyFindsDifferences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	src, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seedStore(t, src)
	if err := src.Audit(ctx, ledger.AuditEvent{ClientID: "admin", Action: "ledger.put", Resource: "ledgers/302321", Result: "ok", Status: 200}); err != nil {
		t.Fatal(err)
	}
	if err := src.UpdateRecords(ctx, func(tx ledger.RecordTx) error {
		return tx.Put(ledger.RecordReportSchedules, "302321\x00daily", []byte(`{"frequency":"daily"}`))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.CreateClient(ctx, ledger.Client{ID: "erp", SecretHash: "h", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	src.Close()
	dsn := pgtest.Start(t)
	if out, errOut, err := runCmd(t, "migrate-store", "--from", "bolt:"+dir, "--to", dsn); err != nil {
		t.Fatalf("migrate-store: %v\n%s%s", err, out, errOut)
	}

	m := &storeMigration{dir: dir, dsn: dsn, stdout: io.Discard, stderr: io.Discard}
	if err := m.openSource(); err != nil {
		t.Fatal(err)
	}
	defer m.src.Close()
	if err := m.readKeys(); err != nil {
		t.Fatal(err)
	}
	if m.dst, err = pgstore.Open(ctx, dsn, pgstore.Options{}); err != nil {
		t.Fatal(err)
	}
	defer m.dst.Close()
	c, err := m.dst.Contents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.sum = migrationSummary{Ledgers: c.Ledgers, Entries: c.Entries, Clients: c.Clients, AuditEvents: c.AuditEvents, Seals: c.Seals, CloseTimes: c.Closes}
	if err := m.verifyTarget(ctx); err != nil {
		t.Fatalf("the copy as made: %v", err)
	}
	pool := m.dst.Pool()
	// (seedStore appends funds and fees in either order, so the fees'
	// first date is 03-01 or 03-06.)
	const dateRange = "UPDATE dates SET last_seq = "
	const firstFeesDate = ` WHERE topic = 2 AND num = (SELECT num FROM ledgers WHERE id = '302321')
		AND ledger_date = (SELECT min(ledger_date) FROM dates WHERE topic = 2 AND num = (SELECT num FROM ledgers WHERE id = '302321'))`
	for _, tc := range []struct {
		name, change, undo, want string
	}{
		{"amount", "UPDATE entries SET amount = amount + 1 WHERE topic = 1 AND seq = 5 AND num = (SELECT num FROM ledgers WHERE id = '302321')",
			"UPDATE entries SET amount = amount - 1 WHERE topic = 1 AND seq = 5 AND num = (SELECT num FROM ledgers WHERE id = '302321')",
			"ledger 302321: funds: sequence 5: balanceAfter"},
		{"gdpr", "UPDATE gdpr SET seq = -seq WHERE seq = 3 AND topic = 1", "UPDATE gdpr SET seq = -seq WHERE seq = -3 AND topic = 1",
			"funds: sequence 3 differs"},
		{"date range", dateRange + "last_seq + 1" + firstFeesDate, dateRange + "last_seq - 1" + firstFeesDate, "ledger 302321: fees date 2026-03-0"},
		{"audit", `UPDATE audit SET body = replace(body::text, 'ledgers/302321', 'ledgers/302322')::json`,
			`UPDATE audit SET body = replace(body::text, 'ledgers/302322', 'ledgers/302321')::json`, "audit event 1 differs"},
		{"record", "UPDATE records SET value = value || 'x'::bytea WHERE kind = 'reportSchedules'",
			"UPDATE records SET value = substring(value from 1 for octet_length(value) - 1) WHERE kind = 'reportSchedules'",
			"reportSchedules records differ"},
		{"client", `UPDATE clients SET body = replace(body::text, '"read"', '"admin"')::json WHERE id = 'erp'`,
			`UPDATE clients SET body = replace(body::text, '"admin"', '"read"')::json WHERE id = 'erp'`, "clients differ"},
	} {
		if tag, err := pool.Exec(ctx, tc.change); err != nil || tag.RowsAffected() == 0 {
			t.Fatalf("%s: %v, %d rows changed", tc.name, err, tag.RowsAffected())
		}
		err := m.verifyTarget(ctx)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: verify = %v, want %q", tc.name, err, tc.want)
		}
		if _, err := pool.Exec(ctx, tc.undo); err != nil {
			t.Fatalf("%s: undo: %v", tc.name, err)
		}
		if err := m.verifyTarget(ctx); err != nil {
			t.Fatalf("%s undone: %v", tc.name, err)
		}
	}
}
