package ledger_test

import (
	"path/filepath"
	"testing"

	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/storetest"
)

// TestConformance runs the store conformance suite (package storetest) on
// the bbolt store. The crash test kills a child process appending to it
// (TestConformance_CrashChild) with SIGKILL.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New:         func(t *testing.T) storetest.Storage { return boltStorage{dir: filepath.Join(t.TempDir(), "data")} },
		ModelSteps:  2000,
		CrashCycles: 12,
	})
}

// TestConformance_CrashChild is the child process of the suite's crash
// test; run on its own it skips.
func TestConformance_CrashChild(t *testing.T) {
	storetest.CrashChild(t, func(dir string) (ledger.Backend, error) {
		return ledger.Open(dir, ledger.Options{Now: storetest.CrashNow})
	})
}

// boltStorage is a bbolt store's data directory.
type boltStorage struct{ dir string }

func (b boltStorage) Open(t testing.TB, o storetest.Options) ledger.Backend {
	t.Helper()
	s, err := ledger.Open(b.dir, ledger.Options{Now: o.Now, Grace: o.Grace})
	if err != nil {
		t.Fatalf("open bolt store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (b boltStorage) Crash(t *testing.T, plan storetest.CrashPlan) storetest.CrashReport {
	return storetest.KillChild(t, "TestConformance_CrashChild", b.dir, plan)
}
