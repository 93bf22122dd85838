// Package storetest is the store conformance suite: the tests every
// implementation of ledger.Backend must pass, run by each store's own tests
// through a Harness (ledger/conformance_test.go for bbolt,
// ledger/pgstore/conformance_test.go for PostgreSQL).
//
// The suite checks the store as its callers see it, through the interfaces
// of ledger/backend.go only: a model-based test (random operations checked
// against an in-memory model after every step), the crash test (acknowledged
// batches survive exactly once, retries of unacknowledged ones do not
// duplicate), the date tables (zone, cutoff and daylight-saving cases) and
// the concurrency tests (concurrent writers leave gapless, chained logs with
// every entry once; readers never see a gap), and the basic tests of
// appends, ledgers, clients, the audit log, records, seals and the
// manifest. Tests of one store's insides (file corruption, byte layout, SQL
// plans) stay with that store.
//
// Environment knobs: LEDGERFEED_MODEL_SEED and LEDGERFEED_CRASH_SEED rerun
// a failed model or crash run, LEDGERFEED_MODEL_STEPS sets a model run's
// length, LEDGERFEED_SOAK=1 makes the model and crash runs ten times
// longer; -short skips the crash test.
package storetest

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Options are the settings the suite opens a store with.
type Options struct {
	// Now is the store's clock; nil means time.Now.
	Now func() time.Time
	// Grace is how long after its end a date closes by itself; 0 means the
	// stores' default, 1 h.
	Grace time.Duration
}

// Harness is how the suite gets stores of one kind.
type Harness struct {
	// New creates new, empty storage for one test.
	New func(t *testing.T) Storage
	// ModelSteps is the length of a model run (LEDGERFEED_MODEL_STEPS
	// overrides it; ×10 under LEDGERFEED_SOAK=1).
	ModelSteps int
	// CrashCycles is how many times the crash test crashes the store (×10
	// under LEDGERFEED_SOAK=1); 0 skips the crash test.
	CrashCycles int

	// Known, documented differences between the stores, which the suite
	// allows for where its flag is set.

	// MicrosecondTimes: the store keeps a ledger's CreatedAt and UpdatedAt
	// to the microsecond (PostgreSQL's timestamp), not to the nanosecond of
	// the clock. (They are not on the wire; entry times are microseconds in
	// every store.)
	MicrosecondTimes bool
}

// Storage is one store's durable state, which the suite opens, closes,
// opens again and crashes.
type Storage interface {
	// Open opens the store with opts and registers its Close at t's
	// cleanup (so Close must be safe to call twice).
	Open(t testing.TB, opts Options) ledger.Backend
	// Crash runs CrashWriters against the store (opened with CrashNow as
	// its clock) from batch plan.First on, and crashes the store under them
	// as plan says, the hardest way the store can die: the process holding
	// a bbolt file killed (KillChild), the PostgreSQL server stopped without
	// a checkpoint. It returns once nothing of the crashed run can write
	// any more, with what the writers reported, and fails t on a report that
	// only a bug explains (a "fail" line; an "error" before the crash). The
	// storage can then be opened again.
	Crash(t *testing.T, plan CrashPlan) CrashReport
}

// Run runs the whole suite against the stores h makes.
func Run(t *testing.T, h Harness) {
	t.Run("Store", func(t *testing.T) {
		t.Run("AppendAndRead", func(t *testing.T) { testAppendAndRead(t, h) })
		t.Run("AppendErrInvalid", func(t *testing.T) { testAppendErrInvalid(t, h) })
		t.Run("PutLedger", func(t *testing.T) { testPutLedger(t, h) })
		t.Run("WaitAppend", func(t *testing.T) { testWaitAppend(t, h) })
	})
	t.Run("Clients", func(t *testing.T) { testClients(t, h) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, h) })
	t.Run("Records", func(t *testing.T) {
		t.Run("PutGetScanDelete", func(t *testing.T) { testRecordsPutGetScanDelete(t, h) })
		t.Run("ErrorChangesNothing", func(t *testing.T) { testUpdateRecordsErrorChangesNothing(t, h) })
		t.Run("ErrInvalid", func(t *testing.T) { testRecordsErrInvalid(t, h) })
	})
	t.Run("Seals", func(t *testing.T) {
		t.Run("Manifest", func(t *testing.T) { testManifest(t, h) })
		t.Run("ManifestRange", func(t *testing.T) { testManifestRange(t, h) })
		t.Run("PutSeals", func(t *testing.T) { testPutSeals(t, h) })
		t.Run("ManifestGDPRErasure", func(t *testing.T) { testManifestGDPRErasure(t, h) })
	})
	t.Run("Model", func(t *testing.T) { testModel(t, h) })
	t.Run("Dates", func(t *testing.T) {
		t.Run("CutoffInstant", func(t *testing.T) { testCutoffInstant(t, h) })
		t.Run("CloseDue", func(t *testing.T) { testCloseDue(t, h) })
		t.Run("DatesAndPayout", func(t *testing.T) { testDatesAndPayout(t, h) })
		t.Run("ClosedAt", func(t *testing.T) { testClosedAt(t, h) })
	})
	t.Run("ConcurrentAppend", func(t *testing.T) { testConcurrentAppend(t, h) })
	t.Run("Crash", func(t *testing.T) { testCrash(t, h) })
}

// soak reports whether the long runs are asked for (make soak).
func soak() bool { return os.Getenv("LEDGERFEED_SOAK") == "1" }

// envInt returns the integer in environment variable name, or def.
func envInt(t testing.TB, name string, def int64) int64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// Clock is a settable clock for stores under test, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openAt opens a new store whose clock starts at now.
func openAt(t *testing.T, h Harness, now time.Time) (ledger.Backend, *Clock) {
	c := NewClock(now)
	return h.New(t).Open(t, Options{Now: c.Now}), c
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func strp(s string) *string { return &s }

func mustPutLedger(tb testing.TB, s ledger.Ledgers, id, currency, zone, cutoff string) {
	tb.Helper()
	if _, _, err := s.PutLedger(context.Background(), ledger.Ledger{ID: id, Currency: currency, TimeZone: zone, Cutoff: cutoff}); err != nil {
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
