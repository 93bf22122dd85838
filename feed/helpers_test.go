package feed

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// openTestStore opens a store in a fresh temp dir, closed at cleanup.
func openTestStore(tb testing.TB) *ledger.Store {
	tb.Helper()
	s, err := ledger.Open(filepath.Join(tb.TempDir(), "data"), ledger.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func mustPutLedger(tb testing.TB, s *ledger.Store, id string) {
	tb.Helper()
	if _, _, err := s.PutLedger(context.Background(), ledger.Ledger{ID: id, Currency: "NOK", TimeZone: "UTC"}); err != nil {
		tb.Fatalf("put ledger %s: %v", id, err)
	}
}

func mustDate(tb testing.TB, s string) ledger.Date {
	tb.Helper()
	d, err := ledger.ParseDate(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// mustAppend appends n captures of 100 on date d (YYYY-MM-DD).
func mustAppend(tb testing.TB, s *ledger.Store, id string, topic ledger.Topic, d string, n int) {
	tb.Helper()
	day := mustDate(tb, d)
	in := make([]ledger.EntryInput, n)
	for i := range in {
		seq := time.Now().UnixNano()
		in[i] = ledger.EntryInput{
			EntryID: fmt.Sprintf("e-%d-%d", seq, i), PSPReference: fmt.Sprint(seq + int64(i)),
			Time:       time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC).AddDate(0, 0, int(day-mustDate(tb, "2024-01-01"))),
			LedgerDate: day, EntryType: "capture", Amount: 100,
		}
	}
	if _, err := s.Append(context.Background(), id, topic, in); err != nil {
		tb.Fatalf("append %s %s: %v", id, d, err)
	}
}
