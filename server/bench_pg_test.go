package server

// The REST feed page benchmark on the PostgreSQL store (issue 8, "Speed":
// "feed page ≥ 50% of a bare keyset read served by bare net/http"),
// measured as bench_report_test.go measures the bbolt one and with its
// helpers: the real server (auth, audit, gateway, JSON) on a pgstore store,
// 16 connections fetching random full pages by cursor, against a bare
// net/http handler doing a keyset read of the same rows and columns with
// plain pgx on the same database and writing them with a hand-written JSON
// appender (no auth, no cursor, no audit), in alternating chunks. The
// PostgreSQL server is pgtest's private one (or LEDGERFEED_TEST_PG_DSN);
// without PostgreSQL the benchmark skips with pgtest's message.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/bench/reference"
	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/pgstore"
)

// TestMain stops pgtest's private PostgreSQL server (started only by the
// benchmarks here) when the package's tests end.
func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	rbPGEntries = 20_000 // entries in the benchmarks' ledger
	rbPGStarts  = 256    // random page starts, each the cursor of a page answer
)

// rbPGServe serves st (a pgstore store) as newRBEnv serves its bbolt
// store: auth with keys in a temp dir, client "bench" with scope read and
// a grant on rbLedger, free ports. It returns the base URL and the token.
func rbPGServe(b *testing.B, st *pgstore.Store) (base, token string) {
	b.Helper()
	dir := b.TempDir()
	a, err := auth.New(st, auth.Config{DataDir: dir, TokenRatePerMinute: -1, RatePerSecond: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	ctx := context.Background()
	_, secret, err := a.CreateClient(ctx, "bench", []string{"read"}, []ledger.Grant{{LedgerID: rbLedger}})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := a.IssueToken(ctx, "bench", secret)
	if err != nil {
		b.Fatal(err)
	}
	srv := rbServe(b, Config{Store: st, Auth: a, DataDir: dir})
	return "http://" + srv.HTTPAddr().String(), tok.AccessToken
}

// rbStart is a full page's start: the cursor a page answer ended with and
// the sequence it leads to.
type rbStart struct {
	cursor string
	from   int64
}

// rbStarts walks the feed at base from its beginning with random page
// sizes until it has n cursors whose next page is full (from ≤ total −
// rbPageSize + 1), checking on the way that the walk sees every entry once.
func rbStarts(b *testing.B, c *http.Client, base, token string, total, n int, rng *rand.Rand) []rbStart {
	b.Helper()
	var out []rbStart
	for len(out) < n {
		q := url.Values{}
		seen := 0
		for {
			q.Set("pageSize", strconv.Itoa(1+rng.IntN(rbPageSize)))
			_, body := rbGet(b, c, rbFeedURL(base, q), token)
			var w rbFeedWire
			if err := json.Unmarshal(body, &w); err != nil {
				b.Fatalf("feed page: %v", err)
			}
			for i, it := range w.Items {
				if want := strconv.Itoa(seen + i + 1); it.PSPReference != want {
					b.Fatalf("walk: item %d has pspReference %s, want %s", seen+i+1, it.PSPReference, want)
				}
			}
			seen += len(w.Items)
			if w.TryLater {
				break
			}
			if seen+rbPageSize <= total && len(out) < n {
				out = append(out, rbStart{cursor: w.Cursor, from: int64(seen + 1)})
			}
			q = url.Values{"cursor": {w.Cursor}}
		}
		if seen != total {
			b.Fatalf("walk saw %d entries, want %d", seen, total)
		}
	}
	return out
}

// rbKeysetRef is the bare reference: net/http serving GET ?from=N with one
// keyset read of the page's rows (the columns the store reads) by plain pgx
// and a hand-written JSON appender writing the API's item fields.
type rbKeysetRef struct {
	srv  *http.Server
	ln   net.Listener
	pool *pgxpool.Pool
}

func serveKeysetRef(b *testing.B, dsn string, num int32, currency string) *rbKeysetRef {
	b.Helper()
	pool, err := pgxpool.New(context.Background(), dsn) // pgxpool's defaults, as the store's pool
	if err != nil {
		b.Fatal(err)
	}
	bufs := sync.Pool{New: func() any { return new([]byte) }}
	h := func(w http.ResponseWriter, r *http.Request) {
		from, err := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
		if err != nil {
			http.Error(w, "from", http.StatusBadRequest)
			return
		}
		rows, err := pool.Query(r.Context(), `SELECT seq, entry_id, psp_reference, time_us, ledger_date, entry_type, reference,
			amount, balance_before, balance_after, recipient_handle, hash, has_gdpr
			FROM entries WHERE num = $1 AND topic = $2 AND seq >= $3 ORDER BY seq LIMIT $4`, num, int16(1), from, rbPageSize)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		bp := bufs.Get().(*[]byte)
		defer bufs.Put(bp)
		out := append((*bp)[:0], `{"items":[`...)
		var (
			seq, timeUS, amount, before, after int64
			date                               int32
			id, psp, typ, ref                  string
			handle                             *string
			hash                               []byte
			gdpr                               bool
			n                                  int
		)
		for rows.Next() {
			if err := rows.Scan(&seq, &id, &psp, &timeUS, &date, &typ, &ref, &amount, &before, &after, &handle, &hash, &gdpr); err != nil {
				rows.Close()
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if n > 0 {
				out = append(out, ',')
			}
			n++
			out = append(out, `{"pspReference":`...)
			out = refJSONString(out, psp)
			out = append(out, `,"time":"`...)
			out = time.UnixMicro(timeUS).UTC().AppendFormat(out, "2006-01-02T15:04:05.000000Z")
			out = append(out, `","ledgerDate":"`...)
			out = ledger.Date(date).AppendFormat(out)
			out = append(out, `","entryType":`...)
			out = refJSONString(out, typ)
			out = append(out, `,"reference":`...)
			out = refJSONString(out, ref)
			out = append(out, `,"currency":`...)
			out = refJSONString(out, currency)
			out = append(out, `,"amount":`...)
			out = strconv.AppendInt(out, amount, 10)
			out = append(out, `,"balanceBefore":`...)
			out = strconv.AppendInt(out, before, 10)
			out = append(out, `,"balanceAfter":`...)
			out = strconv.AppendInt(out, after, 10)
			out = append(out, `,"recipientHandle":`...)
			if handle != nil {
				out = refJSONString(out, *handle)
			} else {
				out = append(out, "null"...)
			}
			out = append(out, '}')
		}
		if err := rows.Err(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out = append(out, `],"tryLater":false,"cursor":"`...)
		out = strconv.AppendInt(out, seq+1, 10)
		out = append(out, `"}`...)
		*bp = out
		hd := w.Header()
		hd["Content-Type"] = []string{"application/json"}
		hd["Content-Length"] = []string{strconv.Itoa(len(out))}
		w.Write(out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pool.Close()
		b.Fatal(err)
	}
	ref := &rbKeysetRef{srv: &http.Server{Handler: http.HandlerFunc(h)}, ln: ln, pool: pool}
	go ref.srv.Serve(ln)
	b.Cleanup(func() {
		ref.srv.Close()
		pool.Close()
	})
	return ref
}

// refJSONString appends s as a JSON string: the reference's bare minimum
// (quote, backslash and control characters escaped).
func refJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// rbItems returns the bytes of a page answer's items array.
func rbItems(b *testing.B, body []byte) []byte {
	b.Helper()
	const open, close = `{"items":[`, `],"tryLater":`
	i := bytes.Index(body, []byte(close))
	if !bytes.HasPrefix(body, []byte(open)) || i < 0 {
		b.Fatalf("not a feed page: %.200s", body)
	}
	return body[len(open):i]
}

// rbPageCall GETs a random one of urls (with the token when not "") and
// checks the status and that the answer holds a full page.
func rbPageCall(c *http.Client, urls []string, token string) func() error {
	item := []byte(`{"pspReference":`)
	bufs := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	return func() error {
		req, err := http.NewRequest("GET", urls[rand.IntN(len(urls))], nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		r, err := c.Do(req)
		if err != nil {
			return err
		}
		buf := bufs.Get().(*bytes.Buffer)
		defer bufs.Put(buf)
		buf.Reset()
		_, err = buf.ReadFrom(r.Body)
		r.Body.Close()
		if err != nil {
			return err
		}
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %.300s", r.StatusCode, buf.Bytes())
		}
		if n := bytes.Count(buf.Bytes(), item); n != rbPageSize {
			return fmt.Errorf("%s: %d items", req.URL, n)
		}
		return nil
	}
}

// pgCPU reads the CPU time (utime+stime) of a local PostgreSQL server: its
// postmaster and every child (backends, writers). ok is false when the
// server's processes cannot be read (another machine).
type pgCPU struct{ postmaster int }

func newPGCPU(b *testing.B, pool *pgxpool.Pool) pgCPU {
	var pid int32
	if err := pool.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		b.Fatal(err)
	}
	st, ok := procStat(int(pid))
	if !ok {
		return pgCPU{}
	}
	return pgCPU{postmaster: st.ppid}
}

type procStatFields struct {
	ppid int
	cpu  time.Duration
}

// procStat reads /proc/PID/stat: the parent and utime+stime (in the
// kernel's USER_HZ ticks, 100 a second on Linux).
func procStat(pid int) (procStatFields, bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStatFields{}, false
	}
	i := bytes.LastIndexByte(raw, ')') // the command may hold spaces
	if i < 0 {
		return procStatFields{}, false
	}
	f := strings.Fields(string(raw[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return procStatFields{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return procStatFields{ppid: ppid, cpu: time.Duration(ut+stime) * 10 * time.Millisecond}, true
}

// total returns the server's CPU time so far (0 when unknown).
func (p pgCPU) total() time.Duration {
	if p.postmaster == 0 {
		return 0
	}
	st, _ := procStat(p.postmaster)
	sum := st.cpu
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range procs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == p.postmaster {
			continue
		}
		if st, ok := procStat(pid); ok && st.ppid == p.postmaster {
			sum += st.cpu
		}
	}
	return sum
}

// BenchmarkReportFeedPagePG: 16 connections GET random full 1000-item feed
// pages by cursor from a 20,000-entry ledger, served by the real server
// (auth, audit, gateway, JSON) on the PostgreSQL store, against a bare
// net/http handler doing a plain pgx keyset read of the same rows and
// columns and writing the same items with a hand-written appender. Goal:
// ratio ≥ 0.5. A third chunk in each round serves the same pages from the
// bbolt store (bolt_req/s). CPU per page: *_cpu_us/req is this process's
// (client + ledgerfeed or reference server), *_pg_cpu_us/req PostgreSQL's
// (all its processes; absent on a server of another machine), and
// excess_cpu_us/req the store's sum of both less the reference's.
func BenchmarkReportFeedPagePG(b *testing.B) {
	cfg := reference.LoadConfig(b)
	ctx := context.Background()
	dsn := pgtest.Start(b)
	st, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if _, _, err := st.PutLedger(ctx, ledger.Ledger{ID: rbLedger, Currency: "NOK", TimeZone: "UTC"}); err != nil {
		b.Fatal(err)
	}
	be := newRBEnv(b) // the bbolt server, and the entries of both stores
	for be.n < rbPGEntries {
		in := be.entries(rbPageSize)
		if _, err := be.store.Append(ctx, rbLedger, ledger.TopicFunds, in); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Append(ctx, rbLedger, ledger.TopicFunds, in); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.Pool().Exec(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	var num int32
	if err := st.Pool().QueryRow(ctx, "SELECT num FROM ledgers WHERE id = $1", rbLedger).Scan(&num); err != nil {
		b.Fatal(err)
	}
	base, token := rbPGServe(b, st)
	ref := serveKeysetRef(b, dsn, num, "NOK")
	refBase := "http://" + ref.ln.Addr().String() + "/?from="

	c := rbClient(rbConns)
	defer c.CloseIdleConnections()
	rng := rand.New(rand.NewPCG(8, 1000))
	pgStarts := rbStarts(b, c, base, token, rbPGEntries, rbPGStarts, rng)
	boltStarts := rbStarts(b, c, be.base, be.token, rbPGEntries, rbPGStarts, rng)
	var pgURLs, refURLs, boltURLs []string
	for _, s := range pgStarts {
		pgURLs = append(pgURLs, rbFeedURL(base, url.Values{"cursor": {s.cursor}}))
		refURLs = append(refURLs, refBase+strconv.FormatInt(s.from, 10))
	}
	for _, s := range boltStarts {
		boltURLs = append(boltURLs, rbFeedURL(be.base, url.Values{"cursor": {s.cursor}}))
	}
	// The reference writes the very items the server does (and so reads
	// the same rows): checked on a few starts.
	// The bbolt server too.
	for _, i := range []int{0, len(pgStarts) / 2, len(pgStarts) - 1} {
		for _, s := range []struct {
			name, url, token string
			from             int64
		}{{"postgres", pgURLs[i], token, pgStarts[i].from}, {"bbolt", boltURLs[i], be.token, boltStarts[i].from}} {
			_, got := rbGet(b, c, s.url, s.token)
			_, want := rbGet(b, c, refBase+strconv.FormatInt(s.from, 10), "")
			if !bytes.Equal(rbItems(b, got), rbItems(b, want)) {
				b.Fatalf("%s from %d: the server's items differ from the reference's:\n%.400s\n%.400s", s.name, s.from, got, want)
			}
		}
	}
	pcpu := newPGCPU(b, st.Pool())
	load := func(call func() error) (rate, cpuUS, pgUS float64) {
		pg0, t0 := pcpu.total(), time.Now()
		rate, cpuUS = rbLoad(b, cfg.Chunk, call)
		n := rate * time.Since(t0).Seconds() // requests, within one or two
		return rate, cpuUS, float64(pcpu.total()-pg0) / 1e3 / n
	}
	storeCall := rbPageCall(c, pgURLs, token)
	refCall := rbPageCall(c, refURLs, "")
	boltCall := rbPageCall(c, boltURLs, be.token)
	var ratios, sr, rr, br, sc, rc, bc, spg, rpg, excess []float64
	b.ResetTimer()
	for i := 0; i <= cfg.Pairs; i++ {
		r, rcpu, rpgcpu := load(refCall)
		s, scpu, spgcpu := load(storeCall)
		bt, bcpu, _ := load(boltCall)
		if i == 0 {
			continue
		}
		ratios = append(ratios, s/r)
		sr, rr, br = append(sr, s), append(rr, r), append(br, bt)
		sc, rc, bc = append(sc, scpu), append(rc, rcpu), append(bc, bcpu)
		spg, rpg = append(spg, spgcpu), append(rpg, rpgcpu)
		excess = append(excess, scpu+spgcpu-rcpu-rpgcpu)
	}
	b.StopTimer()
	reference.ReportRatios(b, ratios)
	med := func(xs []float64) float64 { return reference.Quantile(xs, 0.5) }
	b.ReportMetric(med(sr), "store_req/s")
	b.ReportMetric(med(rr), "ref_req/s")
	b.ReportMetric(med(br), "bolt_req/s")
	b.ReportMetric(med(sc), "store_cpu_us/req")
	b.ReportMetric(med(rc), "ref_cpu_us/req")
	b.ReportMetric(med(bc), "bolt_cpu_us/req")
	if pcpu.postmaster != 0 {
		b.ReportMetric(med(spg), "store_pg_cpu_us/req")
		b.ReportMetric(med(rpg), "ref_pg_cpu_us/req")
		// The client's work is the same in both: what the server costs
		// per page beyond the bare keyset read, in this process and in
		// PostgreSQL.
		b.ReportMetric(med(excess), "excess_cpu_us/req")
	}
}
