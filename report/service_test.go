package report

import (
	"context"
	"errors"
	"math"
	"math/big"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// entryRow is what an entries file row must hold for e.
func entryRow(e ledger.Entry, exp int, gdpr bool) []string {
	h := ""
	if e.RecipientHandle != nil {
		h = *e.RecipientHandle
	}
	row := []string{string(e.Topic), strconv.FormatUint(e.Sequence, 10), e.PSPReference,
		e.Time.UTC().Format("2006-01-02T15:04:05.000000Z"), e.LedgerDate.String(), e.EntryType, e.Reference, e.Currency,
		FormatAmount(e.Amount, exp), FormatAmount(e.BalanceBefore, exp), FormatAmount(e.BalanceAfter, exp), h}
	if gdpr {
		var g ledger.GDPR
		if e.GDPR != nil {
			g = *e.GDPR
		}
		row = append(row, g.Name, g.MaskedPhoneNo, g.Message)
	}
	return row
}

// storeEntries reads every entry of a topic with a date in [from, to]
// straight from the store.
func storeEntries(t *testing.T, st *ledger.Store, id string, topic ledger.Topic, from, to ledger.Date, gdpr bool) []ledger.Entry {
	t.Helper()
	es, err := st.Entries(id, topic, 1, 1<<30, ledger.ReadOptions{GDPR: gdpr})
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(es, func(e ledger.Entry) bool { return e.LedgerDate < from || e.LedgerDate > to })
}

func TestService_EntriesCSV(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "data"))
	seedLedger(t, st, "302321", "NOK", 6, 9)
	grantClient(t, st, "acme", "302321")
	s := startService(t, st, filepath.Join(dir, "reports"), nil)
	ctx := context.Background()

	for _, c := range []struct {
		name   string
		topics []ledger.Topic
		from   ledger.Date
		to     ledger.Date
		gdpr   bool
		lang   string
	}{
		{"both topics, whole range", nil, day0, day0 + 5, false, ""},
		{"fees, middle dates with the empty date", []ledger.Topic{ledger.TopicFees}, day0 + 1, day0 + 3, false, "nb"},
		{"funds with GDPR", []ledger.Topic{ledger.TopicFunds}, day0 + 4, day0 + 5, true, "en"},
		{"before any entry", nil, day0 - 10, day0 - 1, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := s.Request(ctx, "acme", Request{Type: TypeEntries, LedgerID: "302321", Topics: c.topics, From: c.from, To: c.to, Format: FormatCSV, Language: c.lang, GDPR: c.gdpr})
			if err != nil {
				t.Fatal(err)
			}
			if f.Status != StatusPending || f.Source != SourceManual || len(f.ID) != 26 {
				t.Errorf("new file %+v", f)
			}
			f = waitDone(t, s, "acme", f.ID)
			if f.Status != StatusSuccessful {
				t.Fatalf("status %s: %s", f.Status, f.Error)
			}
			recs := readCSV(t, s, f)
			want := [][]string{}
			topics := c.topics
			if topics == nil {
				topics = ledger.Topics
			}
			for _, topic := range topics {
				for _, e := range storeEntries(t, st, "302321", topic, c.from, c.to, c.gdpr) {
					want = append(want, entryRow(e, 2, c.gdpr))
				}
			}
			head := recs[0]
			wantHead := "topic"
			if c.lang == "nb" {
				wantHead = "tema"
			}
			if head[0] != wantHead || (c.gdpr && head[len(head)-1] != "message") || (!c.gdpr && len(head) != 12) {
				t.Errorf("header %q", head)
			}
			if got := recs[1:]; !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("rows differ from the store's entries:\n got %d rows, first %q\nwant %d rows, first %q", len(got), first(got), len(want), first(want))
			}
			if f.Rows != int64(len(want)) || f.Size == 0 {
				t.Errorf("rows %d size %d, want %d rows", f.Rows, f.Size, len(want))
			}
		})
	}
}

func first(rows [][]string) []string {
	if len(rows) == 0 {
		return nil
	}
	return rows[0]
}

// An XLSX file opens with excelize and holds the same values as the CSV
// of the same request: numbers as typed number cells, dates as dates.
func TestService_XLSXEqualsCSV(t *testing.T) {
	for _, cur := range []struct {
		code string
		exp  int
	}{{"NOK", 2}, {"KWD", 3}, {"JPY", 0}} {
		t.Run(cur.code, func(t *testing.T) {
			dir := t.TempDir()
			st := openStore(t, filepath.Join(dir, "data"))
			seedLedger(t, st, "302321", cur.code, 4, 5)
			grantClient(t, st, "acme", "302321")
			s := startService(t, st, filepath.Join(dir, "reports"), nil)
			for _, typ := range []string{TypeEntries, TypeBalances} {
				var files [2]File
				for i, format := range []string{FormatCSV, FormatXLSX} {
					f, err := s.Request(context.Background(), "acme", Request{Type: typ, LedgerID: "302321", From: day0, To: day0 + 3, Format: format})
					if err != nil {
						t.Fatal(err)
					}
					files[i] = waitDone(t, s, "acme", f.ID)
					if files[i].Status != StatusSuccessful {
						t.Fatalf("%s %s: %s", typ, format, files[i].Error)
					}
				}
				recs := readCSV(t, s, files[0])
				x, err := excelize.OpenFile(filepath.Join(s.cfg.Dir, files[1].diskName()))
				if err != nil {
					t.Fatal(err)
				}
				defer x.Close()
				sheet := x.GetSheetList()[0]
				rows, err := x.GetRows(sheet, excelize.Options{RawCellValue: true})
				if err != nil {
					t.Fatal(err)
				}
				if len(rows) != len(recs) {
					t.Fatalf("%s: xlsx %d rows, csv %d", typ, len(rows), len(recs))
				}
				amountCols := 0
				for i := range recs {
					for j := range recs[i] {
						name := recs[0][j]
						want, got := recs[i][j], ""
						if j < len(rows[i]) {
							got = rows[i][j]
						}
						cellName, _ := excelize.CoordinatesToCellName(j+1, i+1)
						ct, _ := x.GetCellType(sheet, cellName)
						switch {
						case i == 0:
							if got != want {
								t.Errorf("header %d: %q vs %q", j, got, want)
							}
						case isAmount(name):
							if i == 1 {
								amountCols++
							}
							if ct != excelize.CellTypeNumber && ct != excelize.CellTypeUnset {
								t.Errorf("%s %s: cell type %v, want a number", typ, cellName, ct)
							}
							if !sameDecimal(got, want) {
								t.Errorf("%s %s (%s): xlsx %q, csv %q", typ, cellName, name, got, want)
							}
							if d := decimals(want); d != cur.exp {
								t.Errorf("%s: csv amount %q has %d decimals, want %d", cur.code, want, d, cur.exp)
							}
							if style := formatOf(t, x, sheet, cellName); style != amountFormat(cur.exp) {
								t.Errorf("%s: number format %q, want %q", cellName, style, amountFormat(cur.exp))
							}
						case name == "time" || name == "ledgerDate":
							v, err := strconv.ParseFloat(got, 64)
							if err != nil {
								t.Fatalf("%s %s: %q is not a date serial", typ, cellName, got)
							}
							tm := time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC).Add(time.Duration(math.Round(v*86400*1e6)) * time.Microsecond)
							wantT, err := time.Parse("2006-01-02T15:04:05.000000Z", want)
							if name == "ledgerDate" {
								wantT, err = time.Parse("2006-01-02", want)
							}
							if err != nil {
								t.Fatal(err)
							}
							if d := tm.Sub(wantT); d < -time.Millisecond || d > time.Millisecond {
								t.Errorf("%s: date %s, csv %s", cellName, tm, want)
							}
						default:
							if got != want {
								t.Errorf("%s %s: xlsx %q, csv %q", typ, cellName, got, want)
							}
						}
					}
				}
				if amountCols < 3 {
					t.Errorf("%s: %d amount columns checked", typ, amountCols)
				}
				panes, err := x.GetPanes(sheet)
				if err != nil || !panes.Freeze || panes.YSplit != 1 {
					t.Errorf("header row not frozen: %+v %v", panes, err)
				}
			}
		})
	}
}

func isAmount(col string) bool {
	switch col {
	case "amount", "balanceBefore", "balanceAfter", "openingBalance", "closingBalance":
		return true
	}
	return len(col) > 4 && col[:4] == "sum "
}

func amountFormat(exp int) string {
	if exp == 0 {
		return "0"
	}
	return "0." + "000"[:exp]
}

func formatOf(t *testing.T, x *excelize.File, sheet, cellName string) string {
	t.Helper()
	id, err := x.GetCellStyle(sheet, cellName)
	if err != nil {
		t.Fatal(err)
	}
	st, err := x.GetStyle(id)
	if err != nil {
		t.Fatal(err)
	}
	if st.CustomNumFmt == nil {
		return ""
	}
	return *st.CustomNumFmt
}

func decimals(s string) int {
	for i := range s {
		if s[i] == '.' {
			return len(s) - i - 1
		}
	}
	return 0
}

func sameDecimal(a, b string) bool {
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	return ok1 && ok2 && x.Cmp(y) == 0
}

func TestService_Balances(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "data"))
	seedLedger(t, st, "302321", "NOK", 5, 7)
	grantClient(t, st, "acme", "302321")
	s := startService(t, st, filepath.Join(dir, "reports"), nil)
	from, to := day0+1, day0+4
	f, err := s.Request(context.Background(), "acme", Request{Type: TypeBalances, LedgerID: "302321", From: from, To: to, Format: FormatCSV})
	if err != nil {
		t.Fatal(err)
	}
	f = waitDone(t, s, "acme", f.ID)
	recs := readCSV(t, s, f)
	head := recs[0]
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	wantCols := []string{"ledgerDate", "topic", "currency", "openingBalance", "sum capture", "sum capture-fee", "sum fees-retained", "sum refund", "closingBalance", "entryCount"}
	if !slices.Equal(head, wantCols) {
		t.Fatalf("header %q, want %q", head, wantCols)
	}
	rows := recs[1:]
	if len(rows) != 2*int(to-from+1) {
		t.Fatalf("%d rows, want one per date and topic", len(rows))
	}
	i := 0
	for d := from; d <= to; d++ {
		for _, topic := range ledger.Topics {
			row := rows[i]
			i++
			if row[0] != d.String() || row[1] != string(topic) || row[2] != "NOK" {
				t.Fatalf("row %d: %q", i, row)
			}
			all := storeEntries(t, st, "302321", topic, 1, d, false)
			var opening, closing int64
			sums := map[string]int64{}
			n := 0
			for _, e := range all {
				if e.LedgerDate < d {
					opening = e.BalanceAfter
				} else {
					n++
					sums[e.EntryType] += e.Amount
				}
				closing = e.BalanceAfter
			}
			if n == 0 && d != day0+2 {
				t.Fatalf("seed: %s has no %s entries", d, topic)
			}
			check := func(name string, want int64, isAmount bool) {
				w := strconv.FormatInt(want, 10)
				if isAmount {
					w = FormatAmount(want, 2)
				}
				if got := row[col[name]]; got != w {
					t.Errorf("%s %s %s = %q, want %q", d, topic, name, got, w)
				}
			}
			check("openingBalance", opening, true)
			check("closingBalance", closing, true)
			check("entryCount", int64(n), false)
			for _, typ := range []string{"capture", "capture-fee", "fees-retained", "refund"} {
				check("sum "+typ, sums[typ], true)
			}
		}
	}
}

func TestService_Request_ErrInvalid(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "data"))
	seedLedger(t, st, "302321", "NOK", 3, 2)
	s := startService(t, st, filepath.Join(dir, "reports"), nil)
	ok := Request{Type: TypeEntries, LedgerID: "302321", From: day0, To: day0 + 1, Format: FormatCSV}
	for _, c := range []struct {
		field string
		edit  func(r *Request)
	}{
		{"type", func(r *Request) { r.Type = "ledger" }},
		{"format", func(r *Request) { r.Format = "pdf" }},
		{"language", func(r *Request) { r.Language = "de" }},
		{"topics[1]", func(r *Request) { r.Topics = []ledger.Topic{"funds", "fee"} }},
		{"fromLedgerDate", func(r *Request) { r.From = 0 }},
		{"toLedgerDate", func(r *Request) { r.To = r.From - 1 }},
		{"toLedgerDate", func(r *Request) { r.From, r.To = day0-400, day0 }},
		{"toLedgerDate", func(r *Request) { r.To = day0 + 3 }}, // the open date
	} {
		r := ok
		c.edit(&r)
		_, err := s.Request(context.Background(), "acme", r)
		var fe *ledger.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want a field error on %s", r, err, c.field)
		}
	}
	if _, err := s.Request(context.Background(), "acme", Request{Type: TypeEntries, LedgerID: "999", From: day0, To: day0, Format: FormatCSV}); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("unknown ledger: %v", err)
	}
	if n, files, err := s.List("acme", ListFilter{}); err != nil || n != 0 || len(files) != 0 {
		t.Errorf("refused requests left files: %d %v", n, err)
	}
}

// A job cut short by a shutdown (or a crash) is run again when the service
// starts next, and no half-written file is ever under the final name.
func TestService_RestartCompletesInterruptedJob(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "data"))
	seedLedger(t, st, "302321", "NOK", 3, 50)
	grantClient(t, st, "acme", "302321")
	reports := filepath.Join(dir, "reports")

	started := make(chan struct{})
	s1, err := New(Config{Store: st, Dir: reports, beforeWrite: func(ctx context.Context, f *File) {
		close(started)
		<-ctx.Done() // the server goes down mid-job
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s1.Run(ctx); close(done) }()
	f, err := s1.Request(context.Background(), "acme", Request{Type: TypeEntries, LedgerID: "302321", From: day0, To: day0 + 2, Format: FormatXLSX})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	<-done
	got, err := s1.Get("acme", f.ID)
	if err != nil || got.Status != StatusRunning {
		t.Fatalf("after the shutdown: %s %v, want running", got.Status, err)
	}
	if m, _ := filepath.Glob(filepath.Join(reports, f.ID+".xlsx")); len(m) != 0 {
		t.Fatalf("a file under the final name before the job finished: %v", m)
	}

	s2 := startService(t, st, reports, nil)
	got = waitDone(t, s2, "acme", f.ID)
	if got.Status != StatusSuccessful || got.Attempts != 2 || got.Rows != int64(2*2*50) {
		t.Fatalf("after the restart: %+v", got)
	}
	x, err := excelize.OpenFile(filepath.Join(reports, got.diskName()))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, err := x.GetRows(x.GetSheetList()[0])
	if err != nil || len(rows) != 1+200 {
		t.Errorf("xlsx rows %d %v", len(rows), err)
	}
	if m, _ := filepath.Glob(filepath.Join(reports, "*.tmp")); len(m) != 0 {
		t.Errorf("temp files left: %v", m)
	}
}

func TestService_ListPages(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "data"))
	seedLedger(t, st, "302321", "NOK", 3, 1)
	grantClient(t, st, "acme", "302321")
	grantClient(t, st, "other", "302321")
	now := time.Now()
	var clock atomicTime
	clock.set(now)
	s := startService(t, st, filepath.Join(dir, "reports"), func(c *Config) { c.Now = clock.get; c.MaxActive = 100 })
	ids := map[string]bool{}
	for i := range 23 {
		clock.set(now.Add(time.Duration(i) * time.Second))
		f, err := s.Request(context.Background(), "acme", Request{Type: TypeEntries, LedgerID: "302321", From: day0, To: day0, Format: FormatCSV})
		if err != nil {
			t.Fatal(err)
		}
		ids[f.ID] = true
	}
	if _, err := s.Request(context.Background(), "other", Request{Type: TypeEntries, LedgerID: "302321", From: day0, To: day0, Format: FormatCSV}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var last time.Time
	for off := 0; ; off += 5 {
		n, page, err := s.List("acme", ListFilter{Limit: 5, Offset: off})
		if err != nil {
			t.Fatal(err)
		}
		if n != 23 {
			t.Fatalf("count %d, want 23", n)
		}
		if len(page) == 0 {
			break
		}
		for _, f := range page {
			if seen[f.ID] || !ids[f.ID] {
				t.Errorf("file %s seen twice or not acme's", f.ID)
			}
			seen[f.ID] = true
			if !last.IsZero() && f.CreatedAt.After(last) {
				t.Errorf("not newest first")
			}
			last = f.CreatedAt
		}
	}
	if len(seen) != 23 {
		t.Errorf("walked %d files, want 23", len(seen))
	}
	if n, _, _ := s.List("acme", ListFilter{CreatedBefore: now.Add(3 * time.Second)}); n != 3 {
		t.Errorf("createdBefore: %d, want 3", n)
	}
	if n, _, _ := s.List("acme", ListFilter{Source: SourceAuto}); n != 0 {
		t.Errorf("source auto: %d, want 0", n)
	}
	if n, _, _ := s.List("acme", ListFilter{Visible: func(string) bool { return false }}); n != 0 {
		t.Errorf("files of ledgers no longer granted are listed: %d", n)
	}
	if _, err := s.Get("other", first(nil2(ids))[0]); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("another client's file: %v, want NotFound", err)
	}
	for _, lf := range []ListFilter{{Limit: 101}, {Limit: -1}, {Offset: -1}, {Source: "x"}, {Status: "done"}} {
		if _, _, err := s.List("acme", lf); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", lf, err)
		}
	}
}

func nil2(m map[string]bool) [][]string {
	for k := range m {
		return [][]string{{k}}
	}
	return nil
}

func TestService_Downloads(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "data"))
	seedLedger(t, st, "302321", "NOK", 2, 3)
	grantClient(t, st, "acme", "302321")
	var clock atomicTime
	clock.set(time.Now())
	s := startService(t, st, filepath.Join(dir, "reports"), func(c *Config) { c.Now = clock.get })
	f, err := s.Request(context.Background(), "acme", Request{Type: TypeEntries, LedgerID: "302321", From: day0, To: day0 + 1, Format: FormatCSV})
	if err != nil {
		t.Fatal(err)
	}
	files := []File{waitDone(t, s, "acme", f.ID)}
	if err := s.WithDownloads(context.Background(), files); err != nil {
		t.Fatal(err)
	}
	tok := files[0].Token
	if len(tok) != 26 || tok == f.ID || !files[0].TokenExpires.After(clock.get().Add(14*time.Minute)) {
		t.Fatalf("token %q expires %s", tok, files[0].TokenExpires)
	}
	// A second look soon after hands out the same token.
	again := []File{waitDone(t, s, "acme", f.ID)}
	s.WithDownloads(context.Background(), again)
	if again[0].Token != tok {
		t.Errorf("a fresh token at once: %q, want %q", again[0].Token, tok)
	}
	d, err := s.OpenDownload(context.Background(), "acme", tok)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	for name, c := range map[string]struct{ client, tok string }{
		"another client":  {"other", tok},
		"made-up token":   {"acme", newID()},
		"malformed token": {"acme", "../../etc/passwd"},
		"file id":         {"acme", f.ID},
	} {
		if _, err := s.OpenDownload(context.Background(), c.client, c.tok); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("%s: %v, want NotFound", name, err)
		}
	}
	clock.set(clock.get().Add(16 * time.Minute))
	if _, err := s.OpenDownload(context.Background(), "acme", tok); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("expired token: %v, want NotFound", err)
	}
	// Retention: the sweep deletes the expired token, and the file once old.
	if err := s.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetRecord(ledger.RecordDownloadTokens, tok); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("expired token kept: %v", err)
	}
	if _, err := s.Get("acme", f.ID); err != nil {
		t.Errorf("a young file swept: %v", err)
	}
	clock.set(clock.get().Add(DefaultRetention))
	if err := s.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("acme", f.ID); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("an old file kept: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "*.csv")); len(m) != 0 {
		t.Errorf("files left on disk: %v", m)
	}
}

func TestService_AllowDownload(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "data"))
	var clock atomicTime
	clock.set(time.Now())
	s := startService(t, st, filepath.Join(dir, "reports"), func(c *Config) { c.Now = clock.get })
	for i := range 25 {
		if ok, _ := s.AllowDownload("acme"); !ok {
			t.Fatalf("download %d refused", i+1)
		}
	}
	ok, wait := s.AllowDownload("acme")
	if ok || wait <= 0 || wait > time.Hour/25 {
		t.Errorf("26th download: %v, wait %s", ok, wait)
	}
	if ok, _ := s.AllowDownload("other"); !ok {
		t.Errorf("limits are per client")
	}
	clock.set(clock.get().Add(time.Hour / 25))
	if ok, _ := s.AllowDownload("acme"); !ok {
		t.Errorf("no download after the wait")
	}
}
