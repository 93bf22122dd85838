package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// BenchmarkMigrateStore copies a bbolt store of LEDGERFEED_BENCH_MIGRATE
// entries (default 1,000,000: two ledgers, both topics, a third of the
// funds entries with GDPR fields) into PostgreSQL with migrate-store and
// reports the copy's and the whole run's (source verify, copy, target
// verify) entries per second.
//
//	go test -run '^$' -bench BenchmarkMigrateStore -benchtime=1x ./cmd/ledgerfeed
func BenchmarkMigrateStore(b *testing.B) {
	total := 1_000_000
	if v := os.Getenv("LEDGERFEED_BENCH_MIGRATE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 4000 {
			b.Fatalf("LEDGERFEED_BENCH_MIGRATE=%q: want a number ≥ 4000", v)
		}
		total = n
	}
	ctx := context.Background()
	dir := b.TempDir()
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	base := time.Date(2026, 1, 1, 6, 0, 0, 0, time.UTC)
	per := total / 4 // per ledger and topic
	for li, id := range []string{"400001", "400002"} {
		if _, _, err := st.PutLedger(ctx, ledger.Ledger{ID: id, Currency: "NOK", TimeZone: "Europe/Oslo"}); err != nil {
			b.Fatal(err)
		}
		for _, topic := range ledger.Topics {
			for i := 0; i < per; i += 1000 {
				batch := make([]ledger.EntryInput, 0, 1000)
				for j := i; j < min(i+1000, per); j++ {
					in := ledger.EntryInput{
						EntryID: fmt.Sprintf("%s-%d", topic, j), PSPReference: fmt.Sprintf("psp-%d-%d", li, j),
						Time: base.Add(time.Duration(j) * 20 * time.Second), EntryType: "capture",
						Reference: fmt.Sprintf("order-%d", j/3), Amount: int64(100 + j%1000),
					}
					if topic == ledger.TopicFees {
						in.EntryType, in.Amount = "capture-fee", -int64(1+j%10)
					} else if j%3 == 0 {
						in.Name, in.PhoneNumber, in.Message = "Kari Nordmann", "+4791234567", "thanks"
					}
					batch = append(batch, in)
				}
				if _, err := st.Append(ctx, id, topic, batch); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d entries in %s", 4*per, time.Since(start).Round(time.Millisecond))

	rate := regexp.MustCompile(`copy [^,]+, (\d+) entries/s`)
	b.ResetTimer()
	for range b.N {
		dsn := pgtest.Start(b)
		var stdout, stderr bytes.Buffer
		t0 := time.Now()
		if err := run(ctx, []string{"migrate-store", "--from", "bolt:" + dir, "--to", dsn}, &stdout, &stderr); err != nil {
			b.Fatalf("migrate-store: %v\n%s%s", err, stdout.String(), stderr.String())
		}
		took := time.Since(t0)
		b.Logf("migrate-store (%s in all):\n%s", took.Round(time.Millisecond), regexp.MustCompile(`(?m)^  (entries|took) .*$`).FindAllString(stdout.String(), -1))
		if m := rate.FindStringSubmatch(stdout.String()); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			b.ReportMetric(v, "copy-entries/s")
		}
		b.ReportMetric(float64(4*per)/took.Seconds(), "entries/s")
	}
}
