package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// The REST gateway (grpc-gateway) calls the services in process, through
// the interceptor chain (inproc.go): every REST call runs the same chain as
// a gRPC call (chain.go).
//
// Around the gateway, the REST middleware (rest.go) sets the request id,
// caps the body and keeps a restState in the request's context, which the
// in-process call hands to the chain: the chain takes the request id from
// it, and reports a body the marshaler could not decode (restBodyError)
// once the caller is authenticated.

// restBody is a REST request body as the middleware leaves it: capped, and
// tied to the request's state so the marshaler can record a decode error.
type restBody struct {
	io.ReadCloser
	state *restState
}

// newGateway builds the gateway mux over the in-process services.
func (s *Server) newGateway() (*runtime.ServeMux, error) {
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, wireJSON{}),
		runtime.WithErrorHandler(s.gatewayError),
		runtime.WithRoutingErrorHandler(s.gatewayRoutingError),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithForwardResponseOption(forwardStatus),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithForwardResponseRewriter(preEncode),
		// Every answer carries its length, however long: a client can size
		// its buffer, and a long poll's answer can be sent as soon as it is
		// written (rest.go) without turning chunked.
		runtime.WithWriteContentLength(),
	)
	ctx := context.Background()
	if err := v1.RegisterAdminServiceHandlerServer(ctx, mux, localAdmin{s: s, api: s.adminSrv}); err != nil {
		return nil, err
	}
	if err := v1.RegisterReportServiceHandlerServer(ctx, mux, localReport{s: s, api: s.reportSrv}); err != nil {
		return nil, err
	}
	return mux, nil
}

// restBodyError is the chain's end of a REST body the marshaler could not
// decode: nil when the call has none (and for every gRPC call).
func restBodyError(ctx context.Context) error {
	st := restStateOf(ctx)
	if st == nil || st.decodeErr == nil {
		return nil
	}
	kind := ledger.ErrInvalid
	if errors.Is(st.decodeErr, errTooLarge) {
		kind = errTooLarge
	}
	return &detailedError{kind: kind, err: errors.New(detailOf(st.decodeErr))}
}

// incomingHeader forwards to the chain only the Vipps-System-* headers
// (logged); Authorization the gateway forwards itself, and the request id
// comes from the REST state. Nothing else of the HTTP request becomes
// metadata.
func incomingHeader(key string) (string, bool) {
	k := strings.ToLower(key)
	if strings.HasPrefix(k, "vipps-system-") {
		return k, true
	}
	return "", false
}

// restHeaders are the header metadata of a call that the gateway sends as
// HTTP response headers; the rest stays on the gRPC side (the request id
// the REST middleware sets itself).
var restHeaders = map[string]string{
	"vipps-feed-page-size": "Vipps-Feed-Page-Size",
}

func outgoingHeader(key string) (string, bool) {
	h, ok := restHeaders[strings.ToLower(key)]
	return h, ok
}

// forwardStatus sets the REST status of a successful call other than 200.
func forwardStatus(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	if code := successStatus(m); code != http.StatusOK {
		w.WriteHeader(code)
	}
	return nil
}

// successStatus is the HTTP status of a successful call's response: 201
// for a creation, 202 for an accepted job, 204 for a deletion, else 200. m
// may be the gateway's wrapper of a response with a response_body (it
// embeds the response, so its methods are the response's).
func successStatus(m any) int {
	pm, ok := m.(proto.Message)
	if !ok {
		return http.StatusOK
	}
	created := func() int {
		if c, ok := m.(interface{ GetCreated() bool }); ok && c.GetCreated() {
			return http.StatusCreated
		}
		return http.StatusOK
	}
	switch pm.ProtoReflect().Descriptor().FullName() {
	case "ledgerfeed.v1.PutLedgerResponse", "ledgerfeed.v1.PutReportScheduleResponse":
		return created()
	case "ledgerfeed.v1.CreateClientResponse":
		return http.StatusCreated
	case "ledgerfeed.v1.RequestReportFileResponse":
		return http.StatusAccepted
	case "ledgerfeed.v1.DeleteClientResponse", "ledgerfeed.v1.DeleteReportScheduleResponse":
		return http.StatusNoContent
	}
	return http.StatusOK
}

// gatewayError answers a failed REST call with the problem of its status.
func (s *Server) gatewayError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	var hse *runtime.HTTPStatusError
	if errors.As(err, &hse) {
		err = hse.Err
	}
	if fe := queryParseError(err); fe != nil {
		s.httpError(w, r, fe)
		return
	}
	s.writeStatus(w, r, status.Convert(err))
}

// queryParseError turns the gateway's error for a query value of the wrong
// type ("parsing field \"page_size\": strconv.ParseInt: …") into a field
// error that names the parameter as the caller wrote it and says what is
// expected; nil for any other error.
func queryParseError(err error) *ledger.FieldError {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		return nil
	}
	msg, ok := strings.CutPrefix(st.Message(), `parsing field "`)
	if !ok {
		return nil
	}
	field, detail, ok := strings.Cut(msg, `": `)
	if !ok {
		return nil
	}
	reason := "not a valid value"
	switch {
	case strings.Contains(detail, "ParseInt"), strings.Contains(detail, "ParseUint"):
		reason = "not a whole number"
	case strings.Contains(detail, "ParseBool"):
		reason = "must be true or false"
	case strings.Contains(detail, "invalid duration"), strings.Contains(detail, "duration"):
		reason = "not a duration (such as 30s)"
	case strings.Contains(detail, "parsing time"):
		reason = "not an RFC 3339 time (such as 2024-05-01T12:00:00Z)"
	}
	return &ledger.FieldError{Field: queryName(field), Reason: reason}
}

// queryName is the REST name of a request field: its JSON name.
func queryName(field string) string {
	if field == "include_gdpr_sensitive_data" {
		return "includeGDPRSensitiveData"
	}
	parts := strings.Split(field, "_")
	for i := 1; i < len(parts); i++ {
		if p := parts[i]; p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}

// gatewayRoutingError answers a REST path the gateway has no route for.
func (s *Server) gatewayRoutingError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		s.httpError(w, r, fmt.Errorf("%w: %s %s", errMethodNotAllowed, r.Method, r.URL.Path))
	case http.StatusBadRequest:
		s.httpError(w, r, &ledger.FieldError{Field: "path", Reason: "malformed"})
	default:
		s.httpError(w, r, fmt.Errorf("no such path %s: %w", r.URL.Path, ledger.ErrNotFound))
	}
}
