package ledger

// Ingest benchmarks, measured as shared/BENCHMARKING.md asks: every figure
// that is a goal is a ratio against a bare bbolt loop (bench/reference)
// measured in the same run, in alternating chunks (reference, store,
// reference, store, …), the first pair dropped as warm-up. Each benchmark
// function runs its chunks once whatever b.N is; run them with
// -benchtime=1x and -count=N and summarise with benchstat (scripts/bench.sh).
//
// Tuning (environment):
//
//	LEDGERFEED_BENCH_PAIRS  measured pairs per run after the warm-up pair (default 3)
//	LEDGERFEED_BENCH_CHUNK  length of one chunk, a Go duration (default 1s)
//	LEDGERFEED_BENCH_10M=1  also run BenchmarkIngestMemory/entries=10M
//	LEDGERFEED_BENCH_HEAPPROFILE=FILE  BenchmarkIngestMemory writes the live
//	                        heap to FILE at the end, with the store still open
//
// Both the store and the reference write into the benchmark's b.TempDir(),
// so they share a filesystem.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/bench/reference"
	bolt "go.etcd.io/bbolt"
)

const benchLedgerID = "302321"

// ---------------------------------------------------------------------------
// Entry generator: what a settlement engine posts to one ledger's funds topic.

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// entryGen makes realistic funds entries for one ledger: times moving
// forward (about 1 M entries per ledger date), 85% captures, 10% refunds and
// 5% retained fees (both naming a recent capture's reference), 8 sales units,
// and 10% with GDPR fields.
//
// Sequential ids (random=false): entryId a monotonic ULID (time-ordered),
// pspReference a growing 10-digit number, reference a growing order number
// per sales unit. Random ids (random=true): entryId, reference and
// pspReference are random UUIDs, so every index insert lands anywhere.
type entryGen struct {
	random bool
	rng    *rand.Rand
	t      time.Time
	lastMs int64
	u1     uint16 // ULID entropy, incremented within one millisecond
	u2     uint64
	psp    uint64
	orders [8]uint64
	recent [1024]string // references of recent captures
	nCaps  int
}

func newEntryGen(random bool, seed uint64) *entryGen {
	return &entryGen{
		random: random,
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		// 30 days of history at ~86 ms per entry is room for 30 M entries
		// before a time would be in the future.
		t:   time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Microsecond),
		psp: 3343121302,
	}
}

func (g *entryGen) ulid() string {
	ms := g.t.UnixMilli()
	if ms != g.lastMs {
		g.lastMs, g.u1, g.u2 = ms, uint16(g.rng.Uint32()), g.rng.Uint64()
	} else if g.u2++; g.u2 == 0 {
		g.u1++
	}
	hi, lo := uint64(ms)<<16|uint64(g.u1), g.u2
	var b [26]byte
	for i := 25; i >= 0; i-- {
		b[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(b[:])
}

func (g *entryGen) uuid() string {
	var u [16]byte
	for i := 0; i < 16; i += 8 {
		v := g.rng.Uint64()
		for j := range 8 {
			u[i+j] = byte(v >> (8 * j))
		}
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

var benchHandles = [8]string{"NO:123455", "NO:123456", "NO:201877", "NO:310442", "NO:498120", "NO:577301", "NO:602915", "NO:771038"}

var benchMessages = []string{"Takk for handelen!", "Gave til Kari", "Middag fredag", "Billetter konsert 14. mars"}

func (g *entryGen) next() EntryInput {
	g.t = g.t.Add(time.Duration(g.rng.Int64N(172_000)) * time.Microsecond)
	unit := g.rng.IntN(len(benchHandles))
	e := EntryInput{Time: g.t, RecipientHandle: &benchHandles[unit]}
	if g.random {
		e.EntryID, e.PSPReference = g.uuid(), g.uuid()
	} else {
		e.EntryID = g.ulid()
		g.psp += 1 + uint64(g.rng.IntN(3))
		e.PSPReference = strconv.FormatUint(g.psp, 10)
	}
	switch p := g.rng.IntN(100); {
	case p < 85 || g.nCaps == 0:
		e.EntryType = "capture"
		e.Amount = 100 + g.rng.Int64N(500_000)
		if g.random {
			e.Reference = g.uuid()
		} else {
			g.orders[unit]++
			e.Reference = fmt.Sprintf("shop-%d-order-%08d", unit, g.orders[unit])
		}
		g.recent[g.nCaps%len(g.recent)] = e.Reference
		g.nCaps++
	case p < 95:
		e.EntryType = "refund"
		e.Amount = -(100 + g.rng.Int64N(50_000))
		e.Reference = g.recent[g.rng.IntN(min(g.nCaps, len(g.recent)))]
	default:
		e.EntryType = "fees-retained"
		e.Amount = -(1 + g.rng.Int64N(2_000))
		e.Reference = g.recent[g.rng.IntN(min(g.nCaps, len(g.recent)))]
	}
	if g.rng.IntN(10) == 0 {
		e.Name = "Ola Nordmann"
		e.PhoneNumber = fmt.Sprintf("+47 9%02d %02d %03d", g.rng.IntN(100), g.rng.IntN(100), g.rng.IntN(1000))
		e.Message = benchMessages[g.rng.IntN(len(benchMessages))]
	}
	return e
}

func (g *entryGen) batch(n int) []EntryInput {
	in := make([]EntryInput, n)
	for i := range in {
		in[i] = g.next()
	}
	return in
}

// ---------------------------------------------------------------------------
// Setup shared by the benchmarks.

// openBenchStore opens a store in dir with the benchmark ledger.
func openBenchStore(b *testing.B, dir string) *Store {
	b.Helper()
	s := openTestStoreAt(b, filepath.Join(dir, "store"), Options{})
	mustPutLedger(b, s, benchLedgerID, "NOK", "Europe/Oslo", "")
	return s
}

// seedAndSample appends n entries from gen to s and returns copies of the
// stored entry records: the exact bytes the store writes per entry, which the
// reference loop then writes.
func seedAndSample(b *testing.B, s *Store, gen *entryGen, n int) [][]byte {
	b.Helper()
	ctx := context.Background()
	for done := 0; done < n; done += 1000 {
		if _, err := s.Append(ctx, benchLedgerID, TopicFunds, gen.batch(min(1000, n-done))); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	var vals [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEntries).ForEach(func(_, v []byte) error {
			vals = append(vals, bytes.Clone(v))
			return nil
		})
	})
	if err != nil || len(vals) != n {
		b.Fatalf("sample stored records: %d of %d, %v", len(vals), n, err)
	}
	return vals
}

func meanLen(vals [][]byte) float64 {
	var sum int
	for _, v := range vals {
		sum += len(v)
	}
	return float64(sum) / float64(len(vals))
}

func openReference(b *testing.B, dir string, o reference.Options) *reference.Loop {
	b.Helper()
	ref, err := reference.Open(filepath.Join(dir, "reference.db"), o)
	if err != nil {
		b.Fatalf("open reference: %v", err)
	}
	b.Cleanup(func() { ref.Close() })
	return ref
}

func durQuantileMs(ds []time.Duration, q float64) float64 {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d) / 1e6
	}
	return reference.Quantile(xs, q)
}

// txCost adds up where a side's call time went, from bbolt's own commit
// counters: spill (building the dirty pages: CPU), write (pwrite and both
// fdatasyncs of the commit) and the rest (the side's own work before the
// commit: for the store, validation, index planning, puts, GDPR sealing and
// the key file's write and fsync).
type txCost struct {
	entries            int
	busy, spill, write time.Duration
	alloc              int64 // bytes of pages allocated for dirty nodes
}

func (c *txCost) add(db *bolt.DB, before bolt.Stats, entries int, busy time.Duration) {
	after := db.Stats()
	d := after.TxStats.Sub(&before.TxStats)
	c.entries += entries
	c.busy += busy
	c.spill += d.GetSpillTime() + d.GetRebalanceTime()
	c.write += d.GetWriteTime()
	c.alloc += d.GetPageAlloc()
}

func (c txCost) report(b *testing.B, side string) {
	per := func(d time.Duration) float64 { return float64(d) / 1e3 / float64(c.entries) }
	b.ReportMetric(per(c.spill), side+"_spill_us/entry")
	b.ReportMetric(per(c.write), side+"_write_us/entry")
	b.ReportMetric(per(c.busy-c.spill-c.write), side+"_other_us/entry")
	b.ReportMetric(float64(c.alloc)/float64(c.entries), side+"_pages_B/entry")
}

// ---------------------------------------------------------------------------
// 1. Durable ingest, one caller, batch of n entries per call.

// BenchmarkIngestRatio compares Store.Append of batches of n entries with the
// reference loop committing batches of n stored records (one db.Update per
// batch, one Put per entry), in alternating chunks of the same length.
// ratio = store entries/s ÷ reference entries/s within one pair.
func BenchmarkIngestRatio(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		for _, ids := range []string{"seq", "random"} {
			b.Run(fmt.Sprintf("batch=%d/ids=%s", n, ids), func(b *testing.B) {
				benchIngestRatio(b, n, ids == "random")
			})
		}
	}
}

func benchIngestRatio(b *testing.B, n int, random bool) {
	cfg := reference.LoadConfig(b)
	ctx := context.Background()
	dir := b.TempDir()
	s := openBenchStore(b, dir)
	gen := newEntryGen(random, uint64(n))
	vals := seedAndSample(b, s, gen, 4096)
	ref := openReference(b, dir, reference.Options{})

	refBatch := make([][]byte, n)
	var vi int
	var storeCost, refCost txCost
	measured := false
	refChunk := func() float64 {
		var busy time.Duration
		var entries int
		before := ref.DB().Stats()
		defer func() {
			if measured {
				refCost.add(ref.DB(), before, entries, busy)
			}
		}()
		for busy < cfg.Chunk {
			for i := range refBatch {
				refBatch[i] = vals[vi%len(vals)]
				vi++
			}
			t0 := time.Now()
			if err := ref.Update(refBatch); err != nil {
				b.Fatalf("reference: %v", err)
			}
			busy += time.Since(t0)
			entries += n
		}
		return float64(entries) / busy.Seconds()
	}
	// Only the Append calls are timed: making the inputs is the caller's work.
	storeChunk := func() float64 {
		var busy time.Duration
		var entries int
		before := s.db.Stats()
		defer func() {
			if measured {
				storeCost.add(s.db, before, entries, busy)
			}
		}()
		for busy < cfg.Chunk {
			in := gen.batch(n)
			t0 := time.Now()
			res, err := s.Append(ctx, benchLedgerID, TopicFunds, in)
			busy += time.Since(t0)
			if err != nil || res.Appended != n {
				b.Fatalf("append: %v (%v)", err, res)
			}
			entries += n
		}
		return float64(entries) / busy.Seconds()
	}

	var ratios, storeRates, refRates []float64
	b.ResetTimer()
	for i := 0; i <= cfg.Pairs; i++ {
		measured = i > 0
		r := refChunk()
		st := storeChunk()
		if i == 0 {
			continue // warm-up pair
		}
		ratios = append(ratios, st/r)
		storeRates = append(storeRates, st)
		refRates = append(refRates, r)
	}
	b.StopTimer()
	reference.ReportRatios(b, ratios)
	b.ReportMetric(reference.Quantile(storeRates, 0.5), "store_entries/s")
	b.ReportMetric(reference.Quantile(refRates, 0.5), "ref_entries/s")
	b.ReportMetric(meanLen(vals), "entry_bytes")
	storeCost.report(b, "store")
	refCost.report(b, "ref")
}

// ---------------------------------------------------------------------------
// 2. 64 concurrent callers, one entry per call.

const benchCallers = 64

// BenchmarkConcurrentRatio compares 64 goroutines each appending one entry
// per Store.Append call with 64 goroutines each writing one record per
// db.Batch call (MaxBatchSize 64, MaxBatchDelay left at bbolt's 10 ms: 64
// callers fill a batch at once, so the delay only runs out on stragglers).
// Each round is three chunks: db.Batch reference, store, and a single caller
// committing one record per db.Update (batch-1 reference), whose call latency
// is the p99 the store's per-call p99 is held to.
func BenchmarkConcurrentRatio(b *testing.B) {
	b.Run(fmt.Sprintf("callers=%d", benchCallers), benchConcurrentRatio)
}

func benchConcurrentRatio(b *testing.B) {
	cfg := reference.LoadConfig(b)
	ctx := context.Background()
	dir := b.TempDir()
	s := openBenchStore(b, dir)
	gen := newEntryGen(false, 64)
	vals := seedAndSample(b, s, gen, 4096)
	ref := openReference(b, dir, reference.Options{MaxBatchSize: benchCallers})

	var vi atomic.Uint64
	nextVal := func() []byte { return vals[vi.Add(1)%uint64(len(vals))] }

	// run starts benchCallers goroutines calling call until the chunk ends
	// and returns entries/s and every call's latency.
	run := func(call func() error) (float64, []time.Duration) {
		var wg sync.WaitGroup
		lats := make([][]time.Duration, benchCallers)
		start := time.Now()
		deadline := start.Add(cfg.Chunk)
		for g := range benchCallers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					t0 := time.Now()
					if !t0.Before(deadline) {
						return
					}
					if err := call(); err != nil {
						b.Errorf("call: %v", err)
						return
					}
					lats[g] = append(lats[g], time.Since(t0))
				}
			}()
		}
		wg.Wait()
		all := slices.Concat(lats...)
		return float64(len(all)) / time.Since(start).Seconds(), all
	}

	refBatchChunk := func() (float64, []time.Duration) {
		return run(func() error { return ref.Batch(nextVal()) })
	}
	// The inputs are made before the chunk: 64 goroutines making them inside
	// it would take CPU from the writer that the reference does not pay.
	var gmu sync.Mutex
	poolSize := 50_000
	storeChunk := func() (float64, []time.Duration) {
		pool := gen.batch(poolSize)
		var pi atomic.Int64
		rate, lats := run(func() error {
			var in []EntryInput
			if i := pi.Add(1) - 1; i < int64(len(pool)) {
				in = pool[i : i+1 : i+1]
			} else {
				gmu.Lock()
				in = []EntryInput{gen.next()}
				gmu.Unlock()
			}
			res, err := s.Append(ctx, benchLedgerID, TopicFunds, in)
			if err == nil && res.Appended != 1 {
				err = fmt.Errorf("appended %d", res.Appended)
			}
			return err
		})
		poolSize = max(poolSize, int(rate*cfg.Chunk.Seconds()*1.5))
		return rate, lats
	}
	ref1Chunk := func() (float64, []time.Duration) {
		var lats []time.Duration
		var busy time.Duration
		one := make([][]byte, 1)
		for busy < cfg.Chunk {
			one[0] = nextVal()
			t0 := time.Now()
			if err := ref.Update(one); err != nil {
				b.Fatalf("reference: %v", err)
			}
			d := time.Since(t0)
			busy += d
			lats = append(lats, d)
		}
		return float64(len(lats)) / busy.Seconds(), lats
	}

	var ratios, storeRates, refRates, ref1Rates, excess []float64
	var storeLats, refLats, ref1Lats []time.Duration
	b.ResetTimer()
	for i := 0; i <= cfg.Pairs; i++ {
		r, rl := refBatchChunk()
		st, sl := storeChunk()
		r1, r1l := ref1Chunk()
		if i == 0 {
			continue // warm-up round
		}
		ratios = append(ratios, st/r)
		storeRates, refRates, ref1Rates = append(storeRates, st), append(refRates, r), append(ref1Rates, r1)
		excess = append(excess, durQuantileMs(sl, 0.99)-durQuantileMs(r1l, 0.99))
		storeLats, refLats, ref1Lats = append(storeLats, sl...), append(refLats, rl...), append(ref1Lats, r1l...)
	}
	b.StopTimer()
	reference.ReportRatios(b, ratios)
	b.ReportMetric(reference.Quantile(storeRates, 0.5), "store_entries/s")
	b.ReportMetric(reference.Quantile(refRates, 0.5), "ref_entries/s")
	b.ReportMetric(reference.Quantile(ref1Rates, 0.5), "ref_batch1_entries/s")
	b.ReportMetric(durQuantileMs(storeLats, 0.5), "p50_store_ms")
	b.ReportMetric(durQuantileMs(storeLats, 0.99), "p99_store_ms")
	b.ReportMetric(durQuantileMs(refLats, 0.99), "p99_ref_batch64_ms")
	b.ReportMetric(durQuantileMs(ref1Lats, 0.5), "p50_ref_batch1_ms")
	b.ReportMetric(durQuantileMs(ref1Lats, 0.99), "p99_ref_batch1_ms")
	b.ReportMetric(reference.Quantile(excess, 0.5), "p99_excess_ms")
}

// ---------------------------------------------------------------------------
// 3. Memory over a long ingest.

// BenchmarkIngestMemory appends entries in batches of 1000 into one store
// and samples the Go heap and the process RSS ten times along the way; the
// series is logged. 1 M entries always; 10 M with LEDGERFEED_BENCH_10M=1.
//
// VmRSS includes the pages of bbolt's file mmap that the ingest touched
// (RssFile): it grows with the file and drops whenever bbolt remaps it.
// RssAnon and the heap are the process's own memory and should stay flat.
func BenchmarkIngestMemory(b *testing.B) {
	b.Run("entries=1M", func(b *testing.B) { benchIngestMemory(b, 1_000_000) })
	b.Run("entries=10M", func(b *testing.B) {
		if os.Getenv("LEDGERFEED_BENCH_10M") != "1" {
			b.Skip("set LEDGERFEED_BENCH_10M=1 to run")
		}
		benchIngestMemory(b, 10_000_000)
	})
}

type memSample struct {
	entries                       int
	elapsed                       time.Duration
	heapInuse, heapLive           uint64 // heapLive: HeapAlloc right after a GC
	rss, rssAnon, rssFile, dbSize uint64
}

func readProcStatus(tb testing.TB) (rss, anon, file uint64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Logf("no /proc/self/status: %v", err)
		return 0, 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) != 2 || fs[1] != "kB" {
			continue
		}
		kb, _ := strconv.ParseUint(fs[0], 10, 64)
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "RssAnon":
			anon = kb << 10
		case "RssFile":
			file = kb << 10
		}
	}
	return rss, anon, file
}

func benchIngestMemory(b *testing.B, total int) {
	const batch = 1000
	every := total / 10
	ctx := context.Background()
	dir := b.TempDir()
	s := openBenchStore(b, dir)
	gen := newEntryGen(false, 10)
	dbPath := filepath.Join(dir, "store", DataFileName)

	sample := func(entries int, elapsed time.Duration) memSample {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		m := memSample{entries: entries, elapsed: elapsed, heapInuse: ms.HeapInuse}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		m.heapLive = ms.HeapAlloc
		m.rss, m.rssAnon, m.rssFile = readProcStatus(b)
		if st, err := os.Stat(dbPath); err == nil {
			m.dbSize = uint64(st.Size())
		}
		return m
	}
	var series []memSample
	b.ResetTimer()
	start := time.Now()
	var paused time.Duration
	for done := 0; done < total; {
		in := gen.batch(batch)
		if _, err := s.Append(ctx, benchLedgerID, TopicFunds, in); err != nil {
			b.Fatalf("append after %d: %v", done, err)
		}
		done += batch
		if done%every == 0 {
			t0 := time.Now()
			series = append(series, sample(done, t0.Sub(start)-paused))
			paused += time.Since(t0)
		}
	}
	b.StopTimer()
	if path := os.Getenv("LEDGERFEED_BENCH_HEAPPROFILE"); path != "" {
		// The live heap with the store still open: what the growth is.
		runtime.GC()
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}

	// One line per quantity, one column per sample: benchmark logs are cut
	// after 10 lines.
	const mb = 1 << 20
	row := func(label string, f func(m memSample) string) {
		var sb strings.Builder
		for _, m := range series {
			fmt.Fprintf(&sb, " %7s", f(m))
		}
		b.Logf("%-14s%s", label, sb.String())
	}
	inMB := func(v uint64) string { return strconv.FormatFloat(float64(v)/mb, 'f', 1, 64) }
	row("entries (M)", func(m memSample) string { return strconv.FormatFloat(float64(m.entries)/1e6, 'f', 1, 64) })
	row("elapsed (s)", func(m memSample) string { return strconv.Itoa(int(m.elapsed.Seconds())) })
	row("heapInuse MB", func(m memSample) string { return inMB(m.heapInuse) })
	row("heapLive MB", func(m memSample) string { return inMB(m.heapLive) })
	row("VmRSS MB", func(m memSample) string { return inMB(m.rss) })
	row("RssAnon MB", func(m memSample) string { return inMB(m.rssAnon) })
	row("RssFile MB", func(m memSample) string { return inMB(m.rssFile) })
	row("db file MB", func(m memSample) string { return strconv.Itoa(int(m.dbSize / mb)) })
	first, last := series[0], series[len(series)-1]
	var maxInuse uint64
	for _, m := range series {
		maxInuse = max(maxInuse, m.heapInuse)
	}
	b.ReportMetric(float64(total)/last.elapsed.Seconds(), "entries/s")
	b.ReportMetric(float64(first.heapInuse)/mb, "heap_inuse_first_MB")
	b.ReportMetric(float64(last.heapInuse)/mb, "heap_inuse_last_MB")
	b.ReportMetric(float64(maxInuse)/mb, "heap_inuse_max_MB")
	b.ReportMetric(float64(last.heapLive)/mb, "heap_live_last_MB")
	b.ReportMetric(float64(first.rss)/mb, "rss_first_MB")
	b.ReportMetric(float64(last.rss)/mb, "rss_last_MB")
	b.ReportMetric(float64(first.rssAnon)/mb, "rss_anon_first_MB")
	b.ReportMetric(float64(last.rssAnon)/mb, "rss_anon_last_MB")
	b.ReportMetric(float64(last.dbSize)/mb, "db_MB")
}
