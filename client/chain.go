package client

import (
	"encoding/hex"
	"fmt"
	"math"

	"github.com/ledgerfeed/ledgerfeed/ledger/chain"
)

// TopicChain follows one topic's log as its entries arrive in append order:
// it checks that the balances chain (balanceBefore = the previous
// balanceAfter, balanceAfter = balanceBefore + amount), numbers the entries
// (the first entry of a topic is sequence 1) and recomputes the hash chain.
// Its exported fields are its whole state: save them (e.g. as JSON) to
// resume. The zero value (with LedgerID and Topic set) is a topic before its
// first entry.
type TopicChain struct {
	LedgerID string `json:"ledgerId"`
	Topic    string `json:"topic"`
	Sequence int64  `json:"sequence"` // of the last entry added; 0 before the first
	Balance  int64  `json:"balance"`  // balanceAfter of the last entry
	Digest   string `json:"digest"`   // hex hash of the last entry; "" before the first

	raw    [32]byte // Digest decoded
	rawFor string   // the Digest raw was decoded from
}

// Add takes the next entry of the topic. It returns an error wrapping
// ErrSeal, and changes nothing, when the entry's balances do not chain.
func (tc *TopicChain) Add(e *Entry) error {
	if e.BalanceBefore != tc.Balance {
		return fmt.Errorf("%w: %s %s sequence %d (%s %s): balanceBefore %d, previous balanceAfter %d",
			ErrSeal, tc.LedgerID, tc.Topic, tc.Sequence+1, e.LedgerDate, e.PSPReference, e.BalanceBefore, tc.Balance)
	}
	if sum, ok := addInt64(e.BalanceBefore, e.Amount); !ok || sum != e.BalanceAfter {
		return fmt.Errorf("%w: %s %s sequence %d (%s %s): balanceAfter %d is not balanceBefore %d + amount %d",
			ErrSeal, tc.LedgerID, tc.Topic, tc.Sequence+1, e.LedgerDate, e.PSPReference, e.BalanceAfter, e.BalanceBefore, e.Amount)
	}
	if tc.rawFor != tc.Digest {
		if err := tc.decode(); err != nil {
			return err
		}
	}
	ce := chain.Entry{
		LedgerID:        tc.LedgerID,
		Topic:           tc.Topic,
		Sequence:        uint64(tc.Sequence + 1),
		PSPReference:    e.PSPReference,
		TimeMicros:      e.Time.UnixMicro(),
		LedgerDate:      e.LedgerDate,
		EntryType:       e.EntryType,
		Reference:       e.Reference,
		Currency:        e.Currency,
		Amount:          e.Amount,
		BalanceBefore:   e.BalanceBefore,
		BalanceAfter:    e.BalanceAfter,
		RecipientHandle: e.RecipientHandle,
	}
	tc.raw = chain.Hash(tc.raw, &ce)
	tc.Digest = hex.EncodeToString(tc.raw[:])
	tc.rawFor = tc.Digest
	tc.Sequence++
	tc.Balance = e.BalanceAfter
	return nil
}

func (tc *TopicChain) decode() error {
	var raw [32]byte
	if tc.Digest != "" {
		b, err := hex.DecodeString(tc.Digest)
		if err != nil || len(b) != 32 {
			return fmt.Errorf("%s %s: digest %q is not 64 hex digits", tc.LedgerID, tc.Topic, tc.Digest)
		}
		copy(raw[:], b)
	}
	tc.raw, tc.rawFor = raw, tc.Digest
	return nil
}

func addInt64(a, b int64) (int64, bool) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, false
	}
	return a + b, true
}

// TopicSummary is what a seal (and the date manifest) says of one topic of
// one ledger date; Summarize computes the same from a TopicChain.
type TopicSummary struct {
	EntryCount     int64  `json:"entryCount"`
	FirstSequence  int64  `json:"firstSequence"` // 0 when the date has no entries
	LastSequence   int64  `json:"lastSequence"`  // 0 when the date has no entries
	OpeningBalance int64  `json:"openingBalance"`
	ClosingBalance int64  `json:"closingBalance"`
	Digest         string `json:"digest"` // after the date; the previous one when empty
}

// Summarize returns the summary of one date of a topic from the chain's
// state before the date (before) and after its entries were added (after).
func Summarize(before, after *TopicChain) TopicSummary {
	s := TopicSummary{
		EntryCount:     after.Sequence - before.Sequence,
		OpeningBalance: before.Balance,
		ClosingBalance: after.Balance,
		Digest:         after.Digest,
	}
	if s.EntryCount > 0 {
		s.FirstSequence, s.LastSequence = before.Sequence+1, after.Sequence
	}
	return s
}
