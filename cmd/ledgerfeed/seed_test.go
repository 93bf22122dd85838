package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// seedStore puts two ledgers with entries on both topics (some with GDPR
// data) into st, so that verify and backup have something to check.
// It returns how many entries it appended.
func seedStore(t *testing.T, st *ledger.Store) uint64 {
	t.Helper()
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var n uint64
	for i, l := range []ledger.Ledger{
		{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo"},
		{ID: "302322", Currency: "DKK", TimeZone: "Europe/Copenhagen", Cutoff: "04:00"},
	} {
		l.PayoutBankAccount = ledger.Account{Scheme: "BBAN:NO", ID: fmt.Sprintf("1234567890%d", i)}
		l.Owner = ledger.Account{Scheme: "business:NO:ORG", ID: "987654321"}
		if _, _, err := st.PutLedger(ctx, l); err != nil {
			t.Fatalf("put ledger %s: %v", l.ID, err)
		}
		handle := "NO:123456"
		var funds, fees []ledger.EntryInput
		for j := range 20 {
			at := base.Add(time.Duration(j) * 7 * time.Hour)
			funds = append(funds, ledger.EntryInput{
				EntryID: fmt.Sprintf("c-%d", j), PSPReference: fmt.Sprintf("psp-%d", j), Time: at,
				EntryType: "capture", Reference: fmt.Sprintf("order-%d", j), Amount: int64(1000 + j),
				RecipientHandle: &handle, Name: "Ola Nordmann", PhoneNumber: "+4791234567", Message: "thanks",
			})
			fees = append(fees, ledger.EntryInput{
				EntryID: fmt.Sprintf("f-%d", j), PSPReference: fmt.Sprintf("psp-%d", j), Time: at,
				EntryType: "capture-fee", Reference: fmt.Sprintf("order-%d", j), Amount: -int64(10 + j),
				RecipientHandle: &handle,
			})
		}
		for topic, in := range map[ledger.Topic][]ledger.EntryInput{ledger.TopicFunds: funds, ledger.TopicFees: fees} {
			if _, err := st.Append(ctx, l.ID, topic, in); err != nil {
				t.Fatalf("append %s/%s: %v", l.ID, topic, err)
			}
			n += uint64(len(in))
		}
	}
	return n
}
