package feed

import (
	"context"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// TestReader_AtEnd: AtEnd says "at the end" only while the fan-out's last
// read, with no commit since, found the log ending there; never for a
// position that holds an entry, never after a commit it has not read.
func TestReader_AtEnd(t *testing.T) {
	s := openTestStore(t)
	mustPutLedger(t, s, "1")
	mustAppend(t, s, "1", ledger.TopicFunds, "2024-01-01", 3)
	r := NewReader(s)
	if r.AtEnd("1", ledger.TopicFunds, 4) {
		t.Fatal("at the end before any read")
	}
	// A long poll at 4 that ends without entries: the fan-out has read the
	// log's end.
	p, err := r.WaitFeed(context.Background(), "1", ledger.TopicFunds, 4, 10, ledger.ReadOptions{}, 50*time.Millisecond, nil)
	if err != nil || len(p.Entries) != 0 {
		t.Fatalf("wait at the end: %+v %v", p, err)
	}
	for deadline := time.Now().Add(5 * time.Second); !r.AtEnd("1", ledger.TopicFunds, 4); {
		if time.Now().After(deadline) {
			t.Fatal("the end read by the long poll is not known")
		}
		time.Sleep(time.Millisecond)
	}
	for _, from := range []uint64{0, 1, 3} {
		if r.AtEnd("1", ledger.TopicFunds, from) {
			t.Fatalf("at the end at %d, which holds an entry", from)
		}
	}
	if !r.AtEnd("1", ledger.TopicFunds, 9) || r.AtEnd("1", ledger.TopicFees, 4) || r.AtEnd("2", ledger.TopicFunds, 4) {
		t.Fatal("AtEnd past the end, of another topic or ledger")
	}
	// A commit: not known any more, at the old end or after it.
	mustAppend(t, s, "1", ledger.TopicFunds, "2024-01-01", 1)
	for _, from := range []uint64{4, 5} {
		if r.AtEnd("1", ledger.TopicFunds, from) {
			t.Fatalf("at the end at %d after a commit no read has seen", from)
		}
	}
	p, err = r.WaitFeed(context.Background(), "1", ledger.TopicFunds, 4, 10, ledger.ReadOptions{}, time.Second, nil)
	if err != nil || len(p.Entries) != 1 || p.Entries[0].Sequence != 4 {
		t.Fatalf("wait after the commit: %+v %v", p, err)
	}
}
