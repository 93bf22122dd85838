package ledger

import (
	"fmt"
	"time"
)

// EntryInput is one entry as posted by the settlement engine.
type EntryInput struct {
	EntryID         string    // unique per ledger and topic; the idempotency key
	PSPReference    string    //
	Time            time.Time // when it happened; kept to the microsecond, in UTC
	LedgerDate      Date      // optional: zero means "derive from Time"
	EntryType       string    // open set: capture, refund, fees-retained, …
	Reference       string    // the merchant's order reference (may be empty)
	Amount          int64     // minor units, signed
	RecipientHandle *string   // nil for entries that belong to no sales unit

	// GDPR-sensitive fields, stored apart from the chained entry.
	Name        string
	PhoneNumber string // raw; masked to "xxxx 5678" before it is stored
	Message     string
}

// GDPR holds the erasable fields of an entry as stored.
type GDPR struct {
	Name          string
	MaskedPhoneNo string
	Message       string
}

func (g GDPR) isZero() bool { return g == GDPR{} }

// Entry is an entry as stored.
type Entry struct {
	LedgerID        string
	Topic           Topic
	Sequence        uint64 // 1, 2, 3 … per ledger and topic
	EntryID         string
	PSPReference    string
	Time            time.Time // UTC, microseconds
	LedgerDate      Date
	EntryType       string
	Reference       string
	Currency        string
	Amount          int64
	BalanceBefore   int64
	BalanceAfter    int64
	RecipientHandle *string  // read-only: entries of one read may share it
	Hash            [32]byte // SHA-256(previous Hash ‖ canonical encoding)

	// HasGDPR reports whether GDPR fields were posted with the entry; they
	// may since have been erased. GDPR holds them when the read asked for
	// them and they are not erased.
	HasGDPR bool
	GDPR    *GDPR
}

// IsPayout reports whether entryType is a payout type (scheduled-for-payout,
// payout-scheduled): a payout is the last entry of its date, so appending one
// to funds closes its date.
func IsPayout(entryType string) bool {
	return entryType == "scheduled-for-payout" || entryType == "payout-scheduled"
}

func isPayout(entryType string) bool { return IsPayout(entryType) }

// MaxBatch is the most entries one Append call takes.
const MaxBatch = 10000

// FutureTimeSkew is how far past the store's clock an entry's time, or the
// start of a date being named or closed, may be.
const FutureTimeSkew = 15 * time.Minute

const (
	maxEntryIDLen  = 128
	maxMessageLen  = 1024
	maxBatch       = MaxBatch
	minTimeMicros  = 86400 * 1e6 // 1970-01-02
	futureTimeSkew = FutureTimeSkew
)

// NormalizeBatch checks a batch for Append (not empty, at most MaxBatch
// entries, each entry as EntryInput.Normalize does) and returns the entries
// as they will be stored with their GDPR fields. A FieldError names the
// entry ("entries[3].time"). Every store checks its input with it.
func NormalizeBatch(in []EntryInput, now time.Time) ([]EntryInput, []GDPR, error) {
	if len(in) == 0 {
		return nil, nil, fieldErr("entries", "empty batch")
	}
	if len(in) > maxBatch {
		return nil, nil, fieldErr("entries", "%d entries: at most %d per batch", len(in), maxBatch)
	}
	norm := make([]EntryInput, len(in))
	gdpr := make([]GDPR, len(in))
	for i := range in {
		var err error
		if norm[i], gdpr[i], err = in[i].Normalize(now); err != nil {
			return nil, nil, prefixField(fmt.Sprintf("entries[%d].", i), err)
		}
	}
	return norm, gdpr, nil
}

// Normalize checks an input entry and returns it as it will be stored:
// time in UTC truncated to the microsecond, the phone number masked, and
// its GDPR fields apart. now is the store's clock (times more than
// FutureTimeSkew after it are refused). Errors are *FieldError.
func (in EntryInput) Normalize(now time.Time) (EntryInput, GDPR, error) {
	if !validIdent(in.EntryID, maxEntryIDLen) {
		return in, GDPR{}, fieldErr("entryId", "required: 1–%d characters of A–Z a–z 0–9 . _ - :", maxEntryIDLen)
	}
	if in.PSPReference == "" {
		return in, GDPR{}, fieldErr("pspReference", "required")
	}
	if err := checkText("pspReference", in.PSPReference, maxTextLen); err != nil {
		return in, GDPR{}, err
	}
	if in.Time.IsZero() {
		return in, GDPR{}, fieldErr("time", "required")
	}
	in.Time = in.Time.UTC().Truncate(time.Microsecond)
	if in.Time.UnixMicro() < minTimeMicros {
		return in, GDPR{}, fieldErr("time", "before 1970-01-02")
	}
	if in.Time.After(now.Add(futureTimeSkew)) {
		return in, GDPR{}, fieldErr("time", "%s is in the future", in.Time.Format(time.RFC3339Nano))
	}
	if in.LedgerDate < 0 {
		return in, GDPR{}, fieldErr("ledgerDate", "before 1970-01-02")
	}
	if !ValidEntryType(in.EntryType) {
		return in, GDPR{}, fieldErr("entryType", "required: 1–64 characters of a–z 0–9 -")
	}
	if err := checkText("reference", in.Reference, maxTextLen); err != nil {
		return in, GDPR{}, err
	}
	if in.RecipientHandle != nil && !validIdent(*in.RecipientHandle, maxIDLen) {
		return in, GDPR{}, fieldErr("recipientHandle", "%q is not a recipient handle (null for none)", *in.RecipientHandle)
	}
	if err := checkText("name", in.Name, maxTextLen); err != nil {
		return in, GDPR{}, err
	}
	if err := checkText("message", in.Message, maxMessageLen); err != nil {
		return in, GDPR{}, err
	}
	masked, err := maskPhone(in.PhoneNumber)
	if err != nil {
		return in, GDPR{}, err
	}
	g := GDPR{Name: in.Name, MaskedPhoneNo: masked, Message: in.Message}
	in.PhoneNumber = ""
	return in, g, nil
}

// ValidEntryType reports whether s can be an entry type: 1–64 characters
// of a–z, 0–9 and '-'.
func ValidEntryType(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// maskPhone masks a phone number to "xxxx" and its last four digits. It
// accepts digits with an optional leading + and spaces or dashes between.
func maskPhone(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	digits := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == '+' && i == 0, c == ' ', c == '-':
		default:
			return "", fieldErr("phoneNumber", "must be digits, with an optional leading + and spaces")
		}
	}
	if len(digits) < 5 || len(digits) > 20 {
		return "", fieldErr("phoneNumber", "must have 5 to 20 digits")
	}
	return "xxxx " + string(digits[len(digits)-4:]), nil
}

// CheckRepeat checks entry i of a batch whose entryId appeared before in
// the same batch, planned as first with GDPR fields firstGDPR: it returns
// ErrConflict naming the first differing field, or nil for the same content.
func CheckRepeat(i int, in EntryInput, g GDPR, first *Entry, firstGDPR *GDPR) error {
	if f := sameContent(in, g, first, firstGDPR); f != "" {
		return conflictErr("entries[%d].entryId: entryId %q appears twice in the batch with different %s", i, in.EntryID, f)
	}
	return nil
}

// CheckRepost checks entry i of a batch whose entryId is stored already as
// stored, with GDPR fields storedGDPR (nil when erased or none): it returns
// ErrConflict naming the first differing field, or nil when the repost
// has the same content and is a duplicate.
func CheckRepost(i int, in EntryInput, g GDPR, stored *Entry, storedGDPR *GDPR) error {
	if f := sameContent(in, g, stored, storedGDPR); f != "" {
		return conflictErr("entries[%d].%s: entryId %q was posted before as sequence %d with a different %s", i, f, in.EntryID, stored.Sequence, f)
	}
	return nil
}

// sameContent compares a normalized input with a stored entry and its GDPR
// fields, and names the first field that differs ("" when none does). A
// derived ledger date is not compared (it depends on when the entry came);
// GDPR fields are not compared once erased.
func sameContent(in EntryInput, g GDPR, e *Entry, stored *GDPR) string {
	switch {
	case in.PSPReference != e.PSPReference:
		return "pspReference"
	case !in.Time.Equal(e.Time):
		return "time"
	case in.LedgerDate != 0 && in.LedgerDate != e.LedgerDate:
		return "ledgerDate"
	case in.EntryType != e.EntryType:
		return "entryType"
	case in.Reference != e.Reference:
		return "reference"
	case in.Amount != e.Amount:
		return "amount"
	case !sameHandle(in.RecipientHandle, e.RecipientHandle):
		return "recipientHandle"
	}
	if stored == nil {
		if e.HasGDPR { // erased: nothing left to compare
			return ""
		}
		stored = &GDPR{}
	}
	switch {
	case g.Name != stored.Name:
		return "name"
	case g.MaskedPhoneNo != stored.MaskedPhoneNo:
		return "phoneNumber"
	case g.Message != stored.Message:
		return "message"
	}
	return ""
}

func sameHandle(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// AppendResult answers a batch append. A retried batch gets the same answer
// as the first, but with its entries counted as duplicates.
type AppendResult struct {
	Appended      int      // entries newly appended
	Duplicates    int      // entries already there with the same content
	FirstSequence uint64   // lowest sequence among the batch's entries
	LastSequence  uint64   // highest sequence among the batch's entries
	Sequences     []uint64 // the sequence of each input entry, in input order
}

// Record notes the outcome of input entry i: its sequence, and whether it
// was already there (a duplicate) or is appended now. Sequences must be
// sized to the batch.
func (r *AppendResult) Record(i int, seq uint64, dup bool) {
	r.Sequences[i] = seq
	if r.FirstSequence == 0 || seq < r.FirstSequence {
		r.FirstSequence = seq
	}
	r.LastSequence = max(r.LastSequence, seq)
	if dup {
		r.Duplicates++
	} else {
		r.Appended++
	}
}

func (r AppendResult) String() string {
	return fmt.Sprintf("appended %d, duplicates %d, sequences %d–%d", r.Appended, r.Duplicates, r.FirstSequence, r.LastSequence)
}
