package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// BenchmarkSync measures "ledgerfeed sync --once" over loopback against a
// real "ledgerfeed serve": a fresh mirror of one ledger of
// LEDGERFEED_BENCH_SYNC_ENTRIES entries (default 1,000,000; 80 % funds,
// 20 % fees, 10,000 a date), written to CSV files with every balance and
// every closed date's seal checked; sub-benchmarks "rest" (the feeds as
// JSON) and "grpc" (sync --grpc). The server's per-client rate limit is
// off (at its default, 50 calls/s, the sync would wait for it at 50,000
// entries/s). Reports entries/s.
func BenchmarkSync(b *testing.B) {
	total := 1_000_000
	if s := os.Getenv("LEDGERFEED_BENCH_SYNC_ENTRIES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("LEDGERFEED_BENCH_SYNC_ENTRIES=%q", s)
		}
		total = n
	}
	dir := b.TempDir()
	secret := benchSeed(b, dir, total)

	ctx, cancel := context.WithCancel(context.Background())
	out := newAddrWatcher()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", dir, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
			"--rate-limit=-1", "--token-rate-limit=-1"}, out, io.Discard)
	}()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-out.ready:
	case err := <-done:
		b.Fatalf("serve: %v", err)
	}
	httpAddr, grpcAddr := out.addrs()

	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"rest", nil},
		{"grpc", []string{"--grpc", grpcAddr}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			start := time.Now()
			for i := range b.N {
				mirror := filepath.Join(b.TempDir(), fmt.Sprint("mirror", i))
				var stderr strings.Builder
				args := append([]string{"sync", "--once", "--url", "http://" + httpAddr, "--client-id", "partner",
					"--client-secret", secret, "--dir", mirror}, tc.extra...)
				if err := run(context.Background(), args, io.Discard, &stderr); err != nil {
					b.Fatalf("sync: %v\n%s", err, stderr.String())
				}
				if !strings.Contains(stderr.String(), fmt.Sprintf("%d new entries written", total)) || !strings.Contains(stderr.String(), "sealed dates") {
					b.Fatalf("sync did not write and verify everything:\n%s", stderr.String())
				}
			}
			b.ReportMetric(float64(total*b.N)/time.Since(start).Seconds(), "entries/s")
		})
	}
}

// benchSeed makes ledger 302321 with total entries in a new store in dir,
// every date but the last closed, and a read client "partner"; it returns
// partner's secret.
func benchSeed(b *testing.B, dir string, total int) string {
	b.Helper()
	ctx := context.Background()
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	a, err := auth.New(st, auth.Config{DataDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	if _, _, err := st.PutLedger(ctx, ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo",
		PayoutBankAccount: ledger.Account{Scheme: "BBAN:NO", ID: "12345678903"},
		Owner:             ledger.Account{Scheme: "business:NO:ORG", ID: "987654321"}}); err != nil {
		b.Fatal(err)
	}
	const perDate = 10000
	days := (total + perDate - 1) / perDate
	first := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -days-1)
	h := "NO:123455"
	start := time.Now()
	for d := 0; d*perDate < total; d++ {
		day := first.AddDate(0, 0, d).Add(9 * time.Hour)
		date, _ := ledger.ParseDate(day.Format("2006-01-02"))
		n := min(perDate, total-d*perDate)
		var funds, fees []ledger.EntryInput
		for i := range n {
			in := ledger.EntryInput{EntryID: fmt.Sprintf("%d-%d", d, i), PSPReference: strconv.Itoa(10_000_000 + d*perDate + i),
				Time: day.Add(time.Duration(i) * time.Second), LedgerDate: date, EntryType: "capture",
				Reference: fmt.Sprintf("order-%d-%d", d, i), Amount: int64(100 + i%5000), RecipientHandle: &h}
			if i%5 == 4 {
				in.EntryType, in.Amount = "capture-fee", -int64(2+i%7)
				fees = append(fees, in)
			} else {
				funds = append(funds, in)
			}
		}
		for _, batch := range []struct {
			topic ledger.Topic
			in    []ledger.EntryInput
		}{{ledger.TopicFunds, funds}, {ledger.TopicFees, fees}} {
			for len(batch.in) > 0 {
				k := min(len(batch.in), 5000)
				if _, err := st.Append(ctx, "302321", batch.topic, batch.in[:k]); err != nil {
					b.Fatal(err)
				}
				batch.in = batch.in[k:]
			}
		}
	}
	b.Logf("seeded %d entries over %d dates in %s", total, days, time.Since(start).Round(time.Millisecond))
	_, secret, err := a.CreateClient(ctx, "partner", []string{ledger.ScopeRead}, []ledger.Grant{{LedgerID: "302321"}})
	if err != nil {
		b.Fatal(err)
	}
	return secret
}
