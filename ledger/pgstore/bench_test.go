package pgstore

// Ingest benchmarks of the PostgreSQL store, measured as
// shared/BENCHMARKING.md asks: each is a ratio against a plain pgx reference
// doing the bare minimum of the same work on the same server in the same
// run — the same rows, with a sequence, COPYed (batch) or INSERTed (one row
// per call) into a table with only a primary key, one transaction per batch
// or call — in alternating chunks, the first pair dropped as warm-up. The
// bbolt store runs a third chunk in each round for comparison. Run with
// -benchtime=1x -count=N (scripts/bench.sh). The server is pgtest's: a
// private one on this machine's disk (or LEDGERFEED_TEST_PG_DSN).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerfeed/ledgerfeed/bench/reference"
	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

const benchLedger = "302321"

var benchHandles = []string{"NO:100001", "NO:100002", "NO:100003", "NO:100004", "NO:100005", "NO:100006", "NO:100007", "NO:100008"}

// benchGen makes funds entries like a settlement engine's: times moving
// forward, time-ordered entry ids, 85% captures, 10% refunds, 5% fees,
// 10% with GDPR fields. Safe for concurrent use.
type benchGen struct {
	mu  sync.Mutex
	rng *rand.Rand
	t   time.Time
	n   uint64
}

func newBenchGen(seed uint64) *benchGen {
	return &benchGen{rng: rand.New(rand.NewPCG(seed, 7)), t: time.Now().Add(-240 * time.Hour)}
}

func (g *benchGen) next() ledger.EntryInput {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	g.t = g.t.Add(time.Duration(g.rng.Int64N(1000)) * time.Microsecond)
	e := ledger.EntryInput{
		EntryID:         fmt.Sprintf("%013x-%08x", g.t.UnixMilli(), g.n),
		PSPReference:    fmt.Sprint(4_000_000_000 + g.n),
		Time:            g.t,
		EntryType:       "capture",
		Reference:       fmt.Sprintf("order-%09d", g.n),
		Amount:          100 + g.rng.Int64N(500_000),
		RecipientHandle: &benchHandles[g.rng.IntN(len(benchHandles))],
	}
	switch p := g.rng.IntN(100); {
	case p < 10:
		e.EntryType, e.Amount = "refund", -e.Amount/10
	case p < 15:
		e.EntryType, e.Amount = "fees-retained", -e.Amount/100
	}
	if g.rng.IntN(10) == 0 {
		e.Name, e.PhoneNumber, e.Message = "Ola Nordmann", "+47 912 34 567", "takk for maten"
	}
	return e
}

func (g *benchGen) batch(n int) []ledger.EntryInput {
	in := make([]ledger.EntryInput, n)
	for i := range in {
		in[i] = g.next()
	}
	return in
}

// pgRef is the plain pgx reference: a table with the entries' columns and
// only a primary key.
type pgRef struct {
	pool *pgxpool.Pool
	seq  atomic.Int64
	hash []byte
}

var refCols = []string{"seq", "entry_id", "psp_reference", "time_us", "ledger_date", "entry_type", "reference",
	"amount", "balance_before", "balance_after", "recipient_handle", "hash"}

func openRef(b *testing.B, dsn string, conns int32) *pgRef {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := pool.Exec(context.Background(), `CREATE TABLE IF NOT EXISTS ref_entries (
		seq bigint PRIMARY KEY, entry_id text NOT NULL, psp_reference text NOT NULL, time_us bigint NOT NULL,
		ledger_date integer NOT NULL, entry_type text NOT NULL, reference text NOT NULL, amount bigint NOT NULL,
		balance_before bigint NOT NULL, balance_after bigint NOT NULL, recipient_handle text, hash bytea NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	return &pgRef{pool: pool, hash: make([]byte, 32)}
}

func (r *pgRef) row(e *ledger.EntryInput) []any {
	s := r.seq.Add(1)
	return []any{s, e.EntryID, e.PSPReference, e.Time.UnixMicro(), int32(20600), e.EntryType, e.Reference,
		e.Amount, int64(0), e.Amount, e.RecipientHandle, r.hash}
}

// batch COPYs the rows in one transaction.
func (r *pgRef) batch(ctx context.Context, in []ledger.EntryInput) error {
	rows := make([][]any, len(in))
	for i := range in {
		rows[i] = r.row(&in[i])
	}
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"ref_entries"}, refCols, pgx.CopyFromRows(rows))
		return err
	})
}

// one INSERTs one row in its own transaction.
func (r *pgRef) one(ctx context.Context, e *ledger.EntryInput) error {
	_, err := r.pool.Exec(ctx, `INSERT INTO ref_entries (seq, entry_id, psp_reference, time_us, ledger_date, entry_type,
		reference, amount, balance_before, balance_after, recipient_handle, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		r.row(e)...)
	return err
}

func benchLedgerDef() ledger.Ledger {
	return ledger.Ledger{ID: benchLedger, Currency: "NOK", TimeZone: "Europe/Oslo"}
}

// BenchmarkPGIngest: batch=1000 (one caller, 1000 entries per Append) and
// callers=64 (64 goroutines, one entry per Append), each as a ratio of
// store entries/s to the plain pgx reference's, with the bbolt store's
// entries/s beside them.
func BenchmarkPGIngest(b *testing.B) {
	b.Run("batch=1000", func(b *testing.B) { benchPGIngest(b, 1000, 1) })
	b.Run("callers=64", func(b *testing.B) { benchPGIngest(b, 1, 64) })
}

func benchPGIngest(b *testing.B, n, callers int) {
	cfg := reference.LoadConfig(b)
	ctx := context.Background()
	dsn := pgtest.Start(b)
	s := openPG(b, dsn, Options{})
	if _, _, err := s.PutLedger(ctx, benchLedgerDef()); err != nil {
		b.Fatal(err)
	}
	bolt := openBolt(b, ledger.Options{})
	if _, _, err := bolt.PutLedger(ctx, benchLedgerDef()); err != nil {
		b.Fatal(err)
	}
	ref := openRef(b, dsn, int32(callers+1))
	gen := newBenchGen(uint64(n))

	// chunk runs callers goroutines, each calling call with n fresh entries
	// (made before the chunk; only the calls are timed) until the chunk
	// ends, and returns entries/s.
	chunk := func(call func([]ledger.EntryInput) error) float64 {
		per := max(1, int(2*time.Second/time.Millisecond)) // enough inputs for a fast chunk
		inputs := make([][][]ledger.EntryInput, callers)
		for c := range inputs {
			inputs[c] = make([][]ledger.EntryInput, 0, per)
			if n == 1 {
				for range per {
					inputs[c] = append(inputs[c], gen.batch(1))
				}
			}
		}
		var total atomic.Int64
		var wg sync.WaitGroup
		var busy []time.Duration = make([]time.Duration, callers)
		start := time.Now()
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; busy[c] < cfg.Chunk; i++ {
					var in []ledger.EntryInput
					if i < len(inputs[c]) {
						in = inputs[c][i]
					} else {
						in = gen.batch(n)
					}
					t0 := time.Now()
					if err := call(in); err != nil {
						b.Errorf("call: %v", err)
						return
					}
					busy[c] += time.Since(t0)
					total.Add(int64(n))
				}
			}()
		}
		wg.Wait()
		if callers == 1 {
			return float64(total.Load()) / busy[0].Seconds()
		}
		return float64(total.Load()) / time.Since(start).Seconds()
	}
	storeCall := func(st interface {
		Append(context.Context, string, ledger.Topic, []ledger.EntryInput) (ledger.AppendResult, error)
	}) func([]ledger.EntryInput) error {
		return func(in []ledger.EntryInput) error {
			res, err := st.Append(ctx, benchLedger, ledger.TopicFunds, in)
			if err == nil && res.Appended != len(in) {
				err = fmt.Errorf("appended %d of %d", res.Appended, len(in))
			}
			return err
		}
	}
	refCall := func(in []ledger.EntryInput) error {
		if n == 1 {
			return ref.one(ctx, &in[0])
		}
		return ref.batch(ctx, in)
	}
	var ratios, storeRates, refRates, boltRates []float64
	b.ResetTimer()
	for i := 0; i <= cfg.Pairs; i++ {
		r := chunk(refCall)
		st := chunk(storeCall(s))
		bt := chunk(storeCall(bolt))
		if i == 0 {
			continue
		}
		ratios = append(ratios, st/r)
		storeRates, refRates, boltRates = append(storeRates, st), append(refRates, r), append(boltRates, bt)
	}
	b.StopTimer()
	reference.ReportRatios(b, ratios)
	b.ReportMetric(reference.Quantile(storeRates, 0.5), "store_entries/s")
	b.ReportMetric(reference.Quantile(refRates, 0.5), "ref_entries/s")
	b.ReportMetric(reference.Quantile(boltRates, 0.5), "bolt_entries/s")
}

// BenchmarkPGFeedPage: reading 1000-entry pages (Entries, no GDPR fields)
// from a 20,000-entry log, as a ratio of pages/s to a plain pgx reference
// that selects the same 1000 rows of the same columns by primary key range
// and scans them into structs; the bbolt store's pages/s beside them.
func BenchmarkPGFeedPage(b *testing.B) {
	cfg := reference.LoadConfig(b)
	ctx := context.Background()
	dsn := pgtest.Start(b)
	s := openPG(b, dsn, Options{})
	bolt := openBolt(b, ledger.Options{})
	ref := openRef(b, dsn, 2)
	gen := newBenchGen(3)
	const total, page = 20_000, 1000
	for _, st := range []interface {
		PutLedger(context.Context, ledger.Ledger) (ledger.Ledger, bool, error)
	}{s, bolt} {
		if _, _, err := st.PutLedger(ctx, benchLedgerDef()); err != nil {
			b.Fatal(err)
		}
	}
	for done := 0; done < total; done += page {
		in := gen.batch(page)
		if _, err := s.Append(ctx, benchLedger, ledger.TopicFunds, in); err != nil {
			b.Fatal(err)
		}
		if _, err := bolt.Append(ctx, benchLedger, ledger.TopicFunds, in); err != nil {
			b.Fatal(err)
		}
		if err := ref.batch(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	type refEntry struct {
		seq, timeUS, amount, before, after int64
		date                               int32
		id, psp, typ, ref                  string
		handle                             *string
		hash                               []byte
	}
	refPage := func(from int64) error {
		rows, err := ref.pool.Query(ctx, `SELECT seq, entry_id, psp_reference, time_us, ledger_date, entry_type, reference,
			amount, balance_before, balance_after, recipient_handle, hash FROM ref_entries WHERE seq >= $1 ORDER BY seq LIMIT $2`, from, page)
		if err != nil {
			return err
		}
		out := make([]refEntry, 0, page)
		for rows.Next() {
			var e refEntry
			if err := rows.Scan(&e.seq, &e.id, &e.psp, &e.timeUS, &e.date, &e.typ, &e.ref, &e.amount, &e.before, &e.after, &e.handle, &e.hash); err != nil {
				return err
			}
			out = append(out, e)
		}
		if len(out) != page {
			return fmt.Errorf("reference page of %d", len(out))
		}
		return rows.Err()
	}
	storePage := func(st interface {
		Entries(string, ledger.Topic, uint64, int, ledger.ReadOptions) ([]ledger.Entry, error)
	}) func(int64) error {
		return func(from int64) error {
			es, err := st.Entries(benchLedger, ledger.TopicFunds, uint64(from), page, ledger.ReadOptions{})
			if err == nil && len(es) != page {
				err = fmt.Errorf("page of %d", len(es))
			}
			return err
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	chunk := func(read func(int64) error) float64 {
		var n int
		start := time.Now()
		for time.Since(start) < cfg.Chunk {
			if err := read(1 + rng.Int64N(total-page)); err != nil {
				b.Fatal(err)
			}
			n++
		}
		return float64(n) / time.Since(start).Seconds()
	}
	var ratios, storeRates, refRates, boltRates []float64
	b.ResetTimer()
	for i := 0; i <= cfg.Pairs; i++ {
		r := chunk(refPage)
		st := chunk(storePage(s))
		bt := chunk(storePage(bolt))
		if i == 0 {
			continue
		}
		ratios = append(ratios, st/r)
		storeRates, refRates, boltRates = append(storeRates, st), append(refRates, r), append(boltRates, bt)
	}
	b.StopTimer()
	reference.ReportRatios(b, ratios)
	b.ReportMetric(reference.Quantile(storeRates, 0.5), "store_pages/s")
	b.ReportMetric(reference.Quantile(refRates, 0.5), "ref_pages/s")
	b.ReportMetric(reference.Quantile(boltRates, 0.5), "bolt_pages/s")
}
