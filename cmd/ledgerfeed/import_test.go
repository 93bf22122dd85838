package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

const okRow = `{"entryId":"e1","pspReference":"p1","time":"2026-03-01T09:30:00+01:00","entryType":"capture","reference":"r1","amount":1000,"recipientHandle":"NO:123"}`

func TestParseJSONRow(t *testing.T) {
	row, err := parseJSONRow([]byte(okRow), 7)
	if err != nil {
		t.Fatal(err)
	}
	e := row.entry
	if row.line != 7 || e.EntryID != "e1" || e.Amount != 1000 || e.RecipientHandle == nil || *e.RecipientHandle != "NO:123" {
		t.Errorf("row = %+v", row)
	}
	if e.Time != "2026-03-01T08:30:00Z" {
		t.Errorf("time = %q, want it in UTC", e.Time)
	}
	if e.Name != nil || e.LedgerDate != "" || row.ledgerID != "" || row.topic != "" {
		t.Errorf("unset fields set: %+v", row)
	}

	// Whitespace, escapes, and member order are free.
	spaced := " { \"amount\" : -7 ,\t\"entryId\":\"e\\u00e6\", \"pspReference\":\"p\\\"q\\\\\",\"time\":\"2026-03-01T09:30:00.123456Z\"," +
		"\"entryType\":\"capture\",\"reference\":\"\",\"message\":\"a,b}c\" } "
	row, err = parseJSONRow([]byte(spaced), 2)
	if err != nil {
		t.Fatal(err)
	}
	if e := row.entry; e.Amount != -7 || e.EntryID != "eæ" || e.PSPReference != `p"q\` || *e.Message != "a,b}c" || e.Time != "2026-03-01T09:30:00.123456Z" {
		t.Errorf("spaced row = %+v", row)
	}

	withGDPR := `{"entryId":"e2","pspReference":"p","time":"2026-03-01T09:30:00Z","entryType":"refund","reference":"","amount":-5,` +
		`"recipientHandle":null,"name":"Ola","phoneNumber":"+4791234567","message":null,"ledgerDate":"2026-03-02","ledgerId":"302321","topic":"fees"}`
	row, err = parseJSONRow([]byte(withGDPR), 1)
	if err != nil {
		t.Fatal(err)
	}
	e = row.entry
	if e.Amount != -5 || e.RecipientHandle != nil || *e.Name != "Ola" || *e.PhoneNumber != "+4791234567" || e.Message != nil ||
		e.LedgerDate != "2026-03-02" || row.date.String() != "2026-03-02" || row.ledgerID != "302321" || row.topic != "fees" {
		t.Errorf("row = %+v", row)
	}

	for _, tc := range []struct {
		name, line string
		want       string // the error
	}{
		{"unknown field", `{"entryId":"e1","amout":5}`, `line 3: amout: unknown field`},
		{"duplicate key", strings.Replace(okRow, `"amount":1000`, `"amount":1,"amount":9`, 1), `line 3: amount: appears twice`},
		{"amount string", strings.Replace(okRow, `1000`, `"1000"`, 1), `line 3: amount: must be a JSON integer`},
		{"amount float", strings.Replace(okRow, `1000`, `10.5`, 1), `line 3: amount: "10.5" is not an integer`},
		{"amount exponent", strings.Replace(okRow, `1000`, `1e3`, 1), `line 3: amount: "1e3" is not an integer`},
		{"amount overflow", strings.Replace(okRow, `1000`, `9223372036854775808`, 1), `line 3: amount:`},
		{"amount null", strings.Replace(okRow, `1000`, `null`, 1), `line 3: amount: must be a JSON integer`},
		{"missing amount", strings.Replace(okRow, `,"amount":1000`, ``, 1), `line 3: amount: missing`},
		{"missing entryId", strings.Replace(okRow, `"entryId":"e1",`, ``, 1), `line 3: entryId: missing`},
		{"empty entryId", strings.Replace(okRow, `"e1"`, `""`, 1), `line 3: entryId: required`},
		{"null pspReference", strings.Replace(okRow, `"p1"`, `null`, 1), `line 3: pspReference: required`},
		{"number as string field", strings.Replace(okRow, `"r1"`, `42`, 1), `line 3: reference: must be a string, not 42`},
		{"bad time", strings.Replace(okRow, `2026-03-01T09:30:00+01:00`, `2026-03-01 09:30`, 1), `line 3: time: "2026-03-01 09:30" is not an RFC 3339 time`},
		{"bad ledgerDate", strings.Replace(okRow, `"amount"`, `"ledgerDate":"1.3.2026","amount"`, 1), `line 3: ledgerDate: "1.3.2026" is not a date`},
		{"bad topic", strings.Replace(okRow, `"amount"`, `"topic":"fee","amount"`, 1), `line 3: topic: "fee" is not a topic`},
		{"array", `[1,2]`, `line 3: not a JSON object`},
		{"invalid JSON", `{"entryId":"e1",}`, `line 3: invalid JSON`},
		{"not closed", `{"entryId":"e1"`, `line 3: invalid JSON`},
		{"two objects", okRow + okRow, `line 3: text after the JSON value`},
		{"object for a string", strings.Replace(okRow, `"r1"`, `{"a":[1,"}"]}`, 1), `line 3: reference: must be a string, not {"a":[1,"}"]}`},
		{"bool for a string", strings.Replace(okRow, `"r1"`, `true`, 1), `line 3: reference: must be a string, not true`},
		{"invalid UTF-8", strings.Replace(okRow, `"r1"`, "\"r\xff\"", 1), `line 3: reference: is not valid UTF-8`},
		{"empty object", `{}`, `line 3: entryId: missing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseJSONRow([]byte(tc.line), 3)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q…", err, tc.want)
			}
		})
	}
}

func readAll(t *testing.T, src rowSource) ([]importRow, error) {
	t.Helper()
	var rows []importRow
	for {
		r, err := src.next()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, r)
	}
}

func TestJSONLSource_LineNumbers(t *testing.T) {
	in := "\uFEFF" + okRow + "\n\n   \n" + strings.Replace(okRow, "e1", "e2", 1) + "\r\n" +
		strings.Replace(okRow, "1000", `"x"`, 1) + "\n"
	src, _ := newRowSource("jsonl", strings.NewReader(in))
	rows, err := readAll(t, src)
	if len(rows) != 2 || rows[0].line != 1 || rows[1].line != 4 {
		t.Fatalf("rows = %+v", rows)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "line 5: amount:") {
		t.Errorf("err = %v, want line 5: amount", err)
	}

	long := okRow + "\n" + `{"entryId":"` + strings.Repeat("x", importMaxLine) + `"}` + "\n"
	src, _ = newRowSource("jsonl", strings.NewReader(long))
	if _, err := readAll(t, src); err == nil || !strings.HasPrefix(err.Error(), "line 2: longer than") {
		t.Errorf("long line: err = %v", err)
	}
}

func TestCSVSource(t *testing.T) {
	in := "\uFEFFentry_id,PSPReference,time,entryType,reference,amount,recipientHandle,name,message,ledgerId,topic\n" +
		"e1,p1,2026-03-01T09:00:00Z,capture,r1,1000,NO:1,Ola,\"two\nlines\",302321,funds\n" +
		"e2,p2,2026-03-01T10:00:00Z,capture-fee,r2, -15 ,,,,,\n"
	src, err := newRowSource("csv", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := readAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	r1, r2 := rows[0], rows[1]
	if r1.line != 2 || r1.entry.EntryID != "e1" || *r1.entry.RecipientHandle != "NO:1" || *r1.entry.Name != "Ola" ||
		*r1.entry.Message != "two\nlines" || r1.ledgerID != "302321" || r1.topic != "funds" {
		t.Errorf("row 1 = %+v", r1)
	}
	if r2.line != 4 || r2.entry.Amount != -15 || r2.entry.RecipientHandle != nil || r2.entry.Name != nil || r2.ledgerID != "" || r2.topic != "" {
		t.Errorf("row 2 = %+v (line %d)", r2, r2.line)
	}

	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "line 1: empty file"},
		{"unknown column", "entryId,pspReference,time,entryType,amount,colour\n", "line 1: colour: unknown field"},
		{"twice", "entryId,pspReference,time,entryType,amount,entry_id\n", "line 1: entryId: column appears twice"},
		{"missing column", "entryId,pspReference,time,entryType\n", "line 1: amount: missing column"},
		{"bad amount", "entryId,pspReference,time,entryType,amount\ne1,p,2026-03-01T09:00:00Z,capture,10.00\n", `line 2: amount: "10.00" is not an integer`},
		{"empty amount", "entryId,pspReference,time,entryType,amount\ne1,p,2026-03-01T09:00:00Z,capture,\n", `line 2: amount: "" is not an integer`},
		{"empty entryId", "entryId,pspReference,time,entryType,amount\n,p,2026-03-01T09:00:00Z,capture,1\n", `line 2: entryId: required`},
		{"field count", "entryId,pspReference,time,entryType,amount\ne1,p,2026-03-01T09:00:00Z,capture,1\ne2,p\n", "line 3: wrong number of fields"},
		{"bad quote", "entryId,pspReference,time,entryType,amount\ne1,p\"x,2026-03-01T09:00:00Z,capture,1\n", "line 2: CSV column"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := newRowSource("csv", strings.NewReader(tc.in))
			if err == nil {
				_, err = readAll(t, src)
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q…", err, tc.want)
			}
		})
	}
}

// sliceSource yields rows from a slice.
type sliceSource struct {
	rows []importRow
	err  error // after the rows, instead of io.EOF
}

func (s *sliceSource) next() (importRow, error) {
	if len(s.rows) == 0 {
		if s.err != nil {
			return importRow{}, s.err
		}
		return importRow{}, io.EOF
	}
	r := s.rows[0]
	s.rows = s.rows[1:]
	return r, nil
}

// mkRow makes a row of ledger l, topic, at hour h of 2026-03-01 UTC.
func mkRow(line int, l, topic, typ string, h int) importRow {
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(h) * time.Hour)
	return importRow{
		line: line, ledgerID: l, topic: topic, time: at,
		entry: importEntry{
			EntryID: fmt.Sprintf("%s-%d", topic, line), PSPReference: "p", Time: at.Format(time.RFC3339Nano),
			EntryType: typ, Amount: int64(line),
		},
	}
}

// recordingImporter returns an importer that records its batches as
// "ledger/topic:first-last" line ranges.
func recordingImporter(batch int, got *[]string) *importer {
	im := newImporter(batch, "", "", &progress{w: io.Discard, every: time.Hour, now: time.Now})
	im.post = func(_ context.Context, l, topic string, es []importEntry) (appendResult, error) {
		*got = append(*got, fmt.Sprintf("%s/%s:%d-%d", l, topic, es[0].Amount, es[len(es)-1].Amount))
		return appendResult{Appended: flexInt(len(es))}, nil
	}
	im.calendar = func(context.Context, string) (ledger.Calendar, error) { return ledger.NewCalendar("UTC", "") }
	return im
}

func TestImporter_Batches(t *testing.T) {
	for _, tc := range []struct {
		name  string
		batch int
		rows  []importRow
		want  []string
	}{
		{
			"one topic, full batches and the rest", 2,
			[]importRow{mkRow(1, "A", "funds", "capture", 1), mkRow(2, "A", "funds", "capture", 2), mkRow(3, "A", "funds", "capture", 30), mkRow(4, "A", "funds", "capture", 50), mkRow(5, "A", "funds", "capture", 60)},
			[]string{"A/funds:1-2", "A/funds:3-4", "A/funds:5-5"},
		},
		{
			"interleaved topics on one date stay batched", 3,
			[]importRow{mkRow(1, "A", "funds", "capture", 1), mkRow(2, "A", "fees", "capture-fee", 1), mkRow(3, "A", "funds", "capture", 2), mkRow(4, "A", "fees", "capture-fee", 2), mkRow(5, "A", "funds", "capture", 3), mkRow(6, "A", "fees", "capture-fee", 3)},
			[]string{"A/funds:1-5", "A/fees:2-6"},
		},
		{
			"a new date posts what the other topic holds", 10,
			[]importRow{mkRow(1, "A", "funds", "capture", 1), mkRow(2, "A", "fees", "capture-fee", 1), mkRow(3, "A", "funds", "capture", 25), mkRow(4, "A", "fees", "capture-fee", 26)},
			[]string{"A/fees:2-2", "A/funds:1-3", "A/fees:4-4"},
		},
		{
			"a payout posts fees first and seals funds", 10,
			[]importRow{mkRow(1, "A", "funds", "capture", 1), mkRow(2, "A", "fees", "capture-fee", 1), mkRow(3, "A", "funds", "payout-scheduled", 2), mkRow(4, "A", "funds", "capture", 3), mkRow(5, "A", "fees", "capture-fee", 3)},
			[]string{"A/fees:2-2", "A/funds:1-4", "A/fees:5-5"},
		},
		{
			"ledgers are independent", 2,
			[]importRow{mkRow(1, "A", "funds", "capture", 1), mkRow(2, "B", "funds", "capture", 1), mkRow(3, "B", "funds", "capture", 40), mkRow(4, "A", "funds", "capture", 50)},
			[]string{"B/funds:2-3", "A/funds:1-4"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			im := recordingImporter(tc.batch, &got)
			if err := im.run(context.Background(), &sliceSource{rows: tc.rows}); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("batches = %v, want %v", got, tc.want)
			}
			if st := im.stats(); st.Read != int64(len(tc.rows)) || st.Appended != st.Read || im.pending != 0 {
				t.Errorf("stats = %+v, pending %d", st, im.pending)
			}
		})
	}
}

// Holding more than maxPending entries over many ledgers posts the oldest
// batch, so memory stays bounded.
func TestImporter_BoundedMemory(t *testing.T) {
	var got []string
	im := recordingImporter(100, &got)
	im.maxPending = 10
	var rows []importRow
	for i := 1; i <= 30; i++ {
		rows = append(rows, mkRow(i, fmt.Sprintf("L%d", i%5), "funds", "capture", 1))
	}
	maxHeld := 0
	im.prog.now = func() time.Time { maxHeld = max(maxHeld, im.pending); return time.Now() }
	if err := im.run(context.Background(), &sliceSource{rows: rows}); err != nil {
		t.Fatal(err)
	}
	if maxHeld > 10 {
		t.Errorf("held %d entries, want at most 10", maxHeld)
	}
	if st := im.stats(); st.Appended != 30 {
		t.Errorf("appended %d, want 30", st.Appended)
	}
}

// A malformed row stops the import: what was posted stays posted, what is
// held is not posted.
func TestImporter_StopsAtBadRow(t *testing.T) {
	var got []string
	im := recordingImporter(2, &got)
	bad := &rowError{Line: 4, Field: "amount", Msg: "bad"}
	err := im.run(context.Background(), &sliceSource{
		rows: []importRow{mkRow(1, "A", "funds", "capture", 1), mkRow(2, "A", "funds", "capture", 1), mkRow(3, "A", "funds", "capture", 1)},
		err:  bad,
	})
	if err != bad {
		t.Fatalf("err = %v, want the row error", err)
	}
	if fmt.Sprint(got) != "[A/funds:1-2]" {
		t.Errorf("posted %v, want only the full first batch", got)
	}
	if st := im.stats(); st.Read != 3 || st.Appended != 2 {
		t.Errorf("stats = %+v", st)
	}
}

// Whatever the batching, every entry gets the ledger date it gets when the
// file is posted one entry at a time in file order.
func TestImporter_DatesAsInFileOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []importRow
	h := 0
	for i := 1; i <= 400; i++ {
		h += rng.IntN(5)
		topic, typ := "funds", "capture"
		switch r := rng.IntN(20); {
		case r < 8:
			topic, typ = "fees", "capture-fee"
		case r == 8:
			typ = "payout-scheduled"
		}
		row := mkRow(i, []string{"302321", "302322"}[rng.IntN(2)], topic, typ, h-rng.IntN(30)) // times not sorted
		if i == 150 || i == 300 {                                                              // named dates far ahead: they close every date before
			row.entry.LedgerDate = map[int]string{150: "2026-06-01", 300: "2026-08-01"}[i]
			row.date, _ = ledger.ParseDate(row.entry.LedgerDate)
		}
		rows = append(rows, row)
	}
	dates := func(batch int) map[string]ledger.Date {
		f := newFakeAdmin(t)
		f.addLedger("302321", "Europe/Oslo", "04:00")
		f.addLedger("302322", "America/New_York", "")
		api := newAdminAPI(f.URL, "admin", "admin-secret")
		im := newImporter(batch, "", "", &progress{w: io.Discard, every: time.Hour, now: time.Now})
		im.post = api.appendEntries
		im.calendar = func(ctx context.Context, id string) (ledger.Calendar, error) {
			l, err := api.getLedger(ctx, id)
			if err != nil {
				return ledger.Calendar{}, err
			}
			return ledger.NewCalendar(l.TimeZone, l.Cutoff)
		}
		if err := im.run(context.Background(), &sliceSource{rows: slices.Clone(rows)}); err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		out := map[string]ledger.Date{}
		for _, l := range []string{"302321", "302322"} {
			for _, topic := range []string{"funds", "fees"} {
				for _, e := range f.entries(l, topic) {
					out[l+"/"+e.EntryID] = e.date
				}
			}
		}
		if len(out) != len(rows) {
			t.Fatalf("batch %d: %d entries stored, want %d", batch, len(out), len(rows))
		}
		return out
	}
	want := dates(1)
	for _, batch := range []int{7, 1000} {
		got := dates(batch)
		for k, d := range want {
			if got[k] != d {
				t.Errorf("batch %d: %s dated %s, posted one by one %s", batch, k, got[k], d)
			}
		}
	}
}

func TestProgress_AtMostOncePerInterval(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &progress{w: &buf, every: time.Second, now: func() time.Time { return now }, start: now, last: now}
	for i := range 50 {
		now = now.Add(100 * time.Millisecond) // 5 s in all
		p.tick(importStats{Read: int64(i + 1), Appended: int64(i)})
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d progress lines in 5 s, want 5:\n%s", len(lines), buf.String())
	}
	if lines[0] != "import: 10 read, 9 appended, 0 duplicates, 10 entries/s" {
		t.Errorf("first line = %q", lines[0])
	}
}

// writeFile writes a file in a temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// jsonlEntries makes n JSON lines for ledger 302321, alternating topics
// when mixed, from entry number from.
func jsonlEntries(from, n int, mixed bool) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		topic := "funds"
		if mixed && i%2 == 1 {
			topic = "fees"
		}
		fmt.Fprintf(&b, `{"entryId":"e%d","pspReference":"psp%d","time":"2026-03-01T%02d:%02d:00Z","entryType":"capture","reference":"order-%d","amount":%d,"recipientHandle":"NO:1","topic":"%s"}`+"\n",
			i, i, 8+i/60%12, i%60, i, 100+i, topic)
	}
	return b.String()
}

func TestImportCmd_FakeServer(t *testing.T) {
	f := newFakeAdmin(t)
	f.addLedger("302321", "Europe/Oslo", "")
	f.env(t)

	file := writeFile(t, "entries.jsonl", jsonlEntries(0, 25, true))
	stdout, stderr, err := runCmd(t, "import", file, "--ledger", "302321", "--batch", "10")
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "imported "+file+": 25 entries read, 25 appended, 0 duplicates") {
		t.Errorf("stdout = %q", stdout)
	}
	if n := len(f.entries("302321", "funds")) + len(f.entries("302321", "fees")); n != 25 {
		t.Errorf("%d entries stored, want 25", n)
	}
	// 13 funds and 12 fees entries, on one date: batches of 10 and the rest.
	if b := f.posted(); len(b) != 4 {
		t.Errorf("%d batches, want 4: %+v", len(b), b)
	}

	// Again: nothing posted twice.
	stdout, _, err = runCmd(t, "import", file, "--ledger", "302321", "--batch", "10", "--json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"read": 25`, `"appended": 0`, `"duplicates": 25`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("second run: stdout lacks %s:\n%s", want, stdout)
		}
	}
	if n := len(f.entries("302321", "funds")) + len(f.entries("302321", "fees")); n != 25 {
		t.Errorf("after the second run %d entries stored, want 25", n)
	}

	// CSV, gzipped, the topic from the flag.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, "entryId,pspReference,time,entryType,reference,amount,recipientHandle\n"+
		"c1,psp-c1,2026-03-01T10:00:00Z,capture-fee,o1,-3,\n"+
		"c2,psp-c2,2026-03-01T10:01:00Z,capture-fee,o2,-4,NO:1\n")
	zw.Close()
	csvFile := writeFile(t, "fees.csv.gz", gz.String())
	if _, stderr, err := runCmd(t, "import", csvFile, "--ledger", "302321", "--topic", "fees"); err != nil {
		t.Fatalf("csv import: %v\n%s", err, stderr)
	}
	fees := f.entries("302321", "fees")
	last := fees[len(fees)-1]
	if last.EntryID != "c2" || last.Amount != -4 || *last.RecipientHandle != "NO:1" || fees[len(fees)-2].RecipientHandle != nil {
		t.Errorf("csv entries = %+v, %+v", fees[len(fees)-2], last)
	}
}

func TestImportCmd_Stdin(t *testing.T) {
	f := newFakeAdmin(t)
	f.addLedger("302321", "UTC", "")
	f.env(t)
	var stdout, stderr bytes.Buffer
	args := []string{"-", "--format", "jsonl", "--ledger", "302321"}
	if err := importMain(context.Background(), defaultConfig(), args, strings.NewReader(jsonlEntries(0, 3, false)), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if n := len(f.entries("302321", "funds")); n != 3 {
		t.Errorf("%d entries, want 3", n)
	}
}

// A bad line stops the import: the batches before it are posted, the one it
// would have joined is not, and the message names the line and the field.
func TestImportCmd_BadLine(t *testing.T) {
	f := newFakeAdmin(t)
	f.addLedger("302321", "UTC", "")
	f.env(t)
	content := jsonlEntries(0, 12, false) + `{"entryId":"bad","pspReference":"p","time":"2026-03-01T09:00:00Z","entryType":"capture","reference":"r","amount":"12"}` + "\n" + jsonlEntries(12, 5, false)
	file := writeFile(t, "e.jsonl", content)
	_, stderr, err := runCmd(t, "import", file, "--ledger", "302321", "--batch", "5")
	if err == nil || !strings.Contains(err.Error(), "line 13: amount: must be a JSON integer") {
		t.Fatalf("err = %v, want line 13: amount", err)
	}
	if code := exitCode(err, io.Discard); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if n := len(f.entries("302321", "funds")); n != 10 {
		t.Errorf("%d entries posted, want the 10 of the two full batches", n)
	}
	for _, want := range []string{"import stopped: 12 entries read, 10 appended", "2 entries read were not posted", "run the same import again"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// A batch the server refuses names the file line of the entry the server
// names.
func TestImportCmd_ServerRefusesEntry(t *testing.T) {
	f := newFakeAdmin(t)
	f.addLedger("302321", "UTC", "")
	f.env(t)
	content := jsonlEntries(0, 3, false) + strings.Replace(jsonlEntries(3, 1, false), `"amount":103`, `"amount":666`, 1)
	file := writeFile(t, "e.jsonl", "\n"+content)
	_, _, err := runCmd(t, "import", file, "--ledger", "302321")
	if err == nil || !strings.Contains(err.Error(), "line 5: posting 4 entries to ledger 302321 funds: 400 Bad Request: entries[3].amount: the devil's number (contextId ctx-400)") {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.entries("302321", "funds")); n != 0 {
		t.Errorf("%d entries posted, want 0", n)
	}
}

func TestImportCmd_UnknownLedger(t *testing.T) {
	f := newFakeAdmin(t)
	f.env(t)
	file := writeFile(t, "e.jsonl", jsonlEntries(0, 1, false))
	_, _, err := runCmd(t, "import", file, "--ledger", "999")
	if err == nil || !strings.Contains(err.Error(), "line 1: ledger 999: 404") {
		t.Fatalf("err = %v", err)
	}
}

func TestImportCmd_DryRun(t *testing.T) {
	t.Setenv("LEDGERFEED_SERVER", "http://127.0.0.1:1") // never asked
	file := writeFile(t, "e.jsonl", jsonlEntries(0, 4, true))
	stdout, _, err := runCmd(t, "import", file, "--ledger", "1", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "checked (dry run, nothing posted) "+file+": 4 entries read") {
		t.Errorf("stdout = %q", stdout)
	}
}

func TestImportCmd_Usage(t *testing.T) {
	f := newFakeAdmin(t)
	f.env(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import"}, "missing FILE"},
		{[]string{"import", "a.jsonl", "b.jsonl"}, `unexpected argument "b.jsonl"`},
		{[]string{"import", "a.txt"}, `cannot tell the format of "a.txt"`},
		{[]string{"import", "-"}, `cannot tell the format of "-"`},
		{[]string{"import", "a.jsonl", "--batch", "0"}, "--batch 0: want 1 to 10000"},
		{[]string{"import", "a.jsonl", "--topic", "fee"}, `--topic "fee": want funds or fees`},
		{[]string{"import", "a.csv", "--format", "xml"}, `--format "xml"`},
		{[]string{"import", "a.csv", "--server", "localhost:8080"}, `--server "localhost:8080": want a URL`},
	} {
		_, stderr, err := runCmd(t, tc.args...)
		if code := exitCode(err, io.Discard); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d (%v), stderr lacks %q:\n%s", tc.args, code, err, tc.want, stderr)
		}
	}
}

// FuzzParseJSONRow: no input panics, and what parses agrees with
// encoding/json on the same (duplicate-free) object.
func FuzzParseJSONRow(f *testing.F) {
	f.Add(okRow)
	f.Add(`{"entryId":"a\u0041","pspReference":"p","time":"2026-03-01T09:30:00Z","entryType":"x","amount":-1,"name":null,"x":{"y":[1,"]"]}}`)
	f.Add(` [ {"a" : "b"} ] `)
	f.Fuzz(func(t *testing.T, line string) {
		r, err := parseJSONRow([]byte(line), 1)
		if err != nil {
			return
		}
		var std struct {
			EntryID, PSPReference, EntryType, Reference string
			Amount                                      int64
			RecipientHandle, Name, Message              *string
		}
		if err := json.Unmarshal([]byte(line), &std); err != nil {
			t.Fatalf("parsed, but encoding/json says %v", err)
		}
		e := r.entry
		if std.EntryID != e.EntryID || std.PSPReference != e.PSPReference || std.EntryType != e.EntryType ||
			std.Reference != e.Reference || std.Amount != e.Amount {
			t.Fatalf("parsed %+v, encoding/json %+v", e, std)
		}
	})
}

// Long entries fill a batch by size before they fill it by count.
func TestImporter_BatchBytes(t *testing.T) {
	var got []string
	im := recordingImporter(10000, &got)
	msg := strings.Repeat("m", 1<<20)
	var rows []importRow
	for i := 1; i <= 9; i++ {
		r := mkRow(i, "A", "funds", "capture", 1)
		r.entry.Message = &msg
		rows = append(rows, r)
	}
	if err := im.run(context.Background(), &sliceSource{rows: rows}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[A/funds:1-4 A/funds:5-8 A/funds:9-9]" {
		t.Errorf("batches = %v, want 4 MiB each", got)
	}
}
