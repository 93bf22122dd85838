package server

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/report"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// filesEnv is an apiEnv whose server runs a report service; clock shifts
// the report service's clock (token expiry, download allowance).
type filesEnv struct {
	*apiEnv
	reports *report.Service
	clock   atomic.Int64
}

func newFilesEnv(t *testing.T) *filesEnv {
	t.Helper()
	fe := &filesEnv{apiEnv: &apiEnv{t: t, dir: t.TempDir()}}
	e := fe.apiEnv
	st, err := ledger.Open(e.dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	t.Cleanup(func() { st.Close() })
	// Tokens come from the external issuer the env trusts, for clients made
	// in the store: no argon2id hashing, which is slow under -race.
	jwksFile := e.writeExtJWKS()
	a, err := auth.New(st, auth.Config{DataDir: e.dir, TokenRatePerMinute: -1, RatePerSecond: -1,
		ExternalIssuers: []auth.ExternalIssuer{{Issuer: extIssuer, JWKSFile: jwksFile}}})
	if err != nil {
		t.Fatal(err)
	}
	e.auth = a
	t.Cleanup(func() { a.Close() })
	if _, err := st.CreateClient(context.Background(), ledger.Client{ID: auth.AdminClientID, SecretHash: "unused", Scopes: []string{ledger.ScopeAdmin}}); err != nil {
		t.Fatal(err)
	}
	rs, err := report.New(report.Config{Store: st, Dir: filepath.Join(e.dir, "reports"), ScheduleEvery: time.Hour,
		Now: func() time.Time { return time.Now().Add(time.Duration(fe.clock.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	fe.reports = rs
	srv, err := New(Config{Store: st, Auth: a, Reports: rs, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.base = "http://" + srv.HTTPAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	rdone := make(chan struct{})
	go func() { done <- srv.Serve(ctx) }()
	go func() { rs.Run(ctx); close(rdone) }()
	t.Cleanup(func() {
		cancel()
		<-rdone
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	conn, err := grpc.NewClient(srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e.conn = conn
	e.admin = v1.NewAdminServiceClient(conn)
	e.rep = v1.NewReportServiceClient(conn)
	return fe
}

var filesDay0 = func() ledger.Date { d, _ := ledger.ParseDate("2024-05-01"); return d }()

// seedFiles makes ledger id (currency NOK, Europe/Oslo) with entries over
// five dates (none on the third), both topics, GDPR fields on some, and
// closes them all.
func (fe *filesEnv) seed(id, currency string) {
	t := fe.t
	t.Helper()
	ctx := context.Background()
	if _, _, err := fe.store.PutLedger(ctx, ledger.Ledger{ID: id, Currency: currency, TimeZone: "Europe/Oslo"}); err != nil {
		t.Fatal(err)
	}
	h := "api:4242"
	for d := range 5 {
		if d == 2 {
			continue
		}
		date := filesDay0 + ledger.Date(d)
		y, m, dd := date.Civil()
		for _, topic := range ledger.Topics {
			var in []ledger.EntryInput
			for i := range 7 {
				e := ledger.EntryInput{
					EntryID: fmt.Sprintf("%d-%d", d, i), PSPReference: fmt.Sprintf("psp%d%d", d, i),
					Time:       time.Date(y, m, dd, 8, i, 1, 250000000, time.UTC),
					LedgerDate: date, EntryType: "capture", Reference: fmt.Sprintf("ref;%d,\"x\"", i),
					Amount: int64(12345*(i+1) - 50), RecipientHandle: &h,
				}
				if i == 3 {
					e.EntryType, e.Amount, e.RecipientHandle = "refund", -1250, nil
				}
				if i%2 == 1 {
					e.Name, e.PhoneNumber, e.Message = "Kari Nordmann", "+4798765432", "hilsen, Kari"
				}
				in = append(in, e)
			}
			if _, err := fe.store.Append(ctx, id, topic, in); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := fe.store.CloseDate(ctx, id, filesDay0+4); err != nil {
		t.Fatal(err)
	}
}

// partner makes a read client with a grant (with GDPR consent) for
// ledgers and returns a token of it.
func (fe *filesEnv) partner(id string, ledgers ...string) string {
	return fe.client(id, true, ledgers...)
}

func (fe *filesEnv) client(id string, gdpr bool, ledgers ...string) string {
	fe.t.Helper()
	c := ledger.Client{ID: id, SecretHash: "unused", Scopes: []string{ledger.ScopeRead}}
	for _, l := range ledgers {
		c.Grants = append(c.Grants, ledger.Grant{LedgerID: l, GDPRConsent: gdpr})
	}
	if _, err := fe.store.CreateClient(context.Background(), c); err != nil {
		fe.t.Fatal(err)
	}
	return fe.tokenOf(id, "read")
}

// tokenOf is a token of the external issuer for a client of the store.
func (fe *filesEnv) tokenOf(id, scope string) string {
	now := time.Now()
	return fe.extToken(jwt.MapClaims{"iss": extIssuer, "sub": id, "aud": "ledgerfeed",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "scope": scope})
}

// requestFile posts a file request and waits until it has finished.
func (fe *filesEnv) requestFile(tok string, body map[string]any) map[string]any {
	fe.t.Helper()
	r := fe.do("POST", "/report/v2/files", tok, body)
	if r.code != http.StatusAccepted {
		fe.t.Fatalf("request file: %d %s", r.code, r.body)
	}
	f := r.json(fe.t)
	if f["status"] != "pending" || f["id"] == "" {
		fe.t.Fatalf("new file %s", r.body)
	}
	return fe.waitFile(tok, f["id"].(string))
}

func (fe *filesEnv) waitFile(tok, id string) map[string]any {
	fe.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := fe.do("GET", "/report/v2/files/"+id, tok, nil)
		if r.code != 200 {
			fe.t.Fatalf("get file: %d %s", r.code, r.body)
		}
		f := r.json(fe.t)
		if f["status"] == "successful" || f["status"] == "failed" {
			return f
		}
		if time.Now().After(deadline) {
			fe.t.Fatalf("file still %v", f["status"])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// download GETs a URL with a bearer token (none when tok is "").
func download(t *testing.T, u, tok string, hdr ...string) resp {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Body.Close()
	b, err := io.ReadAll(hr.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{code: hr.StatusCode, hdr: hr.Header, body: b}
}

func downloadURL(t *testing.T, f map[string]any) string {
	t.Helper()
	return downloadURLAt(t, f, time.Now())
}

// downloadURL checks a file's downloadAction against the report clock.
func (fe *filesEnv) downloadURL(f map[string]any) string {
	fe.t.Helper()
	return downloadURLAt(fe.t, f, time.Now().Add(time.Duration(fe.clock.Load())))
}

func downloadURLAt(t *testing.T, f map[string]any, now time.Time) string {
	t.Helper()
	da, ok := f["downloadAction"].(map[string]any)
	if !ok || da["method"] != "GET" {
		t.Fatalf("no downloadAction in %v", f)
	}
	exp, err := time.Parse(time.RFC3339, da["expiresAt"].(string))
	if err != nil || exp.Before(now.Add(10*time.Minute)) || exp.After(now.Add(16*time.Minute)) {
		t.Errorf("expiresAt %v, want about 15 minutes ahead", da["expiresAt"])
	}
	return da["url"].(string)
}

// minorUnits parses a decimal amount with exactly exp fraction digits.
func minorUnits(t *testing.T, s string, exp int) int64 {
	t.Helper()
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) != exp {
		t.Fatalf("amount %q: %d decimals, want %d", s, len(frac), exp)
	}
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		t.Fatalf("amount %q: %v", s, err)
	}
	return n
}

// A CSV file's rows are the date reports of the same dates, field by
// field, in order; the download is a CSV attachment with a sensible name.
func TestFiles_CSVEqualsDateReports(t *testing.T) {
	fe := newFilesEnv(t)
	fe.seed("302321", "NOK")
	tok := fe.partner("acme", "302321")
	from, to := filesDay0, filesDay0+4
	f := fe.requestFile(tok, map[string]any{"type": "entries", "ledgerId": "302321", "fromLedgerDate": from.String(),
		"toLedgerDate": to.String(), "format": "csv", "includeGDPRSensitiveData": true})
	if f["status"] != "successful" {
		t.Fatalf("file %v", f)
	}
	r := download(t, downloadURL(t, f), tok)
	if r.code != 200 {
		t.Fatalf("download: %d %s", r.code, r.body)
	}
	if ct := r.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := r.hdr.Get("Content-Disposition"); cd != `attachment; filename=302321-funds-fees-2024-05-01-2024-05-05.csv` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if cl := r.hdr.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) || f["sizeBytes"] != float64(len(r.body)) {
		t.Errorf("Content-Length %q, sizeBytes %v, body %d bytes", cl, f["sizeBytes"], len(r.body))
	}
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	rows := recs[1:]
	n := 0
	for _, topic := range []string{"funds", "fees"} {
		for d := from; d <= to; d++ {
			cursor := ""
			for {
				q := "?includeGDPRSensitiveData=true"
				if cursor != "" {
					q += "&cursor=" + url.QueryEscape(cursor)
				}
				page := fe.do("GET", "/report/v2/ledgers/302321/"+topic+"/dates/"+d.String()+q, tok, nil)
				if page.code != 200 {
					t.Fatalf("date report: %d %s", page.code, page.body)
				}
				var body struct {
					Items   []map[string]any `json:"items"`
					HasMore bool             `json:"hasMore"`
					Cursor  string           `json:"cursor"`
				}
				dec := json.NewDecoder(bytes.NewReader(page.body))
				dec.UseNumber()
				if err := dec.Decode(&body); err != nil {
					t.Fatal(err)
				}
				for _, it := range body.Items {
					if n >= len(rows) {
						t.Fatalf("the date reports hold more items than the file's %d rows", len(rows))
					}
					row := rows[n]
					n++
					if row[col["topic"]] != topic {
						t.Errorf("row %d: topic %q, want %s", n, row[col["topic"]], topic)
					}
					for _, k := range []string{"pspReference", "time", "ledgerDate", "entryType", "reference", "currency", "name", "maskedPhoneNo", "message"} {
						want, _ := it[k].(string)
						if row[col[k]] != want {
							t.Errorf("row %d %s: file %q, date report %q", n, k, row[col[k]], want)
						}
					}
					want, _ := it["recipientHandle"].(string) // null: ""
					if row[col["recipientHandle"]] != want {
						t.Errorf("row %d recipientHandle: file %q, date report %v", n, row[col["recipientHandle"]], it["recipientHandle"])
					}
					for _, k := range []string{"amount", "balanceBefore", "balanceAfter"} {
						want, err := it[k].(json.Number).Int64()
						if err != nil {
							t.Fatal(err)
						}
						if got := minorUnits(t, row[col[k]], 2); got != want {
							t.Errorf("row %d %s: file %q, date report %d", n, k, row[col[k]], want)
						}
					}
				}
				if !body.HasMore {
					break
				}
				cursor = body.Cursor
			}
		}
	}
	if n != len(rows) || n != 2*4*7 {
		t.Errorf("file has %d rows, the date reports %d items (want %d)", len(rows), n, 2*4*7)
	}

	// Ranges: the first 10 bytes, and the rest.
	u := downloadURL(t, f)
	part := download(t, u, tok, "Range", "bytes=0-9")
	if part.code != http.StatusPartialContent || !bytes.Equal(part.body, r.body[:10]) || part.hdr.Get("Content-Range") != fmt.Sprintf("bytes 0-9/%d", len(r.body)) {
		t.Errorf("range: %d %q %q", part.code, part.body, part.hdr.Get("Content-Range"))
	}
	rest := download(t, u, tok, "Range", "bytes=10-")
	if rest.code != http.StatusPartialContent || !bytes.Equal(rest.body, r.body[10:]) {
		t.Errorf("range 10-: %d, %d bytes", rest.code, len(rest.body))
	}
}

// Downloads: another client's bearer token, an expired link and a made-up
// one all answer 404; the 26th download within the hour 429 with
// Retry-After; every attempt is in the audit log.
func TestFiles_DownloadGuards(t *testing.T) {
	fe := newFilesEnv(t)
	fe.seed("302321", "NOK")
	tok := fe.partner("acme", "302321")
	other := fe.partner("other", "302321")
	f := fe.requestFile(tok, map[string]any{"type": "balances", "ledgerId": "302321", "fromLedgerDate": "2024-05-01",
		"toLedgerDate": "2024-05-05", "format": "xlsx", "language": "nb"})
	u := downloadURL(t, f)
	if !strings.HasPrefix(u, fe.base+"/report/v2/downloads/") || strings.Contains(u, f["id"].(string)) {
		t.Errorf("download URL %q", u)
	}
	attempts := 0
	try := func(u, tok string, want int) resp {
		t.Helper()
		attempts++
		r := download(t, u, tok)
		if r.code != want {
			t.Errorf("GET %s: %d, want %d: %.200q", u, r.code, want, r.body)
		}
		if want >= 400 && r.hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("error answer %q", r.hdr.Get("Content-Type"))
		}
		return r
	}
	ok := try(u, tok, 200)
	if ct := ok.hdr.Get("Content-Type"); ct != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" || !bytes.HasPrefix(ok.body, []byte("PK")) {
		t.Errorf("xlsx download: %q, starts %q", ct, ok.body[:2])
	}
	try(u, other, 404)
	try(u, "", 401)
	try(fe.base+"/report/v2/downloads/"+strings.Repeat("a", 26), tok, 404)
	try(fe.base+"/report/v2/downloads/"+f["id"].(string), tok, 404)
	fe.clock.Store(int64(16 * time.Minute))
	try(u, tok, 404)
	// Two hours on, with a full allowance and a fresh link: 25 downloads
	// pass, the 26th within the hour does not.
	fe.clock.Store(int64(2*time.Hour + 16*time.Minute))
	u2 := fe.downloadURL(fe.waitFile(tok, f["id"].(string)))
	if u2 == u {
		t.Errorf("no fresh link after expiry")
	}
	for range 25 {
		try(u2, tok, 200)
	}
	r := try(u2, tok, 429)
	if ra, err := strconv.Atoi(r.hdr.Get("Retry-After")); err != nil || ra < 1 || ra > 3600/25+1 {
		t.Errorf("Retry-After %q", r.hdr.Get("Retry-After"))
	}
	try(u2, other, 404) // other's allowance is its own

	if err := fe.auth.FlushAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	events, _, err := fe.store.ListAudit(ledger.AuditFilter{Action: "file.download"}, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != attempts {
		t.Errorf("%d download audit events, want one per attempt (%d)", len(events), attempts)
	}
	byStatus := map[int]int{}
	for _, ev := range events {
		byStatus[ev.Status]++
		if strings.Contains(ev.Resource, strings.TrimPrefix(u, fe.base+"/report/v2/downloads/")) {
			t.Errorf("audit names the download token: %+v", ev)
		}
	}
	if byStatus[200] != 26 || byStatus[404] != 5 || byStatus[401] != 1 || byStatus[429] != 1 {
		t.Errorf("audit statuses %v", byStatus)
	}
}

// Listing with limit/offset (following next) walks every file once,
// newest first; another client sees none of them.
func TestFiles_ListPages(t *testing.T) {
	fe := newFilesEnv(t)
	fe.seed("302321", "NOK")
	tok := fe.partner("acme", "302321")
	other := fe.partner("other", "302321")
	ids := map[string]bool{}
	for i := range 12 {
		if i%10 == 9 {
			// MaxActive: let the queue drain.
			for id := range ids {
				fe.waitFile(tok, id)
			}
		}
		r := fe.do("POST", "/report/v2/files", tok, map[string]any{"type": "entries", "ledgerId": "302321", "topics": []string{"fees"},
			"fromLedgerDate": "2024-05-02", "toLedgerDate": "2024-05-02", "format": "csv"})
		if r.code != 202 {
			t.Fatalf("%d %s", r.code, r.body)
		}
		ids[r.json(t)["id"].(string)] = true
	}
	seen := map[string]bool{}
	next := fe.base + "/report/v2/files?limit=5"
	pages := 0
	var prev string
	for next != "" {
		u, err := url.Parse(next)
		if err != nil {
			t.Fatal(err)
		}
		r := fe.do("GET", u.RequestURI(), tok, nil)
		if r.code != 200 {
			t.Fatalf("%s: %d %s", next, r.code, r.body)
		}
		var page struct {
			Count    int              `json:"count"`
			Next     *string          `json:"next"`
			Previous *string          `json:"previous"`
			Results  []map[string]any `json:"results"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		if page.Count != 12 {
			t.Errorf("count %d", page.Count)
		}
		if (pages == 0) != (page.Previous == nil) {
			t.Errorf("page %d previous %v", pages, page.Previous)
		}
		for _, f := range page.Results {
			id := f["id"].(string)
			if seen[id] || !ids[id] {
				t.Errorf("file %s twice or unknown", id)
			}
			seen[id] = true
			if c := f["createdAt"].(string); prev != "" && c > prev {
				t.Errorf("not newest first: %s after %s", c, prev)
			}
			prev = f["createdAt"].(string)
		}
		pages++
		next = ""
		if page.Next != nil {
			next = *page.Next
		}
	}
	if len(seen) != 12 || pages != 3 {
		t.Errorf("walked %d files in %d pages, want 12 in 3", len(seen), pages)
	}
	if r := fe.do("GET", "/report/v2/files", other, nil); r.code != 200 || !strings.Contains(string(r.body), `"count":0`) {
		t.Errorf("other client's list: %d %s", r.code, r.body)
	}
	for id := range ids {
		if r := fe.do("GET", "/report/v2/files/"+id, other, nil); r.code != 404 {
			t.Errorf("other client gets acme's file: %d", r.code)
		}
		break
	}
	for _, q := range []string{"limit=101", "offset=-1", "source=robot", "status=done", "createdAfter=yesterday"} {
		if r := fe.do("GET", "/report/v2/files?"+q, tok, nil); r.code != 400 {
			t.Errorf("?%s: %d %s", q, r.code, r.body)
		}
	}
	if r := fe.do("GET", "/report/v2/files?source=auto", tok, nil); r.code != 200 || !strings.Contains(string(r.body), `"count":0`) {
		t.Errorf("source=auto: %d %s", r.code, r.body)
	}
}

// Bad requests are 400s naming the field and change nothing; a ledger
// without a grant is 404; GDPR columns without consent 403. gRPC answers
// the same.
func TestFiles_RequestErrors(t *testing.T) {
	fe := newFilesEnv(t)
	fe.seed("302321", "NOK")
	fe.seed("302322", "NOK")
	tok := fe.partner("acme", "302321")
	nogdpr := fe.client("nogdpr", false, "302321")
	good := func() map[string]any {
		return map[string]any{"type": "entries", "ledgerId": "302321", "fromLedgerDate": "2024-05-01", "toLedgerDate": "2024-05-05", "format": "csv"}
	}
	for _, c := range []struct {
		key   string
		value any
		code  int
		field string
	}{
		{"type", "ledger", 400, "type"},
		{"format", "pdf", 400, "format"},
		{"language", "sv", 400, "language"},
		{"topics", []string{"funds", "tips"}, 400, "topics[1]"},
		{"fromLedgerDate", "2024-13-01", 400, "fromLedgerDate"},
		{"toLedgerDate", "2024-04-30", 400, "toLedgerDate"},
		{"toLedgerDate", "2024-05-06", 400, "toLedgerDate"}, // not closed
		{"ledgerId", "302322", 404, "302322"},
		{"ledgerId", "", 400, "ledgerId"},
		{"amount", 5, 400, "amount"},
	} {
		body := good()
		body[c.key] = c.value
		r := fe.do("POST", "/report/v2/files", tok, body)
		if r.code != c.code || !strings.Contains(r.json(t)["detail"].(string), c.field) {
			t.Errorf("%s=%v: %d %s, want %d naming %s", c.key, c.value, r.code, r.body, c.code, c.field)
		}
	}
	body := good()
	body["includeGDPRSensitiveData"] = true
	if r := fe.do("POST", "/report/v2/files", nogdpr, body); r.code != 403 {
		t.Errorf("GDPR without consent: %d %s", r.code, r.body)
	}
	if r := fe.do("GET", "/report/v2/files", tok, nil); !strings.Contains(string(r.body), `"count":0`) {
		t.Errorf("refused requests made files: %s", r.body)
	}

	// gRPC: the same checks, and the same file.
	ctx := bearer(tok)
	_, err := fe.rep.RequestReportFile(ctx, &v1.RequestReportFileRequest{Type: "entries", LedgerId: "302321", FromLedgerDate: "2024-05-01", ToLedgerDate: "2024-05-01", Format: "xls"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "format") {
		t.Errorf("gRPC bad format: %v", err)
	}
	res, err := fe.rep.RequestReportFile(ctx, &v1.RequestReportFileRequest{Type: "entries", LedgerId: "302321", Topics: []string{"fees", "funds"}, FromLedgerDate: "2024-05-01", ToLedgerDate: "2024-05-01", Format: "csv"})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetFile().GetStatus() != "pending" || strings.Join(res.GetFile().GetTopics(), ",") != "funds,fees" {
		t.Errorf("gRPC new file %v", res.GetFile())
	}
	f := fe.waitFile(tok, res.GetFile().GetId())
	g, err := fe.rep.GetReportFile(ctx, &v1.GetReportFileRequest{Id: res.GetFile().GetId()})
	if err != nil || g.GetFile().GetStatus() != "successful" || g.GetFile().GetDownloadAction().GetUrl() != downloadURL(t, f) {
		t.Errorf("gRPC GetReportFile: %v %v (REST url %v)", g, err, f["downloadAction"])
	}
	if _, err := fe.rep.GetReportFile(bearer(nogdpr), &v1.GetReportFileRequest{Id: res.GetFile().GetId()}); status.Code(err) != codes.NotFound {
		t.Errorf("another client's file over gRPC: %v", err)
	}
}

// Schedules through the admin API: a daily schedule makes a file, source
// auto, for its client when a date closes.
func TestFiles_Schedules(t *testing.T) {
	fe := newFilesEnv(t)
	fe.seed("302321", "NOK")
	tok := fe.partner("acme", "302321")
	admin := fe.tokenOf(auth.AdminClientID, "admin")
	path := "/admin/v1/ledgers/302321/report-schedules/daily"
	body := map[string]any{"clientId": "acme", "frequency": "daily", "type": "entries", "format": "csv"}
	r := fe.do("PUT", path, admin, body)
	if r.code != 201 {
		t.Fatalf("put schedule: %d %s", r.code, r.body)
	}
	if sc := r.json(t); sc["scheduleId"] != "daily" || sc["ledgerId"] != "302321" || sc["language"] != "en" {
		t.Errorf("schedule %s", r.body)
	}
	if r := fe.do("PUT", path, admin, body); r.code != 200 {
		t.Errorf("replace: %d", r.code)
	}
	bad := map[string]any{"clientId": "acme", "frequency": "hourly", "type": "entries", "format": "csv"}
	if r := fe.do("PUT", path, admin, bad); r.code != 400 || !strings.Contains(string(r.body), "frequency") {
		t.Errorf("bad frequency: %d %s", r.code, r.body)
	}
	if r := fe.do("PUT", path, tok, body); r.code != 403 {
		t.Errorf("schedule by a read client: %d", r.code)
	}
	if r := fe.do("GET", "/admin/v1/ledgers/302321/report-schedules", admin, nil); r.code != 200 || !strings.Contains(string(r.body), `"scheduleId":"daily"`) {
		t.Errorf("list: %d %s", r.code, r.body)
	}
	// 2024-05-06 closes: one file for it.
	if _, err := fe.store.CloseDate(context.Background(), "302321", filesDay0+5); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := fe.do("GET", "/report/v2/files?source=auto", tok, nil)
		var page struct {
			Count   int              `json:"count"`
			Results []map[string]any `json:"results"`
		}
		json.Unmarshal(r.body, &page)
		if page.Count == 1 {
			f := page.Results[0]
			if f["scheduleId"] != "daily" || f["fromLedgerDate"] != "2024-05-06" || f["toLedgerDate"] != "2024-05-06" {
				t.Errorf("auto file %v", f)
			}
			if f = fe.waitFile(tok, f["id"].(string)); f["status"] != "successful" {
				t.Errorf("auto file %v", f)
			}
			break
		}
		if page.Count > 1 || time.Now().After(deadline) {
			t.Fatalf("auto files: %s", r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := fe.do("DELETE", path, admin, nil); r.code != 204 {
		t.Errorf("delete: %d %s", r.code, r.body)
	}
	if r := fe.do("DELETE", path, admin, nil); r.code != 404 {
		t.Errorf("delete again: %d", r.code)
	}
}
