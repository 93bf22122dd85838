package reference

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Config is the measuring protocol of BENCHMARKING.md shared by every ratio
// benchmark: after one warm-up pair, Pairs pairs of (reference, project)
// chunks of Chunk each.
//
//	LEDGERFEED_BENCH_PAIRS  measured pairs per run (default 3)
//	LEDGERFEED_BENCH_CHUNK  length of one chunk, a Go duration (default 1s)
type Config struct {
	Pairs int
	Chunk time.Duration
}

// LoadConfig reads the Config from the environment.
func LoadConfig(tb testing.TB) Config {
	c := Config{Pairs: 3, Chunk: time.Second}
	if v := os.Getenv("LEDGERFEED_BENCH_PAIRS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			tb.Fatalf("LEDGERFEED_BENCH_PAIRS=%q: want a positive integer", v)
		}
		c.Pairs = n
	}
	if v := os.Getenv("LEDGERFEED_BENCH_CHUNK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			tb.Fatalf("LEDGERFEED_BENCH_CHUNK=%q: want a positive duration", v)
		}
		c.Chunk = d
	}
	return c
}

// Quantile returns the q-quantile of xs (sorted in place), nearest rank.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(q*float64(len(xs))+0.5) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// ReportRatios reports the median, min and max of the per-pair ratios.
func ReportRatios(b *testing.B, ratios []float64) {
	b.ReportMetric(Quantile(ratios, 0.5), "ratio_median")
	b.ReportMetric(slices.Min(ratios), "ratio_min")
	b.ReportMetric(slices.Max(ratios), "ratio_max")
}
