package pgstore

import (
	"context"
	"testing"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// TestEraseGDPR: erasing by reference drops the sealed fields and their keys
// from the database; the entries, balances and hashes stay; a retry of an
// erased entry is still a duplicate; other entries keep their fields.
func TestEraseGDPR(t *testing.T) {
	ctx := context.Background()
	clock := newClock(utc("2026-06-10T12:00:00Z"))
	s := openPG(t, pgtest.Start(t), Options{Now: clock.Now})
	if _, _, err := s.PutLedger(ctx, ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"}); err != nil {
		t.Fatal(err)
	}
	at := utc("2026-06-10T08:00:00Z")
	a := capture("a", 100, at)
	a.Name, a.PhoneNumber, a.Message = "Kari Nordmann", "+47 912 34 567", "takk for maten"
	b := capture("b", 200, at)
	b.Name = "Ola"
	if _, err := s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{a, b}); err != nil {
		t.Fatal(err)
	}
	before, err := s.Entries("302321", ledger.TopicFunds, 1, 10, ledger.ReadOptions{GDPR: true})
	if err != nil {
		t.Fatal(err)
	}
	if g := before[0].GDPR; g == nil || g.Name != "Kari Nordmann" || g.MaskedPhoneNo != "xxxx 4567" || g.Message != "takk for maten" {
		t.Fatalf("stored gdpr fields: %+v", g)
	}
	// The raw phone number is stored nowhere; the name is not in clear text.
	var clear int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM gdpr WHERE position('Kari'::bytea in sealed) > 0 OR position('912'::bytea in sealed) > 0`).Scan(&clear); err != nil {
		t.Fatal(err)
	}
	if clear != 0 {
		t.Fatal("gdpr fields stored in clear text")
	}
	n, err := s.EraseGDPR(ctx, "302321", ledger.Erasure{Reference: "order-a"})
	if err != nil || n != 1 {
		t.Fatalf("erase: %d, %v", n, err)
	}
	after, err := s.Entries("302321", ledger.TopicFunds, 1, 10, ledger.ReadOptions{GDPR: true})
	if err != nil {
		t.Fatal(err)
	}
	if after[0].GDPR != nil || !after[0].HasGDPR || after[0].Hash != before[0].Hash || after[0].BalanceAfter != 100 {
		t.Fatalf("erased entry: %+v", after[0])
	}
	if after[1].GDPR == nil || after[1].GDPR.Name != "Ola" {
		t.Fatalf("other entry lost its fields: %+v", after[1])
	}
	var rows int
	if err := s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM gdpr WHERE seq = 1) + (SELECT count(*) FROM gdpr_keys WHERE seq = 1)`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Fatalf("%d gdpr rows of the erased entry remain", rows)
	}
	// A retry of the erased entry, even with other GDPR text, is a duplicate.
	a.Message = "something else"
	res, err := s.Append(ctx, "302321", ledger.TopicFunds, []ledger.EntryInput{a})
	if err != nil || res.Duplicates != 1 || res.FirstSequence != 1 {
		t.Fatalf("retry after erasure: %v %v", res, err)
	}
	if n, err := s.EraseGDPR(ctx, "302321", ledger.Erasure{Reference: "order-a"}); err != nil || n != 0 {
		t.Fatalf("second erase: %d %v", n, err)
	}
	if _, err := s.EraseGDPR(ctx, "302321", ledger.Erasure{}); err == nil {
		t.Fatal("erasure without reference accepted")
	}
}
