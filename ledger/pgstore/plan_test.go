package pgstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// TestStore_AnalyzesAsLogsGrow: once a store has appended 1000 entries it
// has the tables analyzed, so that reference lookups and the duplicate
// check probe their indexes instead of scanning the log (without
// statistics PostgreSQL picks a scan of the whole log for both).
func TestStore_AnalyzesAsLogsGrow(t *testing.T) {
	ctx := context.Background()
	s := openPG(t, pgtest.Start(t), Options{})
	if _, _, err := s.PutLedger(ctx, benchLedgerDef()); err != nil {
		t.Fatal(err)
	}
	gen := newBenchGen(9)
	var some ledger.EntryInput
	for range 3 {
		in := gen.batch(500)
		some = in[100]
		if _, err := s.Append(ctx, benchLedger, ledger.TopicFunds, in); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var analyzed bool
		if err := s.Pool().QueryRow(ctx, `SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL
			FROM pg_stat_user_tables WHERE relname = 'entries'`).Scan(&analyzed); err != nil {
			t.Fatal(err)
		}
		if analyzed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("entries not analyzed after 1500 appended entries")
		}
		time.Sleep(50 * time.Millisecond)
	}
	num, _, err := s.fixedLedger(benchLedger)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct{ sql, index string }{
		{fmt.Sprintf(`SELECT seq FROM entries WHERE num = %d AND topic = 1 AND reference = '%s' AND reference <> '' AND seq > 0 ORDER BY seq LIMIT 10`, num, some.Reference), "entries_reference"},
		{fmt.Sprintf(`SELECT seq FROM entries WHERE num = %d AND topic = 1 AND psp_reference = '%s' AND seq > 0 ORDER BY seq LIMIT 10`, num, some.PSPReference), "entries_psp_reference"},
		{fmt.Sprintf(`SELECT topic, seq FROM entry_ids WHERE entry_id = ANY('{%s}'::text[]) AND num = %d`, some.EntryID, num), "entry_ids_pkey"},
	} {
		rows, err := s.Pool().Query(ctx, "EXPLAIN "+q.sql)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		if p := strings.Join(plan, "\n"); !strings.Contains(p, q.index) {
			t.Errorf("%s\nplan does not use %s:\n%s", q.sql, q.index, p)
		}
	}
}
