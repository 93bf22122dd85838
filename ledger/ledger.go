package ledger

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Account is a scheme-qualified identifier: a bank account ("BBAN:NO",
// "IBAN"), an organisation number ("business:NO:ORG") and the like.
type Account struct {
	Scheme string `json:"scheme"`
	ID     string `json:"id"`
}

// SalesUnit is a sales unit whose sales settle on the ledger.
type SalesUnit struct {
	Name               string  `json:"name"`
	RecipientHandle    string  `json:"recipientHandle"`
	BusinessIdentifier Account `json:"businessIdentifier"`
}

// Ledger is a settlement ledger: what is configured through the admin API,
// and the state the store keeps (OpenDate, timestamps).
type Ledger struct {
	ID                         string      `json:"ledgerId"`
	Currency                   string      `json:"currency"`
	PayoutBankAccount          Account     `json:"payoutBankAccount"`
	Owner                      Account     `json:"owner"`
	SettlesForRecipientHandles []string    `json:"settlesForRecipientHandles"`
	SalesUnits                 []SalesUnit `json:"salesUnits"`
	TimeZone                   string      `json:"timeZone"`
	Cutoff                     string      `json:"cutoff"` // "HH:MM", default "00:00"

	// OpenDate is the ledger's one open date; every earlier date is closed.
	// It is zero until the first entry is appended or a date is closed.
	OpenDate  Date      `json:"openDate"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// ledgerRecord is a ledger as stored in the ledgers bucket.
type ledgerRecord struct {
	Ledger
	Num        uint32 `json:"num"`        // internal number, the prefix of every key of the ledger
	HasEntries bool   `json:"hasEntries"` // currency, zone and cutoff are fixed once true
}

func (r *ledgerRecord) marshal() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // only plain fields: cannot fail
	}
	return b
}

func unmarshalLedger(b []byte) (*ledgerRecord, error) {
	var r ledgerRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: ledger record: %v", ErrDamaged, err)
	}
	return &r, nil
}

// Calendar returns the ledger's date calendar.
func (l *Ledger) Calendar() (Calendar, error) { return calendarFor(l.TimeZone, l.Cutoff) }

const (
	maxIDLen   = 64
	maxTextLen = 256
)

// validIdent reports whether s is a usable identifier: 1–64 of
// A–Z a–z 0–9 . _ - : (ledger ids are numeric strings, like Vipps's).
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

// checkText checks a free-text field: valid UTF-8, no control characters,
// at most max bytes.
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

func (a Account) validate(field string) error {
	if (a.Scheme == "") != (a.ID == "") {
		return fieldErr(field, "scheme and id must both be set or both be empty")
	}
	if err := checkText(field+".scheme", a.Scheme, maxIDLen); err != nil {
		return err
	}
	return checkText(field+".id", a.ID, maxIDLen)
}

// Validate checks the configured fields of l (not the store's state): the
// checks every store makes in PutLedger. Errors are *FieldError.
func (l *Ledger) Validate() error { return l.validate() }

// Validate checks the fields of c a caller sets (id, secret hash, scopes,
// grants): the checks every store makes in CreateClient and UpdateClient.
// Errors are *FieldError. (It sits here beside Ledger.Validate; the checks
// are Client.validate in clients.go.)
func (c *Client) Validate() error { return c.validate() }

// validate checks the configured fields of l (not the store's state).
func (l *Ledger) validate() error {
	if !validIdent(l.ID, maxIDLen) {
		return fieldErr("ledgerId", "must be 1–%d characters of A–Z a–z 0–9 . _ - :", maxIDLen)
	}
	if _, ok := CurrencyExponent(l.Currency); !ok {
		return fieldErr("currency", "%q is not an ISO 4217 currency code", l.Currency)
	}
	if err := l.PayoutBankAccount.validate("payoutBankAccount"); err != nil {
		return err
	}
	if err := l.Owner.validate("owner"); err != nil {
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
		if err := u.BusinessIdentifier.validate(f + ".businessIdentifier"); err != nil {
			return err
		}
	}
	if l.TimeZone == "" {
		return fieldErr("timeZone", "required: an IANA time zone such as Europe/Oslo")
	}
	if _, err := calendarFor(l.TimeZone, l.Cutoff); err != nil {
		return err
	}
	return nil
}
