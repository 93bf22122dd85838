package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// The store's basic contract: append and read back, retries and conflicts,
// refused input, ledgers, waiting for appends.

func testAppendAndRead(t *testing.T, h Harness) {
	s, clock := openAt(t, h, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	ctx := context.Background()
	mustPutLedger(t, s, "302321", "NOK", "Europe/Oslo", "")
	in := []ledger.EntryInput{
		{EntryID: "e1", PSPReference: "p1", Time: clock.Now().Add(-time.Hour), EntryType: "capture", Reference: "order-1", Amount: 10000, RecipientHandle: strp("NO:123"), Name: "Ola", PhoneNumber: "+47 912 34 567", Message: "thanks"},
		{EntryID: "e2", PSPReference: "p2", Time: clock.Now().Add(-time.Minute), EntryType: "refund", Reference: "order-1", Amount: -2500, RecipientHandle: strp("NO:123")},
	}
	res, err := s.Append(ctx, "302321", ledger.TopicFunds, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Appended != 2 || res.FirstSequence != 1 || res.LastSequence != 2 {
		t.Fatalf("first append: %+v", res)
	}
	again, err := s.Append(ctx, "302321", ledger.TopicFunds, in)
	if err != nil {
		t.Fatal(err)
	}
	if again.Appended != 0 || again.Duplicates != 2 || again.FirstSequence != 1 || again.LastSequence != 2 {
		t.Fatalf("retry: %+v", again)
	}
	bad := in[1]
	bad.Amount = -2600
	if _, err := s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{bad}); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("changed amount: got %v, want conflict", err)
	}
	es, err := s.Entries("302321", ledger.TopicFunds, 1, 10, ledger.ReadOptions{GDPR: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[1].BalanceAfter != 7500 || es[0].GDPR == nil || es[0].GDPR.MaskedPhoneNo != "xxxx 4567" {
		t.Fatalf("entries: %+v", es)
	}
	if es[0].LedgerDate.String() != "2026-03-10" {
		t.Fatalf("date %s", es[0].LedgerDate)
	}
	n, err := s.EraseGDPR(ctx, "302321", ledger.Erasure{Reference: "order-1"})
	if err != nil || n != 1 {
		t.Fatalf("erase: %d %v", n, err)
	}
	es, _ = s.Entries("302321", ledger.TopicFunds, 1, 10, ledger.ReadOptions{GDPR: true})
	if es[0].GDPR != nil {
		t.Fatalf("gdpr after erasure: %+v", es[0].GDPR)
	}
	// A retry after erasure is still a duplicate.
	if r, err := s.Append(ctx, "302321", ledger.TopicFunds, in); err != nil || r.Duplicates != 2 {
		t.Fatalf("retry after erasure: %+v %v", r, err)
	}
	if f, ok := s.(ledger.Files); ok {
		rep, err := f.Verify(ctx, nil)
		if err != nil || rep.Entries != 2 {
			t.Fatalf("verify: %+v %v", rep, err)
		}
	}
}

func testAppendErrInvalid(t *testing.T, h Harness) {
	s, clock := openAt(t, h, utc("2026-03-10T12:00:00Z"))
	mustPutLedger(t, s, "1", "NOK", "Europe/Oslo", "")
	ok := ledger.EntryInput{EntryID: "x", PSPReference: "p", Time: clock.Now(), EntryType: "capture", Amount: 1}
	tests := []struct {
		field string
		edit  func(e *ledger.EntryInput)
	}{
		{"entries[1].entryId", func(e *ledger.EntryInput) { e.EntryID = "" }},
		{"entries[1].entryId", func(e *ledger.EntryInput) { e.EntryID = "has space" }},
		{"entries[1].pspReference", func(e *ledger.EntryInput) { e.PSPReference = "" }},
		{"entries[1].time", func(e *ledger.EntryInput) { e.Time = time.Time{} }},
		{"entries[1].time", func(e *ledger.EntryInput) { e.Time = clock.Now().Add(time.Hour) }},
		{"entries[1].entryType", func(e *ledger.EntryInput) { e.EntryType = "Capture!" }},
		{"entries[1].reference", func(e *ledger.EntryInput) { e.Reference = "bad\x00ref" }},
		{"entries[1].recipientHandle", func(e *ledger.EntryInput) { e.RecipientHandle = strp("") }},
		{"entries[1].phoneNumber", func(e *ledger.EntryInput) { e.PhoneNumber = "call me" }},
		{"entries[1].message", func(e *ledger.EntryInput) { e.Message = string(make([]byte, 2000)) }},
	}
	for _, tt := range tests {
		bad := ok
		bad.EntryID = "y"
		tt.edit(&bad)
		_, err := s.Append(context.Background(), "1", ledger.TopicFunds, []ledger.EntryInput{ok, bad})
		var fe *ledger.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("%s: got %v", tt.field, err)
		}
	}
	if h, _ := s.Head("1", ledger.TopicFunds); h.Sequence != 0 {
		t.Fatalf("a rejected batch wrote %d entries", h.Sequence)
	}
	if _, err := s.Append(context.Background(), "nope", ledger.TopicFunds, []ledger.EntryInput{ok}); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("unknown ledger: %v", err)
	}
	if _, err := s.Append(context.Background(), "1", ledger.Topic("other"), []ledger.EntryInput{ok}); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("unknown topic: %v", err)
	}
}

func testPutLedger(t *testing.T, h Harness) {
	s, clock := openAt(t, h, utc("2026-03-10T12:00:00Z"))
	ctx := context.Background()
	for _, tc := range []struct {
		l     ledger.Ledger
		field string
	}{
		{ledger.Ledger{ID: "", Currency: "NOK", TimeZone: "UTC"}, "ledgerId"},
		{ledger.Ledger{ID: "1", Currency: "XXX", TimeZone: "UTC"}, "currency"},
		{ledger.Ledger{ID: "1", Currency: "NOK", TimeZone: "Mars/Olympus"}, "timeZone"},
		{ledger.Ledger{ID: "1", Currency: "NOK"}, "timeZone"},
		{ledger.Ledger{ID: "1", Currency: "NOK", TimeZone: "UTC", Cutoff: "25:00"}, "cutoff"},
		{ledger.Ledger{ID: "1", Currency: "NOK", TimeZone: "UTC", Owner: ledger.Account{Scheme: "business:NO:ORG"}}, "owner"},
	} {
		var fe *ledger.FieldError
		if _, _, err := s.PutLedger(ctx, tc.l); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: got %v, want field %s", tc.l, err, tc.field)
		}
	}
	l, created, err := s.PutLedger(ctx, ledger.Ledger{ID: "1", Currency: "NOK", TimeZone: "Europe/Oslo"})
	if err != nil || !created || l.Cutoff != "00:00" {
		t.Fatalf("create: %+v %v %v", l, created, err)
	}
	if _, created, err := s.PutLedger(ctx, ledger.Ledger{ID: "1", Currency: "DKK", TimeZone: "Europe/Copenhagen"}); err != nil || created {
		t.Fatalf("update before entries: %v %v", created, err)
	}
	if _, err := s.Append(ctx, "1", ledger.TopicFunds, []ledger.EntryInput{{EntryID: "a", PSPReference: "p", Time: clock.Now(), EntryType: "capture", Amount: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutLedger(ctx, ledger.Ledger{ID: "1", Currency: "NOK", TimeZone: "Europe/Copenhagen"}); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("currency change after entries: %v", err)
	}
	got, err := s.GetLedger("1")
	if err != nil || got.Currency != "DKK" || got.OpenDate.String() != "2026-03-10" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if ls, err := s.ListLedgers("", 10); err != nil || len(ls) != 1 {
		t.Fatalf("list: %v %v", ls, err)
	}
}

// TestStore_WaitAppend checks that a waiting reader wakes on a commit.
func testWaitAppend(t *testing.T, h Harness) {
	s, clock := openAt(t, h, utc("2026-03-10T12:00:00Z"))
	ctx := context.Background()
	mustPutLedger(t, s, "1", "NOK", "Europe/Oslo", "")
	got := make(chan ledger.Head, 1)
	go func() {
		h, err := s.WaitAppend(ctx, "1", ledger.TopicFees, 0)
		if err != nil {
			t.Error(err)
		}
		got <- h
	}()
	select {
	case <-got:
		t.Fatal("woke before any append")
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := s.Append(ctx, "1", ledger.TopicFees, []ledger.EntryInput{{EntryID: "a", PSPReference: "p", Time: clock.Now(), EntryType: "capture-fee", Amount: -1}}); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-got:
		if h.Sequence != 1 {
			t.Fatalf("woke with head %+v", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not woken by the commit")
	}
	// Closing the store wakes waiters too.
	done := make(chan error, 1)
	go func() { _, err := s.WaitAppend(ctx, "1", ledger.TopicFees, 1); done <- err }()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	if err := <-done; !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}
