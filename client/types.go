package client

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// Entry is one ledger entry as the report API sends it. Amounts and
// balances are minor units. RecipientHandle is nil on entries of no sales
// unit; the GDPR fields are nil unless asked for (and consented to).
type Entry struct {
	PSPReference    string    `json:"pspReference"`
	Time            time.Time `json:"time"` // UTC, microseconds
	LedgerDate      string    `json:"ledgerDate"`
	EntryType       string    `json:"entryType"`
	Reference       string    `json:"reference"`
	Currency        string    `json:"currency"`
	Amount          int64     `json:"amount"`
	BalanceBefore   int64     `json:"balanceBefore"`
	BalanceAfter    int64     `json:"balanceAfter"`
	RecipientHandle *string   `json:"recipientHandle"`
	Name            *string   `json:"name,omitempty"`
	MaskedPhoneNo   *string   `json:"maskedPhoneNo,omitempty"`
	Message         *string   `json:"message,omitempty"`
}

// TimeFormat is how the API writes Entry.Time: UTC, six fraction digits.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// Account is a scheme and an id: a payout bank account, an owner, a
// business identifier.
type Account struct {
	Scheme string `json:"scheme"`
	ID     string `json:"id"`
}

// SalesUnit is one sales unit a ledger settles for.
type SalesUnit struct {
	Name               string  `json:"name"`
	RecipientHandle    string  `json:"recipientHandle"`
	BusinessIdentifier Account `json:"businessIdentifier"`
}

// Ledger is one ledger the caller may read.
type Ledger struct {
	LedgerID                   string      `json:"ledgerId"`
	Currency                   string      `json:"currency"`
	PayoutBankAccount          Account     `json:"payoutBankAccount"`
	Owner                      Account     `json:"owner"`
	SettlesForRecipientHandles []string    `json:"settlesForRecipientHandles"`
	SalesUnits                 []SalesUnit `json:"salesUnits"`
}

// FeedPage is one page of a feed. Cursor resumes after its last item;
// TryLater says the page reached the current end of the log.
type FeedPage struct {
	Items    []Entry `json:"items"`
	TryLater bool    `json:"tryLater"`
	Cursor   string  `json:"cursor"`
}

// DatePage is one page of a date report. HasMore: call again with Cursor.
// TryLater: the date is not closed yet, so its report is incomplete.
type DatePage struct {
	Items    []Entry `json:"items"`
	HasMore  bool    `json:"hasMore"`
	TryLater bool    `json:"tryLater"`
	Cursor   string  `json:"cursor"`
}

// DateManifest describes one ledger date (both topics); see
// GET /report/v2/ledgers/{ledgerId}/dates. Seal is set once the date is
// closed; check it with a Verifier.
type DateManifest struct {
	LedgerDate string                      `json:"ledgerDate"`
	State      string                      `json:"state"` // "open" or "closed"
	StartTime  time.Time                   `json:"startTime"`
	EndTime    time.Time                   `json:"endTime"`
	Topics     map[string]DateTopicSummary `json:"topics"`
	Seal       string                      `json:"seal"`
	ClosedTime *time.Time                  `json:"closedTime,omitempty"`
}

// DateTopicSummary sums up one topic of one ledger date.
type DateTopicSummary struct {
	EntryCount     Int64          `json:"entryCount"`
	EntryTypes     []EntryTypeSum `json:"entryTypes"`
	OpeningBalance Int64          `json:"openingBalance"`
	ClosingBalance Int64          `json:"closingBalance"`
	FirstSequence  Int64          `json:"firstSequence"`
	LastSequence   Int64          `json:"lastSequence"`
	Digest         string         `json:"digest"`
}

// EntryTypeSum totals one entry type of a date and topic.
type EntryTypeSum struct {
	EntryType string `json:"entryType"`
	Count     Int64  `json:"count"`
	Amount    Int64  `json:"amount"`
}

// Int64 is an int64 that decodes from a JSON number or a decimal string
// (protojson writes int64 as strings; ledgerfeed writes numbers).
type Int64 int64

// UnmarshalJSON accepts 12, "12" and null (0).
func (n *Int64) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if string(b) == "null" || len(b) == 0 {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("not an int64: %q", b)
	}
	*n = Int64(v)
	return nil
}
