package ledger

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// sharedRecord returns the ledger record readers share (readcache.go).
func sharedRecord(t *testing.T, s *Store, id string) *ledgerRecord {
	t.Helper()
	var rec *ledgerRecord
	if err := s.view(id, func(_ *bolt.Tx, r *ledgerRecord) error { rec = r; return nil }); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestStore_Append_SharedLedgerRecord: the writer starts from the readers'
// decoded ledger record but changes only its own copy, so a record a
// reader holds never changes under it (with -race, readers run during the
// appends), and the next read sees the committed record.
func TestStore_Append_SharedLedgerRecord(t *testing.T) {
	clock := newClock(time.Date(2024, 1, 5, 12, 0, 0, 0, time.UTC))
	s := openTestStore(t, Options{Now: clock.Now})
	ctx := context.Background()
	if _, _, err := s.PutLedger(ctx, Ledger{ID: "700001", Currency: "NOK", TimeZone: "UTC",
		SettlesForRecipientHandles: []string{"NO:1"}, SalesUnits: []SalesUnit{{Name: "a", RecipientHandle: "NO:1"}}}); err != nil {
		t.Fatal(err)
	}
	before := sharedRecord(t, s, "700001")
	if before.HasEntries || before.OpenDate != 0 {
		t.Fatalf("new ledger record %+v", before)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // readers of the shared record while the writer works
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			r := sharedRecord(t, s, "700001")
			_ = r.OpenDate
			_ = r.HasEntries
			_ = len(r.SalesUnits)
		}
	}()
	for i, day := range []string{"2024-01-01", "2024-01-02", "2024-01-03"} {
		if _, err := s.Append(ctx, "700001", TopicFunds, []EntryInput{{
			EntryID: fmt.Sprintf("e%d", i), PSPReference: "p", Reference: "r", EntryType: "capture", Amount: 10,
			Time: time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC), LedgerDate: mustDate(t, day),
		}}); err != nil {
			t.Fatal(err)
		}
		h, err := s.Head("700001", TopicFunds)
		if err != nil || h.OpenDate != mustDate(t, day) {
			t.Fatalf("after an entry of %s: head %+v, %v", day, h, err)
		}
	}
	close(stop)
	wg.Wait()
	if before.HasEntries || before.OpenDate != 0 || len(before.SalesUnits) != 1 {
		t.Fatalf("the record readers held changed under them: %+v", before)
	}
	after := sharedRecord(t, s, "700001")
	if !after.HasEntries || after.OpenDate != mustDate(t, "2024-01-03") || after.SalesUnits[0].Name != "a" {
		t.Fatalf("record after the appends: %+v", after)
	}
}
