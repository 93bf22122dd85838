package pgstore_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/pgstore"
	"github.com/ledgerfeed/ledgerfeed/ledger/storetest"
)

// TestConformance runs the store conformance suite (package storetest) on
// the PostgreSQL store, each test on a fresh schema of one database of
// pgtest's server (a schema costs milliseconds, a database about a second).
// The crash test stops that server without a checkpoint (pgtest.Crash)
// under the appending writers and starts it again.
func TestConformance(t *testing.T) {
	dsn := pgtest.Start(t)
	var schemas atomic.Int64
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) storetest.Storage {
			return pgStorage{dsn: newSchema(t, dsn, fmt.Sprintf("conformance_%d", schemas.Add(1)))}
		},
		ModelSteps:  1000,
		CrashCycles: 3,

		MicrosecondTimes: true,
	})
}

// newSchema creates schema name in the database at dsn, drops it when t
// ends, and returns dsn with the schema as its search path: a store opened
// there keeps its tables in it.
func newSchema(t *testing.T, dsn, name string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// pgStorage is a PostgreSQL schema.
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
