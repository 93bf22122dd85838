package pgstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newClock returns a settable clock reading t, for Options.Now.
func newClock(t time.Time) *storetest.Clock { return storetest.NewClock(t) }

// openPG opens a store on dsn and closes it at cleanup.
func openPG(tb testing.TB, dsn string, opts Options) *Store {
	tb.Helper()
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		tb.Fatalf("open postgres store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// openBolt opens a bbolt store in a temp dir: the reference the PostgreSQL
// store must agree with.
func openBolt(tb testing.TB, opts ledger.Options) *ledger.Store {
	tb.Helper()
	s, err := ledger.Open(filepath.Join(tb.TempDir(), "data"), opts)
	if err != nil {
		tb.Fatalf("open bolt store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustDate(tb testing.TB, s string) ledger.Date {
	tb.Helper()
	d, err := ledger.ParseDate(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func strp(s string) *string { return &s }

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// entryString prints an entry with its pointers followed, for comparisons.
func entryString(e ledger.Entry) string {
	h, g := "<nil>", "<nil>"
	if e.RecipientHandle != nil {
		h = *e.RecipientHandle
	}
	if e.GDPR != nil {
		g = fmt.Sprintf("%+v", *e.GDPR)
	}
	e.RecipientHandle, e.GDPR = nil, nil
	return fmt.Sprintf("%+v handle=%s gdpr=%s", e, h, g)
}
