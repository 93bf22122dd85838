package main

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Import limits and defaults.
const (
	importDefaultBatch = 1000
	importMaxBatch     = 10000   // the server's cap on a batch
	importMaxLine      = 1 << 20 // longest JSON line
	// importMaxBatchBytes bounds a request body well below the server's
	// default limit (10 MiB): long messages fill a batch before --batch does.
	importMaxBatchBytes = 4 << 20
	importReportEvery   = time.Second
)

// runImport posts the entries of a JSON lines or CSV file through the admin
// API, batched per (ledger, topic). Re-running it posts nothing twice: the
// server acknowledges an entryId it holds with the same content as a
// duplicate.
func runImport(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	return importMain(ctx, cfg, args, os.Stdin, stdout, stderr)
}

func importMain(ctx context.Context, cfg config, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", "FILE [--ledger ID] [--topic funds|fees] [flags]", `Posts the entries of FILE to the server's ingest API in batches per (ledger,
topic). FILE is JSON lines (.jsonl, .ndjson: one entry object per line, the
fields of the ingest API) or CSV (.csv: a header row naming those fields;
amount in integer minor units; an empty recipientHandle is null); .gz is
unpacked; "-" reads stdin and needs --format. Rows may carry ledgerId and
topic to route them; --ledger and --topic are the defaults for rows that do
not.

Every entry has an entryId, so running the same import again posts nothing
twice: the summary counts those entries as duplicates. A malformed row stops
the import with its line number and field; the batches posted before it stay
posted, the rows read since are not posted. Progress goes to stderr, the
summary to stdout.

Prefer LEDGERFEED_CLIENT_SECRET to --client-secret: flags show in ps.`, stderr)
	ac := newAPIConfig(os.Getenv, cfg.DataDir)
	ac.bind(fs)
	var (
		defLedger, defTopic, format string
		batch                       int
		asJSON, dryRun              bool
	)
	fs.StringVar(&defLedger, "ledger", "", "ledger `ID` of rows without a ledgerId")
	fs.StringVar(&defTopic, "topic", "", "`TOPIC` (funds or fees) of rows without a topic")
	fs.StringVar(&format, "format", "", "`FORMAT` of the file: jsonl or csv (default: from the file name)")
	fs.IntVar(&batch, "batch", importDefaultBatch, "entries per request, at most 10000")
	fs.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	fs.BoolVar(&dryRun, "dry-run", false, "read and check the file; post nothing and contact no server")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef(fs, "missing FILE")
	case len(pos) > 1:
		return usagef(fs, "unexpected argument %q", pos[1])
	case batch < 1 || batch > importMaxBatch:
		return usagef(fs, "--batch %d: want 1 to %d", batch, importMaxBatch)
	case defTopic != "" && defTopic != "funds" && defTopic != "fees":
		return usagef(fs, "--topic %q: want funds or fees", defTopic)
	case format != "" && format != "jsonl" && format != "csv":
		return usagef(fs, "--format %q: want jsonl or csv", format)
	}
	name := pos[0]
	gz := strings.HasSuffix(strings.ToLower(name), ".gz")
	if format == "" {
		if format = formatOf(name); format == "" {
			return usagef(fs, "cannot tell the format of %q: name it .jsonl, .ndjson or .csv, or set --format", name)
		}
	}

	var api *adminAPI
	if !dryRun {
		if api, err = ac.connect(stderr); err != nil {
			return usagef(fs, "%v", err)
		}
	}

	var in io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		in = f
	}
	if gz {
		zr, err := gzip.NewReader(in)
		if err != nil {
			return fmt.Errorf("import %s: %w", name, err)
		}
		defer zr.Close()
		in = zr
	}
	src, err := newRowSource(format, bufio.NewReaderSize(in, 256<<10))
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}

	im := newImporter(batch, defLedger, defTopic, newProgress(stderr))
	if !dryRun {
		im.post = api.appendEntries
		im.calendar = func(ctx context.Context, id string) (ledger.Calendar, error) {
			l, err := api.getLedger(ctx, id)
			if err != nil {
				if isStatus(err, 404) {
					return ledger.Calendar{}, fmt.Errorf("ledger %s: %w (create it first: PUT /admin/v1/ledgers/%s)", id, err, id)
				}
				return ledger.Calendar{}, fmt.Errorf("ledger %s: %w", id, err)
			}
			return ledger.NewCalendar(cmp.Or(l.TimeZone, "UTC"), l.Cutoff)
		}
	}
	err = im.run(ctx, src)
	st := im.stats()
	if err != nil {
		fmt.Fprintf(stderr, "import stopped: %s\n", st.summary())
		if st.Read > st.Appended+st.Duplicates {
			fmt.Fprintf(stderr, "%d entries read were not posted. ", st.Read-st.Appended-st.Duplicates)
		}
		fmt.Fprintln(stderr, "Fix the cause and run the same import again: entries already posted count as duplicates.")
		return fmt.Errorf("import %s: %w", name, err)
	}
	if asJSON {
		return writeJSON(stdout, struct {
			File string `json:"file"`
			importStats
			DryRun bool `json:"dryRun,omitempty"`
		}{name, st, dryRun})
	}
	verb := "imported"
	if dryRun {
		verb = "checked (dry run, nothing posted)"
	}
	fmt.Fprintf(stdout, "%s %s: %s\n", verb, name, st.summary())
	return nil
}

func formatOf(name string) string {
	n := strings.TrimSuffix(strings.ToLower(name), ".gz")
	switch {
	case strings.HasSuffix(n, ".jsonl"), strings.HasSuffix(n, ".ndjson"):
		return "jsonl"
	case strings.HasSuffix(n, ".csv"):
		return "csv"
	}
	return ""
}

// importEntry is one entry as the ingest API takes it.
type importEntry struct {
	EntryID         string  `json:"entryId"`
	PSPReference    string  `json:"pspReference"`
	Time            string  `json:"time"`
	LedgerDate      string  `json:"ledgerDate,omitempty"`
	EntryType       string  `json:"entryType"`
	Reference       string  `json:"reference"`
	Amount          int64   `json:"amount"`
	RecipientHandle *string `json:"recipientHandle"`
	Name            *string `json:"name,omitempty"`
	PhoneNumber     *string `json:"phoneNumber,omitempty"`
	Message         *string `json:"message,omitempty"`
}

// size is at least the length of e in JSON, escapes aside.
func (e *importEntry) size() int {
	n := 200 + len(e.EntryID) + len(e.PSPReference) + len(e.Time) + len(e.EntryType) + len(e.Reference)
	for _, p := range []*string{e.RecipientHandle, e.Name, e.PhoneNumber, e.Message} {
		if p != nil {
			n += len(*p)
		}
	}
	return n
}

// importRow is one parsed row of an import file.
type importRow struct {
	line     int    // of the file, from 1; a CSV record's first line
	ledgerID string // empty: --ledger
	topic    string // empty: --topic
	entry    importEntry
	time     time.Time
	date     ledger.Date // the named ledgerDate; zero when none
}

// rowError is a malformed row.
type rowError struct {
	Line  int
	Field string // empty when not about one field
	Msg   string
}

func (e *rowError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Msg)
}

// importFields are the fields a row may have, in the ingest API's order,
// then the two routing fields.
var importFields = []string{
	"entryId", "pspReference", "time", "ledgerDate", "entryType", "reference", "amount",
	"recipientHandle", "name", "phoneNumber", "message", "ledgerId", "topic",
}

// requiredFields must be in every row.
var requiredFields = []string{"entryId", "pspReference", "time", "entryType", "amount"}

func fieldIndex(name string) int { return slices.Index(importFields, name) }

// setText sets a field of r from text; v nil is JSON null. Empty text is
// "none" for the optional fields.
func setText(r *importRow, name string, v *string) error {
	fe := func(format string, args ...any) error {
		return &rowError{Line: r.line, Field: name, Msg: fmt.Sprintf(format, args...)}
	}
	s := ""
	if v != nil {
		s = *v
	}
	optional := func() *string {
		if s == "" {
			return nil
		}
		return &s
	}
	e := &r.entry
	switch name {
	case "entryId", "pspReference", "entryType":
		if s == "" {
			return fe("required, must not be empty")
		}
		switch name {
		case "entryId":
			e.EntryID = s
		case "pspReference":
			e.PSPReference = s
		default:
			e.EntryType = s
		}
	case "reference":
		e.Reference = s
	case "time":
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fe("%q is not an RFC 3339 time such as 2026-03-01T09:30:00Z", s)
		}
		r.time = t
		e.Time = t.UTC().Format(time.RFC3339Nano)
	case "ledgerDate":
		if s == "" {
			return nil
		}
		d, err := ledger.ParseDate(s)
		if err != nil {
			return fe("%v", err)
		}
		r.date, e.LedgerDate = d, s
	case "amount":
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fe("%q is not an integer amount in minor units", s)
		}
		e.Amount = n
	case "recipientHandle":
		e.RecipientHandle = optional()
	case "name":
		e.Name = optional()
	case "phoneNumber":
		e.PhoneNumber = optional()
	case "message":
		e.Message = optional()
	case "ledgerId":
		r.ledgerID = s
	case "topic":
		if s != "" && s != "funds" && s != "fees" {
			return fe("%q is not a topic (funds or fees)", s)
		}
		r.topic = s
	default:
		return unknownField(r.line, name)
	}
	return nil
}

func unknownField(line int, name string) error {
	return &rowError{Line: line, Field: name, Msg: fmt.Sprintf("unknown field; the fields are %s", strings.Join(importFields, ", "))}
}

// rowSource yields the rows of a file; io.EOF after the last.
type rowSource interface {
	next() (importRow, error)
}

func newRowSource(format string, r io.Reader) (rowSource, error) {
	if format == "csv" {
		return newCSVSource(r)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), importMaxLine)
	return &jsonlSource{sc: sc}, nil
}

// jsonlSource reads JSON lines: one object per line, blank lines skipped.
type jsonlSource struct {
	sc   *bufio.Scanner
	line int
}

func (s *jsonlSource) next() (importRow, error) {
	for s.sc.Scan() {
		s.line++
		b := s.sc.Bytes()
		if s.line == 1 {
			b = bytes.TrimPrefix(b, []byte("\uFEFF"))
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		return parseJSONRow(b, s.line)
	}
	if err := s.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return importRow{}, &rowError{Line: s.line + 1, Msg: fmt.Sprintf("longer than %d bytes", importMaxLine)}
		}
		return importRow{}, err
	}
	return importRow{}, io.EOF
}

// parseJSONRow parses one JSON object strictly: known fields only, each at
// most once; amount a JSON integer; the other fields strings or null.
// (encoding/json would keep the last of two equal keys and take a float or,
// with ",string", a string for amount; so the object's members are walked
// here, after json.Valid has vouched for the syntax.)
func parseJSONRow(b []byte, line int) (importRow, error) {
	r := importRow{line: line}
	if !json.Valid(b) {
		return r, jsonSyntaxError(b, line)
	}
	i := skipWS(b, 0)
	if b[i] != '{' {
		return r, &rowError{Line: line, Msg: "not a JSON object"}
	}
	i = skipWS(b, i+1)
	var seen uint32
	for b[i] != '}' {
		end := jsonValueEnd(b, i)
		key, err := jsonString(b[i:end])
		if err != nil {
			return r, &rowError{Line: line, Msg: "a field name " + err.Error()}
		}
		i = skipWS(b, skipWS(b, end)+1) // past the colon
		end = jsonValueEnd(b, i)
		raw := b[i:end]
		if i = skipWS(b, end); b[i] == ',' {
			i = skipWS(b, i+1)
		}

		f := fieldIndex(key)
		if f < 0 {
			return r, unknownField(line, key)
		}
		if seen&(1<<f) != 0 {
			return r, &rowError{Line: line, Field: key, Msg: "appears twice in the object"}
		}
		seen |= 1 << f
		if key == "amount" {
			if !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
				return r, &rowError{Line: line, Field: key, Msg: fmt.Sprintf("must be a JSON integer (minor units), not %s", raw)}
			}
			s := string(raw)
			if err := setText(&r, key, &s); err != nil {
				return r, err
			}
			continue
		}
		var v *string
		switch {
		case raw[0] == '"':
			s, err := jsonString(raw)
			if err != nil {
				return r, &rowError{Line: line, Field: key, Msg: err.Error()}
			}
			v = &s
		case string(raw) == "null":
			if slices.Contains(requiredFields, key) {
				return r, &rowError{Line: line, Field: key, Msg: "required, must not be null"}
			}
		default:
			return r, &rowError{Line: line, Field: key, Msg: fmt.Sprintf("must be a string, not %s", raw)}
		}
		if err := setText(&r, key, v); err != nil {
			return r, err
		}
	}
	for _, f := range requiredFields {
		if seen&(1<<fieldIndex(f)) == 0 {
			return r, &rowError{Line: line, Field: f, Msg: "missing"}
		}
	}
	return r, nil
}

// jsonSyntaxError says what is wrong with b, which json.Valid refused.
func jsonSyntaxError(b []byte, line int) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var v any
	err := dec.Decode(&v)
	if err == nil {
		return &rowError{Line: line, Msg: "text after the JSON value (one object per line)"}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &rowError{Line: line, Msg: fmt.Sprintf("invalid JSON at column %d: %v", se.Offset, err)}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &rowError{Line: line, Msg: "invalid JSON: the line ends inside a value"}
	}
	return &rowError{Line: line, Msg: "invalid JSON: " + err.Error()}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonValueEnd returns the end of the JSON value that starts at b[i]; b is
// valid JSON.
func jsonValueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		for i++; ; i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = jsonValueEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\n\r", rune(b[i])) {
		i++
	}
	return i
}

// jsonString decodes a JSON string literal, refusing invalid UTF-8 (which
// encoding/json would quietly replace).
func jsonString(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", fmt.Errorf("must be a string, not %s", raw)
	}
	if !utf8.Valid(raw) {
		return "", errors.New("is not valid UTF-8")
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

// csvSource reads CSV with a header row naming the fields. Header names
// match case-insensitively and ignore "_", "-" and spaces (entry_id is
// entryId).
type csvSource struct {
	r    *csv.Reader
	cols []string // field of each column
}

func canonicalField(h string) (string, bool) {
	norm := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch r {
			case '_', '-', ' ':
				return -1
			}
			return r
		}, strings.ToLower(strings.TrimSpace(s)))
	}
	n := norm(h)
	for _, f := range importFields {
		if norm(f) == n {
			return f, true
		}
	}
	return "", false
}

func newCSVSource(r io.Reader) (*csvSource, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	hdr, err := cr.Read()
	if err == io.EOF {
		return nil, &rowError{Line: 1, Msg: "empty file; want a header row naming the fields"}
	}
	if err != nil {
		return nil, csvError(err, 0)
	}
	s := &csvSource{r: cr, cols: make([]string, len(hdr))}
	for i, h := range hdr {
		if i == 0 {
			h = strings.TrimPrefix(h, "\uFEFF")
		}
		f, ok := canonicalField(h)
		if !ok {
			return nil, unknownField(1, h)
		}
		if slices.Contains(s.cols[:i], f) {
			return nil, &rowError{Line: 1, Field: f, Msg: "column appears twice"}
		}
		s.cols[i] = f
	}
	for _, f := range requiredFields {
		if !slices.Contains(s.cols, f) {
			return nil, &rowError{Line: 1, Field: f, Msg: "missing column"}
		}
	}
	return s, nil
}

func csvError(err error, want int) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return err
	}
	if errors.Is(pe.Err, csv.ErrFieldCount) {
		return &rowError{Line: pe.StartLine, Msg: fmt.Sprintf("wrong number of fields: the header has %d", want)}
	}
	return &rowError{Line: pe.Line, Msg: fmt.Sprintf("CSV column %d: %v", pe.Column, pe.Err)}
}

func (s *csvSource) next() (importRow, error) {
	rec, err := s.r.Read()
	if err == io.EOF {
		return importRow{}, io.EOF
	}
	if err != nil {
		return importRow{}, csvError(err, len(s.cols))
	}
	line, _ := s.r.FieldPos(0)
	r := importRow{line: line}
	for i, v := range rec {
		if err := setText(&r, s.cols[i], &v); err != nil {
			return r, err
		}
	}
	return r, nil
}

// importStats counts an import's progress.
type importStats struct {
	Read       int64         `json:"read"`
	Appended   int64         `json:"appended"`
	Duplicates int64         `json:"duplicates"`
	Batches    int64         `json:"batches"`
	Elapsed    time.Duration `json:"-"`
	Seconds    float64       `json:"seconds"`
}

func (st importStats) rate() float64 {
	if st.Elapsed <= 0 {
		return 0
	}
	return float64(st.Read) / st.Elapsed.Seconds()
}

func (st importStats) summary() string {
	return fmt.Sprintf("%d entries read, %d appended, %d duplicates, %d batches in %s (%.0f entries/s)",
		st.Read, st.Appended, st.Duplicates, st.Batches, st.Elapsed.Round(time.Millisecond), st.rate())
}

// progress writes a progress line at most once per interval.
type progress struct {
	w     io.Writer
	every time.Duration
	now   func() time.Time
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer) *progress {
	now := time.Now
	t := now()
	return &progress{w: w, every: importReportEvery, now: now, start: t, last: t}
}

// tick reports st when the interval has passed since the last report (or
// the start: nothing is reported in the first interval).
func (p *progress) tick(st importStats) {
	t := p.now()
	if t.Sub(p.last) < p.every {
		return
	}
	p.last = t
	st.Elapsed = t.Sub(p.start)
	fmt.Fprintf(p.w, "import: %d read, %d appended, %d duplicates, %.0f entries/s\n", st.Read, st.Appended, st.Duplicates, st.rate())
}

// importer batches rows per (ledger, topic) and posts the batches.
//
// Order: within a topic, entries are posted in file order. Across the two
// topics of a ledger they may be posted out of file order, but never so
// that an entry's ledger date changes: the server dates an entry max(open
// date, its own date), and a later date or a funds payout moves the open
// date on. So entries of both topics are held back together only while all
// of them have one ledger date (named, or their time's date in the ledger's
// zone and cutoff) and no funds payout is among them; any other row for the
// other topic first posts what is held for it. Ledgers are independent.
type importer struct {
	batch      int
	maxPending int // entries held over all ledgers before the oldest batch is posted
	defLedger  string
	defTopic   string
	// post and calendar talk to the server; nil for a dry run.
	post     func(ctx context.Context, ledgerID, topic string, entries []importEntry) (appendResult, error)
	calendar func(ctx context.Context, ledgerID string) (ledger.Calendar, error)

	ledgers map[string]*ledgerBatches
	pending int
	st      importStats
	prog    *progress
}

type ledgerBatches struct {
	id   string
	cal  ledger.Calendar
	bufs [2]pendingBatch // funds, fees
}

type pendingBatch struct {
	topic   string
	entries []importEntry
	lines   []int
	lo, hi  ledger.Date // range of the entries' ledger dates
	sealed  bool        // holds a funds payout
	bytes   int         // about the size of the entries in JSON
}

func newImporter(batch int, defLedger, defTopic string, prog *progress) *importer {
	return &importer{
		batch:      batch,
		maxPending: max(10*batch, 10000),
		defLedger:  defLedger,
		defTopic:   defTopic,
		ledgers:    make(map[string]*ledgerBatches),
		prog:       prog,
	}
}

func (im *importer) stats() importStats {
	st := im.st
	st.Elapsed = im.prog.now().Sub(im.prog.start)
	st.Seconds = st.Elapsed.Seconds()
	return st
}

// run reads every row of src, posting batches as they fill and the rest at
// the end. On a malformed row it returns without posting what it holds.
func (im *importer) run(ctx context.Context, src rowSource) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := im.add(ctx, r); err != nil {
			return err
		}
		im.prog.tick(im.st)
	}
	return im.flushAll(ctx)
}

func (im *importer) add(ctx context.Context, r importRow) error {
	id := cmp.Or(r.ledgerID, im.defLedger)
	if id == "" {
		return &rowError{Line: r.line, Field: "ledgerId", Msg: "missing: give the row a ledgerId or set --ledger"}
	}
	topic := cmp.Or(r.topic, im.defTopic)
	if topic == "" {
		return &rowError{Line: r.line, Field: "topic", Msg: "missing: give the row a topic or set --topic"}
	}
	im.st.Read++
	lb := im.ledgers[id]
	if lb == nil {
		lb = &ledgerBatches{id: id, bufs: [2]pendingBatch{{topic: "funds"}, {topic: "fees"}}}
		if im.calendar != nil {
			cal, err := im.calendar(ctx, id)
			if err != nil {
				return fmt.Errorf("line %d: %w", r.line, err)
			}
			lb.cal = cal
		} else {
			lb.cal, _ = ledger.NewCalendar("UTC", "")
		}
		im.ledgers[id] = lb
	}
	d := r.date
	if d == 0 {
		d = lb.cal.DateOf(r.time)
	}
	t := 0
	if topic == "fees" {
		t = 1
	}
	mine, other := &lb.bufs[t], &lb.bufs[1-t]
	payout := topic == "funds" && (r.entry.EntryType == "scheduled-for-payout" || r.entry.EntryType == "payout-scheduled")
	if len(other.entries) > 0 && (payout || other.sealed || other.lo != d || other.hi != d) {
		if err := im.flush(ctx, lb, other); err != nil {
			return err
		}
	}
	if len(mine.entries) == 0 {
		mine.lo, mine.hi = d, d
	}
	mine.lo, mine.hi = min(mine.lo, d), max(mine.hi, d)
	mine.sealed = mine.sealed || payout
	mine.entries = append(mine.entries, r.entry)
	mine.lines = append(mine.lines, r.line)
	mine.bytes += r.entry.size()
	im.pending++
	if len(mine.entries) >= im.batch || mine.bytes >= importMaxBatchBytes {
		return im.flush(ctx, lb, mine)
	}
	if im.pending >= im.maxPending {
		return im.flushOldest(ctx)
	}
	return nil
}

// heldBatch is a batch not posted yet.
type heldBatch struct {
	lb *ledgerBatches
	b  *pendingBatch
}

// held returns the non-empty batches, the one with the earliest first line
// first.
func (im *importer) held() []heldBatch {
	var out []heldBatch
	for _, lb := range im.ledgers {
		for i := range lb.bufs {
			if b := &lb.bufs[i]; len(b.entries) > 0 {
				out = append(out, heldBatch{lb, b})
			}
		}
	}
	slices.SortFunc(out, func(x, y heldBatch) int { return cmp.Compare(x.b.lines[0], y.b.lines[0]) })
	return out
}

func (im *importer) flushOldest(ctx context.Context) error {
	if h := im.held(); len(h) > 0 {
		return im.flush(ctx, h[0].lb, h[0].b)
	}
	return nil
}

func (im *importer) flushAll(ctx context.Context) error {
	for _, h := range im.held() {
		if err := im.flush(ctx, h.lb, h.b); err != nil {
			return err
		}
		im.prog.tick(im.st)
	}
	return nil
}

// batchEntryRE finds "entries[3]" in a server's error detail.
var batchEntryRE = regexp.MustCompile(`entries\[(\d+)\]`)

// flush posts b and empties it.
func (im *importer) flush(ctx context.Context, lb *ledgerBatches, b *pendingBatch) error {
	if im.post != nil {
		res, err := im.post(ctx, lb.id, b.topic, b.entries)
		if err != nil {
			where := fmt.Sprintf("lines %d–%d", b.lines[0], b.lines[len(b.lines)-1])
			var ae *apiError
			if errors.As(err, &ae) {
				if m := batchEntryRE.FindStringSubmatch(ae.Problem.Detail); m != nil {
					if i, _ := strconv.Atoi(m[1]); i < len(b.lines) {
						where = fmt.Sprintf("line %d", b.lines[i])
					}
				}
			}
			return fmt.Errorf("%s: posting %d entries to ledger %s %s: %w", where, len(b.entries), lb.id, b.topic, err)
		}
		im.st.Appended += int64(res.Appended)
		im.st.Duplicates += int64(res.Duplicates)
	}
	im.st.Batches++
	im.pending -= len(b.entries)
	clear(b.entries) // drop references to the strings
	b.entries, b.lines, b.sealed, b.bytes = b.entries[:0], b.lines[:0], false, 0
	return nil
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
