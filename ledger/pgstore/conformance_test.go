package pgstore_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/pgstore"
	"github.com/ledgerfeed/ledgerfeed/ledger/storetest"
)

// TestConformance runs the store conformance suite (package storetest) on
// the PostgreSQL store, each test on a fresh database of pgtest's server.
// The crash test stops that server without a checkpoint (pgtest.Crash)
// under the appending writers and starts it again.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New:         func(t *testing.T) storetest.Storage { return pgStorage{dsn: pgtest.Start(t)} },
		ModelSteps:  1000,
		CrashCycles: 3,

		MicrosecondTimes: true,
	})
}

// pgStorage is a PostgreSQL database.
type pgStorage struct{ dsn string }

func (p pgStorage) Open(t testing.TB, o storetest.Options) ledger.Backend {
	t.Helper()
	s, err := pgstore.Open(context.Background(), p.dsn, pgstore.Options{Now: o.Now, Grace: o.Grace})
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Crash runs the writers in this process on a store of their own and
// crashes the server under them; an Append that fails before the crash
// fails the test.
func (p pgStorage) Crash(t *testing.T, plan storetest.CrashPlan) storetest.CrashReport {
	t.Helper()
	var log storetest.CrashLog
	var crashing atomic.Bool
	say := func(line string) {
		if strings.HasPrefix(line, "error ") && !crashing.Load() {
			line = "fail before the crash: " + line
		}
		log.Say(line)
	}
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	began := time.Now()
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		s, err := pgstore.Open(context.Background(), p.dsn, pgstore.Options{Now: storetest.CrashNow})
		if err != nil {
			say("error open: " + err.Error())
			return
		}
		defer s.Close()
		say("ready")
		close(ready)
		storetest.CrashWriters(stop, s, plan.First, say)
	}()
	if !plan.FromStart {
		select {
		case <-ready:
			began = time.Now()
		case <-done:
		}
	}
	time.Sleep(plan.Delay - time.Since(began))
	crashing.Store(true)
	pgtest.Crash(t)
	cancel()
	<-done
	rep := log.Report()
	if len(rep.Failure) > 0 {
		t.Fatalf("crash writers: %s", strings.Join(rep.Failure, "\n"))
	}
	return rep
}
