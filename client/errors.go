package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// APIError is an error the server answered: its HTTP status and the fields
// of its problem+json body.
type APIError struct {
	Status     int
	Title      string
	Detail     string
	ContextID  string        // the server's request id: quote it to the operator
	ErrorCode  int           // 10001 unknown, 10002 validation, …
	RetryAfter time.Duration // from a Retry-After header; 0 when absent
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%d %s", e.Status, e.Title)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.ContextID != "" {
		s += " (contextId " + e.ContextID + ")"
	}
	return s
}

// IsNotFound reports whether err is a 404 answer: an unknown ledger, or one
// the caller has no grant for (the server does not tell them apart).
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// IsNotImplemented reports whether err is a 501 answer: the server does not
// implement that call (an older server may answer 404 instead).
func IsNotImplemented(err error) bool { return statusOf(err) == http.StatusNotImplemented }

func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// ErrDateOpen ends a DateReport iteration whose date is not closed yet: the
// entries yielded so far are what the date has now, not its final report.
var ErrDateOpen = errors.New("ledger date not closed yet (tryLater)")

// ErrSeal is wrapped by every seal verification failure: the data received
// does not match what the server signed, or the signature is bad.
var ErrSeal = errors.New("seal verification failed")
