package ledger

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestStore_AppendAndRead(t *testing.T) {
	clock := newClock(time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	s := openTestStore(t, Options{Now: clock.Now})
	ctx := context.Background()
	mustPutLedger(t, s, "302321", "NOK", "Europe/Oslo", "")
	in := []EntryInput{
		{EntryID: "e1", PSPReference: "p1", Time: clock.Now().Add(-time.Hour), EntryType: "capture", Reference: "order-1", Amount: 10000, RecipientHandle: strp("NO:123"), Name: "Ola", PhoneNumber: "+47 912 34 567", Message: "thanks"},
		{EntryID: "e2", PSPReference: "p2", Time: clock.Now().Add(-time.Minute), EntryType: "refund", Reference: "order-1", Amount: -2500, RecipientHandle: strp("NO:123")},
	}
	res, err := s.Append(ctx, "302321", TopicFunds, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Appended != 2 || res.FirstSequence != 1 || res.LastSequence != 2 {
		t.Fatalf("first append: %+v", res)
	}
	again, err := s.Append(ctx, "302321", TopicFunds, in)
	if err != nil {
		t.Fatal(err)
	}
	if again.Appended != 0 || again.Duplicates != 2 || again.FirstSequence != 1 || again.LastSequence != 2 {
		t.Fatalf("retry: %+v", again)
	}
	bad := in[1]
	bad.Amount = -2600
	if _, err := s.Append(ctx, "302321", TopicFunds, []EntryInput{bad}); !errors.Is(err, ErrConflict) {
		t.Fatalf("changed amount: got %v, want conflict", err)
	}
	es, err := s.Entries("302321", TopicFunds, 1, 10, ReadOptions{GDPR: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[1].BalanceAfter != 7500 || es[0].GDPR == nil || es[0].GDPR.MaskedPhoneNo != "xxxx 4567" {
		t.Fatalf("entries: %+v", es)
	}
	if es[0].LedgerDate.String() != "2026-03-10" {
		t.Fatalf("date %s", es[0].LedgerDate)
	}
	n, err := s.EraseGDPR(ctx, "302321", Erasure{Reference: "order-1"})
	if err != nil || n != 1 {
		t.Fatalf("erase: %d %v", n, err)
	}
	es, _ = s.Entries("302321", TopicFunds, 1, 10, ReadOptions{GDPR: true})
	if es[0].GDPR != nil {
		t.Fatalf("gdpr after erasure: %+v", es[0].GDPR)
	}
	// A retry after erasure is still a duplicate.
	if r, err := s.Append(ctx, "302321", TopicFunds, in); err != nil || r.Duplicates != 2 {
		t.Fatalf("retry after erasure: %+v %v", r, err)
	}
	rep, err := s.Verify(ctx, nil)
	if err != nil || rep.Entries != 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	fmt.Sprint(rep)
}
