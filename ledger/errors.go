package ledger

import (
	"errors"
	"fmt"
)

// Errors returned by the store, grouped by meaning. Callers test them with
// errors.Is; the server maps each to one gRPC code and HTTP status.
var (
	// ErrInvalid: the input breaks a rule; nothing was written.
	ErrInvalid = errors.New("invalid input")
	// ErrNotFound: the ledger (or another named object) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the input contradicts what is stored (an entryId posted
	// before with other content, a closed date, a balance that would overflow).
	ErrConflict = errors.New("conflict")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store closed")
	// ErrLocked: another process holds the data directory.
	ErrLocked = errors.New("data directory in use by another process")
	// ErrDamaged: the data file is damaged; restore it from a backup.
	ErrDamaged = errors.New("data file damaged")
)

// FieldError names the input field that broke a rule. It wraps ErrInvalid.
type FieldError struct {
	Field  string // e.g. "entries[3].amount"
	Reason string // e.g. "must not be zero"
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// prefixField returns err with its field name prefixed ("entries[2]." + field).
func prefixField(prefix string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Field: prefix + fe.Field, Reason: fe.Reason}
	}
	return err
}

// conflictErr builds an error that wraps ErrConflict with a detail for the caller.
func conflictErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConflict, fmt.Sprintf(format, args...))
}

// VerifyError names the first place where stored data fails verification.
type VerifyError struct {
	LedgerID string
	Topic    Topic  // empty when the fault is not in a topic log
	Sequence uint64 // 0 when the fault is not at one entry
	Reason   string
}

func (e *VerifyError) Error() string {
	switch {
	case e.Topic == "":
		return fmt.Sprintf("ledger %s: %s", e.LedgerID, e.Reason)
	case e.Sequence == 0:
		return fmt.Sprintf("ledger %s topic %s: %s", e.LedgerID, e.Topic, e.Reason)
	}
	return fmt.Sprintf("ledger %s topic %s sequence %d: %s", e.LedgerID, e.Topic, e.Sequence, e.Reason)
}

// Unwrap makes errors.Is(err, ErrDamaged) true.
func (e *VerifyError) Unwrap() error { return ErrDamaged }

func errorsIsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
