package report

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// benchStore is a store with one NOK ledger of n funds entries over 30
// closed dates, made once per size.
var benchStores sync.Map // n → *benchStore

type benchStore struct {
	once sync.Once
	st   *ledger.Store
	dir  string
	err  error
}

func seedBench(b *testing.B, n int) (*ledger.Store, string) {
	v, _ := benchStores.LoadOrStore(n, &benchStore{})
	bs := v.(*benchStore)
	bs.once.Do(func() {
		// Not b.TempDir: the store outlives this benchmark's sub-runs.
		dir, err := mkdirTemp()
		if err != nil {
			bs.err = err
			return
		}
		bs.dir = dir
		st, err := ledger.Open(filepath.Join(dir, "data"), ledger.Options{})
		if err != nil {
			bs.err = err
			return
		}
		bs.st = st
		ctx := context.Background()
		if _, _, err := st.PutLedger(ctx, ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "UTC"}); err != nil {
			bs.err = err
			return
		}
		handle := "api:123456"
		const days = 30
		batch := make([]ledger.EntryInput, 0, 10000)
		for i := range n {
			d := day0 + ledger.Date(i*days/n)
			y, m, dd := d.Civil()
			batch = append(batch, ledger.EntryInput{
				EntryID: fmt.Sprintf("e%d", i), PSPReference: fmt.Sprintf("psp-%d", i),
				Time: time.Date(y, m, dd, 12, 0, 0, 0, time.UTC).Add(time.Duration(i%40000) * time.Millisecond), LedgerDate: d,
				EntryType: "capture", Reference: fmt.Sprintf("order-%d", i), Amount: int64(i%100000 + 1), RecipientHandle: &handle,
			})
			if len(batch) == cap(batch) || i == n-1 {
				if _, err := st.Append(ctx, "302321", ledger.TopicFunds, batch); err != nil {
					bs.err = err
					return
				}
				batch = batch[:0]
			}
		}
		_, bs.err = st.CloseDate(ctx, "302321", day0+days-1)
	})
	if bs.err != nil {
		b.Fatal(bs.err)
	}
	return bs.st, bs.dir
}

func mkdirTemp() (string, error) {
	return filepathTemp("ledgerfeed-report-bench-")
}

// benchWrite writes the whole range of an n-entry ledger as format and
// reports rows/s and the peak heap in use while writing.
func benchWrite(b *testing.B, format string, n int) {
	st, dir := seedBench(b, n)
	s, err := New(Config{Store: st, Dir: filepath.Join(dir, "reports-"+format)})
	if err != nil {
		b.Fatal(err)
	}
	f := &File{ID: newID(), ClientID: "bench", Type: TypeEntries, LedgerID: "302321", Topics: []ledger.Topic{ledger.TopicFunds},
		From: day0, To: day0 + 29, Format: format, Language: LangEN}
	l, err := st.GetLedger("302321")
	if err != nil {
		b.Fatal(err)
	}
	// Peak of the live heap (as marked by each GC) and of the heap in use
	// (live and garbage) while writing, above what was live before.
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	baseLive := sample[0].Value.Uint64()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak, peakLive atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				peak.Store(max(peak.Load(), ms.HeapInuse))
				metrics.Read(s)
				peakLive.Store(max(peakLive.Load(), s[0].Value.Uint64()))
			}
		}
	})
	var rows int64
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for b.Loop() {
		tmp, err := filepathCreate(s.cfg.Dir, f.diskName())
		if err != nil {
			b.Fatal(err)
		}
		rows, err = s.writeTo(context.Background(), f, l, 2, tmp)
		tmp.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	close(stop)
	wg.Wait()
	if rows != int64(n) {
		b.Fatalf("%d rows, want %d", rows, n)
	}
	b.ReportMetric(float64(rows)*float64(b.N)/elapsed.Seconds(), "rows/s")
	// On a shared machine wall time varies with the neighbours' load; the
	// process's CPU time (all threads, GC included) much less.
	b.ReportMetric(float64(rows)*float64(b.N)/cpu.Seconds(), "rows/cpu-s")
	b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapInuse))/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(peakLive.Load()-min(peakLive.Load(), baseLive))/(1<<20), "peak-live-MB")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkReportCSV(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) { benchWrite(b, FormatCSV, n) })
	}
}

func BenchmarkReportXLSX(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) { benchWrite(b, FormatXLSX, n) })
	}
}

func filepathTemp(prefix string) (string, error) { return os.MkdirTemp("", prefix) }

func filepathCreate(dir, name string) (*os.File, error) { return os.Create(filepath.Join(dir, name)) }

// TestMain removes the benchmark stores.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	benchStores.Range(func(_, v any) bool {
		bs := v.(*benchStore)
		if bs.st != nil {
			bs.st.Close()
		}
		if bs.dir != "" {
			os.RemoveAll(bs.dir)
		}
		return true
	})
	os.Exit(code)
}
