package pgstore

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// The checks in this file are the bbolt store's own, which package ledger
// does not export yet (EntryInput.normalize, sameContent, Ledger.validate,
// isPayout and their helpers; ValidEntryType is exported and used). They
// are repeated here, small and unchanged in meaning, until ledger exports
// them; TestValidation_SameAsBolt feeds both stores the same bad input and
// compares the errors, so the two copies cannot drift apart unnoticed.

const (
	maxIDLen       = 64
	maxTextLen     = 256
	maxEntryIDLen  = 128
	maxMessageLen  = 1024
	maxBatch       = 10000
	minTimeMicros  = 86400 * 1e6 // 1970-01-02
	futureTimeSkew = 15 * time.Minute
)

func fieldErr(field, format string, args ...any) error {
	return &ledger.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func conflictErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ledger.ErrConflict, fmt.Sprintf(format, args...))
}

func prefixField(prefix string, err error) error {
	if fe, ok := err.(*ledger.FieldError); ok {
		return &ledger.FieldError{Field: prefix + fe.Field, Reason: fe.Reason}
	}
	return err
}

func isPayout(entryType string) bool {
	return entryType == "scheduled-for-payout" || entryType == "payout-scheduled"
}

func addInt64(a, b int64) (int64, bool) {
	c := a + b
	if (c > a) != (b > 0) {
		return c, false
	}
	return c, true
}

func validIdent(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

func checkText(field, s string, max int) error {
	if len(s) > max {
		return fieldErr(field, "longer than %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return fieldErr(field, "not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fieldErr(field, "contains a control character")
		}
	}
	return nil
}

func validateAccount(a ledger.Account, field string) error {
	if (a.Scheme == "") != (a.ID == "") {
		return fieldErr(field, "scheme and id must both be set or both be empty")
	}
	if err := checkText(field+".scheme", a.Scheme, maxIDLen); err != nil {
		return err
	}
	return checkText(field+".id", a.ID, maxIDLen)
}

// validateLedger is ledger.(*Ledger).validate.
func validateLedger(l *ledger.Ledger) error {
	if !validIdent(l.ID, maxIDLen) {
		return fieldErr("ledgerId", "must be 1–%d characters of A–Z a–z 0–9 . _ - :", maxIDLen)
	}
	if _, ok := ledger.CurrencyExponent(l.Currency); !ok {
		return fieldErr("currency", "%q is not an ISO 4217 currency code", l.Currency)
	}
	if err := validateAccount(l.PayoutBankAccount, "payoutBankAccount"); err != nil {
		return err
	}
	if err := validateAccount(l.Owner, "owner"); err != nil {
		return err
	}
	if len(l.SettlesForRecipientHandles) > 1000 {
		return fieldErr("settlesForRecipientHandles", "more than 1000 handles")
	}
	for i, h := range l.SettlesForRecipientHandles {
		if !validIdent(h, maxIDLen) {
			return fieldErr(fmt.Sprintf("settlesForRecipientHandles[%d]", i), "%q is not a recipient handle", h)
		}
		if slices.Contains(l.SettlesForRecipientHandles[:i], h) {
			return fieldErr(fmt.Sprintf("settlesForRecipientHandles[%d]", i), "%q is listed twice", h)
		}
	}
	if len(l.SalesUnits) > 1000 {
		return fieldErr("salesUnits", "more than 1000 sales units")
	}
	for i, u := range l.SalesUnits {
		f := fmt.Sprintf("salesUnits[%d]", i)
		if err := checkText(f+".name", u.Name, maxTextLen); err != nil {
			return err
		}
		if !validIdent(u.RecipientHandle, maxIDLen) {
			return fieldErr(f+".recipientHandle", "%q is not a recipient handle", u.RecipientHandle)
		}
		if err := validateAccount(u.BusinessIdentifier, f+".businessIdentifier"); err != nil {
			return err
		}
	}
	if l.TimeZone == "" {
		return fieldErr("timeZone", "required: an IANA time zone such as Europe/Oslo")
	}
	if _, err := l.Calendar(); err != nil {
		return err
	}
	return nil
}

// normalize is ledger.EntryInput.normalize: it checks an input entry and
// returns it as stored (UTC, microseconds, phone number masked).
func normalize(in ledger.EntryInput, now time.Time) (ledger.EntryInput, ledger.GDPR, error) {
	if !validIdent(in.EntryID, maxEntryIDLen) {
		return in, ledger.GDPR{}, fieldErr("entryId", "required: 1–%d characters of A–Z a–z 0–9 . _ - :", maxEntryIDLen)
	}
	if in.PSPReference == "" {
		return in, ledger.GDPR{}, fieldErr("pspReference", "required")
	}
	if err := checkText("pspReference", in.PSPReference, maxTextLen); err != nil {
		return in, ledger.GDPR{}, err
	}
	if in.Time.IsZero() {
		return in, ledger.GDPR{}, fieldErr("time", "required")
	}
	in.Time = in.Time.UTC().Truncate(time.Microsecond)
	if in.Time.UnixMicro() < minTimeMicros {
		return in, ledger.GDPR{}, fieldErr("time", "before 1970-01-02")
	}
	if in.Time.After(now.Add(futureTimeSkew)) {
		return in, ledger.GDPR{}, fieldErr("time", "%s is in the future", in.Time.Format(time.RFC3339Nano))
	}
	if in.LedgerDate < 0 {
		return in, ledger.GDPR{}, fieldErr("ledgerDate", "before 1970-01-02")
	}
	if !ledger.ValidEntryType(in.EntryType) {
		return in, ledger.GDPR{}, fieldErr("entryType", "required: 1–64 characters of a–z 0–9 -")
	}
	if err := checkText("reference", in.Reference, maxTextLen); err != nil {
		return in, ledger.GDPR{}, err
	}
	if in.RecipientHandle != nil && !validIdent(*in.RecipientHandle, maxIDLen) {
		return in, ledger.GDPR{}, fieldErr("recipientHandle", "%q is not a recipient handle (null for none)", *in.RecipientHandle)
	}
	if err := checkText("name", in.Name, maxTextLen); err != nil {
		return in, ledger.GDPR{}, err
	}
	if err := checkText("message", in.Message, maxMessageLen); err != nil {
		return in, ledger.GDPR{}, err
	}
	masked, err := maskPhone(in.PhoneNumber)
	if err != nil {
		return in, ledger.GDPR{}, err
	}
	g := ledger.GDPR{Name: in.Name, MaskedPhoneNo: masked, Message: in.Message}
	in.PhoneNumber = ""
	return in, g, nil
}

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

// sameContent is ledger's sameContent: the first field in which a normalized
// input differs from a stored entry ("" when none does). A derived ledger
// date is not compared; GDPR fields are not compared once erased.
func sameContent(in ledger.EntryInput, g ledger.GDPR, e *ledger.Entry, stored *ledger.GDPR) string {
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
		if e.HasGDPR {
			return ""
		}
		stored = &ledger.GDPR{}
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
