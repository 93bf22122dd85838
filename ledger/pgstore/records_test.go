package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// recordTx is what both stores' record transactions offer.
type recordTx interface {
	Get(kind ledger.RecordKind, key string) ([]byte, error)
	Scan(kind ledger.RecordKind, prefix string, fn func(key string, value []byte) error) error
	Put(kind ledger.RecordKind, key string, value []byte) error
	Delete(kind ledger.RecordKind, key string) error
}

// TestRecords_SameAsBolt runs one random sequence of record transactions
// (puts, deletes, gets and prefix scans of several kinds, with keys that
// hold NUL and 0xff bytes, empty and missing values, bad kinds and keys,
// and transactions that fail after writing) and of reads outside them
// against the PostgreSQL store and a bbolt store: every answer inside and
// outside the transactions must be the same, and a failed transaction must
// leave nothing behind in either.
func TestRecords_SameAsBolt(t *testing.T) {
	ctx := context.Background()
	pg := openPG(t, pgtest.Start(t), Options{})
	bb := openBolt(t, ledger.Options{})
	rng := newRand(11)
	kinds := []ledger.RecordKind{ledger.RecordReportFiles, ledger.RecordReportSchedules, ledger.RecordDownloadTokens,
		ledger.RecordScheduleRuns, ledger.RecordReportFiles, "nonsense"}
	keyParts := []string{"a", "b", "acme", "\x00", "\xff", "é", "302321"}
	key := func() string {
		switch rng.IntN(20) {
		case 0:
			return ""
		case 1:
			return strings.Repeat("k", 1025)
		}
		var b strings.Builder
		for n := 1 + rng.IntN(3); n > 0; n-- {
			b.WriteString(keyParts[rng.IntN(len(keyParts))])
		}
		return b.String()
	}
	prefix := func() string {
		if rng.IntN(4) == 0 {
			return ""
		}
		return keyParts[rng.IntN(len(keyParts))]
	}
	seen := map[string]int{}
	for step := 0; step < 160; step++ {
		// One transaction's operations, decided before either store runs it.
		type op struct {
			what       int
			kind       ledger.RecordKind
			key, pre   string
			value      []byte
			failAfter  bool
			stopInScan bool
		}
		ops := make([]op, 1+rng.IntN(6))
		for i := range ops {
			o := op{what: rng.IntN(4), kind: kinds[rng.IntN(len(kinds))], key: key(), pre: prefix()}
			switch rng.IntN(4) {
			case 0:
				o.value = nil
			case 1:
				o.value = []byte{}
			default:
				o.value = []byte(fmt.Sprintf("v%d-%d", step, i))
			}
			o.stopInScan = rng.IntN(5) == 0
			ops[i] = o
		}
		fail := rng.IntN(6) == 0
		run := func(tx recordTx) (string, error) {
			var out strings.Builder
			for _, o := range ops {
				switch o.what {
				case 0, 1:
					fmt.Fprintf(&out, "put %v; ", tx.Put(o.kind, o.key, o.value))
				case 2:
					if rng := o.key; len(rng)%2 == 0 {
						fmt.Fprintf(&out, "delete %v; ", tx.Delete(o.kind, o.key))
					} else {
						v, err := tx.Get(o.kind, o.key)
						fmt.Fprintf(&out, "get %q nil=%v %v; ", v, v == nil, err)
					}
				case 3:
					n := 0
					err := tx.Scan(o.kind, o.pre, func(k string, v []byte) error {
						n++
						fmt.Fprintf(&out, "[%q=%q nil=%v]", k, v, v == nil)
						if got, err := tx.Get(o.kind, k); err != nil || string(got) != string(v) {
							return fmt.Errorf("get in scan: %q %v", got, err)
						}
						if o.stopInScan && n == 2 {
							return errors.New("stop")
						}
						return nil
					})
					fmt.Fprintf(&out, "scan %d %v; ", n, err)
				}
			}
			if fail {
				return out.String(), errors.New("fn fails after its writes")
			}
			return out.String(), nil
		}
		var outA, outB string
		errA := pg.UpdateRecords(ctx, func(tx ledger.RecordTx) (err error) { outA, err = run(tx); return err })
		errB := bb.UpdateRecords(ctx, func(tx ledger.RecordTx) (err error) { outB, err = run(tx); return err })
		if outA != outB || errText(errA) != errText(errB) {
			t.Fatalf("step %d: transaction answers differ:\npostgres %s → %v\nbolt     %s → %v", step, outA, errA, outB, errB)
		}
		if errA != nil {
			seen["failed tx"]++
		}
		seen["tx"]++
		if strings.Contains(outA, "invalid input") {
			seen["invalid"]++
		}
		if strings.Contains(outA, `nil=false`) && strings.Contains(outA, `"" nil=false`) {
			seen["empty value"]++
		}
		// Reads outside a transaction.
		kind, k, pre := kinds[rng.IntN(len(kinds))], key(), prefix()
		va, ea := pg.GetRecord(kind, k)
		vb, eb := bb.GetRecord(kind, k)
		if fmt.Sprintf("%q %v %v", va, va == nil, errText(ea)) != fmt.Sprintf("%q %v %v", vb, vb == nil, errText(eb)) {
			t.Fatalf("step %d: GetRecord(%s, %q): postgres %q %v, bolt %q %v", step, kind, k, va, ea, vb, eb)
		}
		if ea == nil {
			seen["get found"]++
		}
		var sa, sb strings.Builder
		ea = pg.ScanRecords(kind, pre, func(k string, v []byte) error { fmt.Fprintf(&sa, "%q=%q,", k, v); return nil })
		eb = bb.ScanRecords(kind, pre, func(k string, v []byte) error { fmt.Fprintf(&sb, "%q=%q,", k, v); return nil })
		if sa.String() != sb.String() || errText(ea) != errText(eb) {
			t.Fatalf("step %d: ScanRecords(%s, %q):\npostgres %s %v\nbolt     %s %v", step, kind, pre, sa.String(), ea, sb.String(), eb)
		}
	}
	for _, want := range []string{"tx", "failed tx", "invalid", "get found"} {
		if seen[want] == 0 {
			t.Errorf("the run never met %q (seen %v)", want, seen)
		}
	}
	// Everything stored, the same.
	for _, kind := range kinds[:4] {
		var sa, sb strings.Builder
		if err := pg.ScanRecords(kind, "", func(k string, v []byte) error { fmt.Fprintf(&sa, "%q=%q,", k, v); return nil }); err != nil {
			t.Fatal(err)
		}
		if err := bb.ScanRecords(kind, "", func(k string, v []byte) error { fmt.Fprintf(&sb, "%q=%q,", k, v); return nil }); err != nil {
			t.Fatal(err)
		}
		if sa.String() != sb.String() || sa.Len() == 0 {
			t.Fatalf("%s: postgres %s\nbolt %s", kind, sa.String(), sb.String())
		}
	}
}

// TestUpdateRecords_AcrossNodes runs read-modify-writes from 8 goroutines
// over two stores on one database: a counter every call increments, and
// jobs each call claims by scanning for an unclaimed one. No increment is
// lost and no job is claimed twice, as when the calls run one at a time.
func TestUpdateRecords_AcrossNodes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	nodes := []*Store{openPG(t, dsn, Options{}), openPG(t, dsn, Options{})}
	const jobs, workers = 40, 8
	err := nodes[0].UpdateRecords(ctx, func(tx ledger.RecordTx) error {
		for j := 0; j < jobs; j++ {
			if err := tx.Put(ledger.RecordReportFiles, fmt.Sprintf("job\x00%03d", j), []byte("queued")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	claims := make(chan string, jobs*2)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := nodes[w%2]
			for {
				var claimed string
				err := s.UpdateRecords(ctx, func(tx ledger.RecordTx) error {
					claimed = ""
					v, err := tx.Get(ledger.RecordScheduleRuns, "counter")
					if err != nil {
						return err
					}
					n, _ := strconv.Atoi(string(v))
					if err := tx.Put(ledger.RecordScheduleRuns, "counter", []byte(strconv.Itoa(n+1))); err != nil {
						return err
					}
					err = tx.Scan(ledger.RecordReportFiles, "job\x00", func(k string, v []byte) error {
						if claimed == "" && string(v) == "queued" {
							claimed = k
						}
						return nil
					})
					if err != nil || claimed == "" {
						return err
					}
					return tx.Put(ledger.RecordReportFiles, claimed, []byte(fmt.Sprint("claimed by ", w)))
				})
				if err != nil {
					t.Error(err)
					return
				}
				if claimed == "" {
					return
				}
				claims <- claimed
			}
		}(w)
	}
	wg.Wait()
	close(claims)
	got := map[string]int{}
	for k := range claims {
		got[k]++
	}
	if len(got) != jobs {
		t.Fatalf("%d distinct jobs claimed, want %d", len(got), jobs)
	}
	for k, n := range got {
		if n != 1 {
			t.Fatalf("job %q claimed %d times", k, n)
		}
	}
	v, err := nodes[1].GetRecord(ledger.RecordScheduleRuns, "counter")
	if err != nil || string(v) != strconv.Itoa(jobs+workers) {
		t.Fatalf("counter %q %v, want %d (every call's increment)", v, err, jobs+workers)
	}
}
