package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Errors of the server itself; the table below maps them like core errors.
var (
	// errAlreadyExists marks a conflict that is "this id exists" (gRPC
	// ALREADY_EXISTS rather than ABORTED). It wraps ledger.ErrConflict.
	errAlreadyExists = fmt.Errorf("%w: already exists", ledger.ErrConflict)
	// errTooLarge: a request body or message over the size limit.
	errTooLarge = errors.New("request too large")
	// errGone: an endpoint that was removed (REST only).
	errGone = errors.New("gone")
	// errMethodNotAllowed: a REST path that exists, with another method.
	errMethodNotAllowed = errors.New("method not allowed")
	// errInternal is what the caller of a failed call sees for an error the
	// table does not know; the error itself is logged with the contextId.
	errInternal = errors.New("internal error")
)

// alreadyExists turns a conflict into errAlreadyExists, keeping its detail.
func alreadyExists(err error) error {
	if errors.Is(err, ledger.ErrConflict) && !errors.Is(err, errAlreadyExists) {
		return &detailedError{kind: errAlreadyExists, err: err}
	}
	return err
}

// detailedError is err reported as kind (errors.Is matches both), with err's
// text as the detail.
type detailedError struct {
	kind error
	err  error
}

func (e *detailedError) Error() string   { return e.err.Error() }
func (e *detailedError) Unwrap() []error { return []error{e.kind, e.err} }

// errorRow is one line of the error table.
type errorRow struct {
	err       error      // matched with errors.Is; nil for a row only the code reaches
	code      codes.Code // the gRPC status code
	status    int        // the HTTP status
	errorCode int        // problem+json errorCode
	restOnly  bool       // an HTTP answer no gRPC status maps to
}

// Problem errorCodes. 10001 and 10002 are the Vipps Report API's own.
const (
	codeUnknown         = 10001
	codeValidation      = 10002
	codeUnauthenticated = 10003
	codeForbidden       = 10004
	codeNotFound        = 10005
	codeConflict        = 10006
	codeRateLimited     = 10007
	codeTooLarge        = 10008
	codeUnavailable     = 10009
	codeGone            = 10010
)

// errorTable is the one mapping of errors: core error → gRPC code → HTTP
// status and problem errorCode. An error takes the first row it matches
// (errors.Is), so more specific rows come first. A gRPC status takes the
// first row of its code; RESOURCE_EXHAUSTED is 429 when it carries a
// RetryInfo (a rate limit) and 413 when it does not (gRPC's own "message
// larger than max" has none). No HTTP status is chosen anywhere else.
var errorTable = []errorRow{
	{ledger.ErrInvalid, codes.InvalidArgument, http.StatusBadRequest, codeValidation, false},
	{ledger.ErrNotFound, codes.NotFound, http.StatusNotFound, codeNotFound, false},
	{errAlreadyExists, codes.AlreadyExists, http.StatusConflict, codeConflict, false},
	{ledger.ErrConflict, codes.Aborted, http.StatusConflict, codeConflict, false},
	{ledger.ErrClosed, codes.Unavailable, http.StatusServiceUnavailable, codeUnavailable, false},
	{auth.ErrUnauthenticated, codes.Unauthenticated, http.StatusUnauthorized, codeUnauthenticated, false},
	{auth.ErrForbidden, codes.PermissionDenied, http.StatusForbidden, codeForbidden, false},
	{auth.ErrRateLimited, codes.ResourceExhausted, http.StatusTooManyRequests, codeRateLimited, false},
	{errTooLarge, codes.ResourceExhausted, http.StatusRequestEntityTooLarge, codeTooLarge, false},
	{context.DeadlineExceeded, codes.DeadlineExceeded, http.StatusGatewayTimeout, codeUnknown, false},
	{context.Canceled, codes.Canceled, 499, codeUnknown, false}, // 499: client closed request
	{errGone, codes.Unimplemented, http.StatusGone, codeGone, true},
	{errMethodNotAllowed, codes.Unimplemented, http.StatusMethodNotAllowed, codeNotFound, true},
	{nil, codes.Unimplemented, http.StatusNotImplemented, codeUnknown, false},
	{nil, codes.FailedPrecondition, http.StatusBadRequest, codeValidation, false},
	{nil, codes.OutOfRange, http.StatusBadRequest, codeValidation, false},
	{errInternal, codes.Internal, http.StatusInternalServerError, codeUnknown, false},
}

// rowOfError returns the row of a core error, or false.
func rowOfError(err error) (errorRow, bool) {
	for _, r := range errorTable {
		if r.err != nil && errors.Is(err, r.err) {
			return r, true
		}
	}
	return errorRow{}, false
}

// rowOfStatus returns the row of a gRPC status (Internal's for a code the
// table lacks).
func rowOfStatus(st *status.Status) errorRow {
	code := st.Code()
	if code == codes.ResourceExhausted && retryAfterOf(st) == 0 {
		return rowFor(errTooLarge)
	}
	for _, r := range errorTable {
		if r.code == code && !r.restOnly {
			return r
		}
	}
	return rowFor(errInternal)
}

func rowFor(err error) errorRow {
	r, _ := rowOfError(err)
	return r
}

// detailOf is the text a caller sees for a known error: a field error's
// "field: reason", else the error's text without a leading sentinel text
// ("unauthenticated: token expired" → "token expired"; the status says it).
func detailOf(err error) string {
	var fe *ledger.FieldError
	if errors.As(err, &fe) {
		return fe.Error()
	}
	s := err.Error()
	if row, ok := rowOfError(err); ok && row.err != nil {
		s = strings.TrimPrefix(s, row.err.Error()+": ")
	}
	return s
}

// toStatus turns an error from a handler or an interceptor into the gRPC
// status of the call. A status error passes through. An error the table does
// not know is logged with the contextId and becomes INTERNAL "internal
// error". A rate limit carries a RetryInfo detail.
func toStatus(log *slog.Logger, contextID, method string, err error) *status.Status {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return st
	}
	row, ok := rowOfError(err)
	if !ok || row.err == errInternal {
		log.Error("internal error", "contextId", contextID, "method", method, "err", err)
		return status.New(codes.Internal, errInternal.Error())
	}
	st := status.New(row.code, detailOf(err))
	var rl *auth.RateLimitError
	if errors.As(err, &rl) {
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retrySeconds(rl.RetryAfter))}); derr == nil {
			st = d
		}
	}
	return st
}

// retrySeconds rounds a wait up to whole seconds, at least one.
func retrySeconds(d time.Duration) time.Duration {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		s = 1
	}
	return time.Duration(s) * time.Second
}

// retryAfterOf returns the RetryInfo delay of a status, 0 when none.
func retryAfterOf(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return retrySeconds(ri.GetRetryDelay().AsDuration())
		}
	}
	return 0
}

// setRetryTrailer sends a rate-limited call's wait, in whole seconds, as
// the trailer metadata "retry-after" too (for clients that read no details).
func setRetryTrailer(ctx context.Context, st *status.Status) {
	if st == nil || st.Code() != codes.ResourceExhausted {
		return
	}
	if d := retryAfterOf(st); d > 0 {
		grpc.SetTrailer(ctx, metadata.Pairs("retry-after", strconv.FormatInt(int64(d/time.Second), 10)))
	}
}
