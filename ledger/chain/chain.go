// Package chain is the hash chain over ledger entries, with no dependencies
// beyond the standard library, so that consumers (the client SDK, partners'
// own code) can recompute a topic's digest from the entries they received
// and compare it with a date manifest or a seal.
//
// An entry's hash is SHA-256(previous entry's hash ‖ Canonical(e)); the first
// entry's previous hash is 32 zero bytes. The canonical encoding covers every
// field a reader of the entry sees, in this order, strings as a 4-byte
// big-endian length and the UTF-8 bytes, integers as 8-byte big-endian two's
// complement:
//
//	version u8 = 1, ledgerId, topic, sequence, pspReference, time (µs since
//	the Unix epoch), ledgerDate ("YYYY-MM-DD"), entryType, reference,
//	currency, amount, balanceBefore, balanceAfter, recipientHandle present
//	u8 (0 or 1), recipientHandle (empty when absent)
//
// GDPR fields and entryId are not covered, so erasure leaves every hash valid.
package chain

import (
	"crypto/sha256"
	"encoding/binary"
)

// Entry is what the chain covers of one entry.
type Entry struct {
	LedgerID        string
	Topic           string // "funds" or "fees"
	Sequence        uint64
	PSPReference    string
	TimeMicros      int64  // µs since the Unix epoch, UTC
	LedgerDate      string // "YYYY-MM-DD"
	EntryType       string
	Reference       string
	Currency        string
	Amount          int64
	BalanceBefore   int64
	BalanceAfter    int64
	RecipientHandle *string
}

// AppendCanonical appends the canonical encoding of e to b.
func AppendCanonical(b []byte, e *Entry) []byte {
	b = append(b, 1)
	b = appendStr32(b, e.LedgerID)
	b = appendStr32(b, e.Topic)
	b = binary.BigEndian.AppendUint64(b, e.Sequence)
	b = appendStr32(b, e.PSPReference)
	b = binary.BigEndian.AppendUint64(b, uint64(e.TimeMicros))
	b = appendStr32(b, e.LedgerDate)
	b = appendStr32(b, e.EntryType)
	b = appendStr32(b, e.Reference)
	b = appendStr32(b, e.Currency)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Amount))
	b = binary.BigEndian.AppendUint64(b, uint64(e.BalanceBefore))
	b = binary.BigEndian.AppendUint64(b, uint64(e.BalanceAfter))
	if e.RecipientHandle != nil {
		b = append(b, 1)
		b = appendStr32(b, *e.RecipientHandle)
	} else {
		b = append(b, 0)
		b = appendStr32(b, "")
	}
	return b
}

// Hash returns SHA-256(prev ‖ Canonical(e)): e's link in the chain.
func Hash(prev [32]byte, e *Entry) [32]byte {
	var a [256]byte
	buf := append(a[:0], prev[:]...)
	buf = AppendCanonical(buf, e)
	return sha256.Sum256(buf)
}

func appendStr32(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
