package auth

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by the service. They are wrapped with a detail for the
// caller ("unauthenticated: token expired"); the server maps them to 401, 403
// and 429.
var (
	// ErrUnauthenticated: a missing, malformed, forged or expired token, or
	// wrong client credentials. Unknown client ids and wrong secrets get the
	// same text: "invalid client credentials".
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the caller is known but may not do this (a missing scope,
	// GDPR data without consent).
	ErrForbidden = errors.New("forbidden")
	// ErrRateLimited: a rate limit was hit; the error is a *RateLimitError.
	ErrRateLimited = errors.New("rate limit exceeded")
)

// RateLimitError says how long to wait before the next call may pass.
type RateLimitError struct {
	RetryAfter time.Duration // whole seconds, at least 1 s
}

func (e *RateLimitError) Error() string { return ErrRateLimited.Error() }

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// errInvalidCredentials is the one answer to a token request with an unknown
// client id or a wrong secret.
var errInvalidCredentials = fmt.Errorf("%w: invalid client credentials", ErrUnauthenticated)

func unauthenticated(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnauthenticated, fmt.Sprintf(format, args...))
}
