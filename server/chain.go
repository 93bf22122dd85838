package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// The interceptor chain. Every gRPC call runs it, and so does every REST call
// of the gateway (which reaches the services over a gRPC connection, see
// gateway.go). Outermost first:
//
//	metrics     count and time the call
//	requestID   the contextId: x-request-id metadata if sane, else random;
//	            sent back as x-request-id header metadata
//	audit       after the call: who, what, resource, result, status, contextId
//	errors      panics and core errors become gRPC statuses (errors.go)
//	authn       bearer token → *auth.Principal (401)
//	scope       the method's scope (403)
//	rateLimit   the client's token bucket (429 with Retry-After)
//	restBody    a REST body the marshaler could not decode (400, 413),
//	            reported only now, so that an unauthenticated caller gets 401
//	            first
//
// Handlers then check per-ledger grants with requireLedger.

// call is what the chain knows about one call; handlers reach it with
// callOf.
type call struct {
	id        string
	method    string
	policy    policy
	principal *auth.Principal // nil until authenticated (or for a public method)
	resource  string          // audit resource; set from the request
}

type callKey struct{}

// callOf returns the chain's record of the call in ctx (nil outside the chain).
func callOf(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// principalOf returns the authenticated caller of ctx, or nil.
func principalOf(ctx context.Context) *auth.Principal {
	if c := callOf(ctx); c != nil {
		return c.principal
	}
	return nil
}

// policy is what a method requires and how it is audited.
type policy struct {
	scope  string // required scope; "" = public (no token needed)
	action string // audit action; "" = not audited
	// resource names what the call acts on for the audit log: "ledger"
	// builds ledgers/{ledgerId}[/{topic}][/dates/{ledgerDate}] from the
	// request, "client" clients/{clientId}; anything else is used as is.
	resource string
}

// publicServices answer without a token.
var publicServices = []string{
	"/grpc.health.v1.Health/",
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
}

// policyOf returns a method's policy. A method of no table and no public
// service needs scope admin: new methods fail closed.
func (s *Server) policyOf(method string) policy {
	if p, ok := methodPolicies[method]; ok {
		return p
	}
	for _, prefix := range publicServices {
		if strings.HasPrefix(method, prefix) {
			return policy{}
		}
	}
	return policy{scope: ledger.ScopeAdmin, action: "call", resource: method}
}

func (s *Server) unaryInterceptors() []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{
		s.metrics.unaryInterceptor,
		s.requestIDUnary,
		s.auditUnary,
		s.errorsUnary,
		s.guardUnary,
	}
}

func (s *Server) streamInterceptors() []grpc.StreamServerInterceptor {
	return []grpc.StreamServerInterceptor{
		s.metrics.streamInterceptor,
		s.requestIDStream,
		s.auditStream,
		s.errorsStream,
		s.guardStream,
	}
}

// ---- request id

func (s *Server) newCall(ctx context.Context, method string) (context.Context, *call) {
	if st := restStateOf(ctx); st != nil {
		// A REST call (inproc.go): the middleware chose the id and sends it
		// as the X-Request-Id header itself.
		c := &call{id: st.id, method: method, policy: s.policyOf(method)}
		return context.WithValue(ctx, callKey{}, c), c
	}
	var fromCaller string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(mdRequestID); len(v) > 0 {
			fromCaller = v[0]
		}
	}
	c := &call{id: requestID(fromCaller), method: method, policy: s.policyOf(method)}
	grpc.SetHeader(ctx, metadata.Pairs(mdRequestID, c.id))
	return context.WithValue(ctx, callKey{}, c), c
}

func (s *Server) requestIDUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, c := s.newCall(ctx, info.FullMethod)
	c.resource = resourceOf(c.policy, req)
	return handler(ctx, req)
}

func (s *Server) requestIDStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, _ := s.newCall(ss.Context(), info.FullMethod)
	return handler(srv, &chainStream{ServerStream: ss, ctx: ctx})
}

// chainStream carries the chain's context, and takes the audit resource
// from the first message received.
type chainStream struct {
	grpc.ServerStream
	ctx  context.Context
	seen bool
}

func (w *chainStream) Context() context.Context { return w.ctx }

func (w *chainStream) RecvMsg(m any) error {
	err := w.ServerStream.RecvMsg(m)
	if err == nil && !w.seen {
		w.seen = true
		if c := callOf(w.ctx); c != nil && c.resource == "" {
			c.resource = resourceOf(c.policy, m)
		}
	}
	return err
}

// ---- audit

func (s *Server) auditUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	s.auditCall(ctx, resp, err)
	return resp, err
}

func (s *Server) auditStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	err := handler(srv, ss)
	s.auditCall(ss.Context(), nil, err)
	return err
}

// auditCall writes the audit event of a finished call: every call of an
// audited method by an authenticated caller. Calls refused for want of a
// valid token are not written (there is no one to name; they are counted in
// the metrics), nor are calls refused by the rate limit, so that neither can
// flood the log.
func (s *Server) auditCall(ctx context.Context, resp any, err error) {
	c := callOf(ctx)
	if c == nil || c.policy.action == "" || c.principal == nil || s.auth == nil {
		return
	}
	st := status.Convert(err)
	httpStatus := successStatus(resp)
	if err != nil {
		httpStatus = rowOfStatus(st).status
	}
	if httpStatus == http.StatusTooManyRequests {
		return
	}
	s.auth.Audit(ledger.AuditEvent{
		ClientID:  c.principal.ClientID,
		Action:    c.policy.action,
		Resource:  c.resource,
		Result:    auditResult(httpStatus),
		Status:    httpStatus,
		ContextID: c.id,
	})
}

func auditResult(httpStatus int) string {
	switch {
	case httpStatus < 400:
		return "ok"
	case httpStatus == http.StatusUnauthorized || httpStatus == http.StatusForbidden:
		return "denied"
	}
	return "error"
}

// resourceOf names what a request acts on, for the audit log.
func resourceOf(p policy, req any) string {
	m, ok := req.(proto.Message)
	if !ok {
		return p.resource
	}
	field := func(name protoreflect.Name) string {
		r := m.ProtoReflect()
		fd := r.Descriptor().Fields().ByName(name)
		if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
			return ""
		}
		return r.Get(fd).String()
	}
	var b strings.Builder
	switch p.resource {
	case "ledger":
		b.WriteString("ledgers/" + field("ledger_id"))
		if t := field("topic"); t != "" {
			b.WriteString("/" + t)
		}
		if d := field("ledger_date"); d != "" {
			b.WriteString("/dates/" + d)
		}
		if id := field("schedule_id"); id != "" {
			b.WriteString("/report-schedules/" + id)
		}
	case "client":
		b.WriteString("clients/" + field("client_id"))
	default:
		b.WriteString(p.resource)
	}
	return cleanAuditText(b.String())
}

// cleanAuditText keeps caller-chosen text in audit records short and on one
// line.
func cleanAuditText(s string) string {
	const max = 256
	if len(s) > max {
		s = s[:max]
	}
	return strings.ToValidUTF8(oneLine(s), "?")
}

// ---- errors

func (s *Server) errorsUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.panicked(ctx, info.FullMethod, r)
		}
	}()
	resp, err = handler(ctx, req)
	return resp, s.statusErr(ctx, info.FullMethod, err)
}

func (s *Server) errorsStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.panicked(ss.Context(), info.FullMethod, r)
		}
	}()
	return s.statusErr(ss.Context(), info.FullMethod, handler(srv, ss))
}

func (s *Server) statusErr(ctx context.Context, method string, err error) error {
	if err == nil {
		return nil
	}
	var id string
	if c := callOf(ctx); c != nil {
		id = c.id
	}
	st := toStatus(s.log, id, method, err)
	setRetryTrailer(ctx, st)
	return st.Err()
}

func (s *Server) panicked(ctx context.Context, method string, r any) error {
	var id string
	if c := callOf(ctx); c != nil {
		id = c.id
	}
	s.log.Error("panic in call", "contextId", id, "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return status.Error(codes.Internal, errInternal.Error())
}

// ---- authentication, scope, rate limit, REST body

func (s *Server) guardUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := s.guard(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Server) guardStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.guard(ss.Context()); err != nil {
		return err
	}
	return handler(srv, ss)
}

// guard authenticates the caller, checks the method's scope and the
// caller's rate limit, and then reports a REST body the gateway could not
// decode.
func (s *Server) guard(ctx context.Context) error {
	c := callOf(ctx)
	if c == nil {
		return errors.New("call outside the interceptor chain")
	}
	if c.policy.scope == "" {
		return nil
	}
	if s.auth == nil {
		return fmt.Errorf("%w: authentication is not configured", auth.ErrUnauthenticated)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	raw, err := bearerToken(md.Get("authorization"))
	if err != nil {
		return err
	}
	p, err := s.auth.Verify(ctx, raw)
	if err != nil {
		return err
	}
	c.principal = p
	if !p.HasScope(c.policy.scope) {
		return fmt.Errorf("%w: this call needs scope %s", auth.ErrForbidden, c.policy.scope)
	}
	if err := s.auth.AllowCall(p.ClientID); err != nil {
		return err
	}
	return restBodyError(ctx)
}

// bearerToken returns the token of an "authorization: Bearer <token>"
// metadata value.
func bearerToken(vals []string) (string, error) {
	switch len(vals) {
	case 0:
		return "", fmt.Errorf("%w: missing bearer token (Authorization: Bearer <token>)", auth.ErrUnauthenticated)
	case 1:
	default:
		return "", fmt.Errorf("%w: more than one Authorization header", auth.ErrUnauthenticated)
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", fmt.Errorf("%w: missing bearer token (Authorization: Bearer <token>)", auth.ErrUnauthenticated)
	}
	return tok, nil
}

// requireLedger answers nil when the caller may read ledgerID, and otherwise
// exactly what an unknown ledger answers (NOT_FOUND "ledger ID: not found",
// the store's own text): a partner cannot tell a ledger it has no grant for
// from one that does not exist. Grants alone decide: scope admin reads
// nothing through the report API (it cannot even call it without scope read).
func requireLedger(ctx context.Context, ledgerID string) error {
	p := principalOf(ctx)
	if p == nil || !p.CanRead(ledgerID) {
		return ledgerNotFound(ledgerID)
	}
	return nil
}

// ledgerNotFound is the error of an unknown ledger; report handlers answer
// a store NotFound for a ledger with it too, so both read the same.
func ledgerNotFound(ledgerID string) error {
	return fmt.Errorf("ledger %s: %w", ledgerID, ledger.ErrNotFound)
}

// requireGDPR answers nil when the caller holds GDPR consent for ledgerID
// (call requireLedger first), else PERMISSION_DENIED.
func requireGDPR(ctx context.Context, ledgerID string) error {
	p := principalOf(ctx)
	if p == nil || !p.GDPRConsent(ledgerID) {
		return fmt.Errorf("%w: includeGDPRSensitiveData needs GDPR consent for ledger %s", auth.ErrForbidden, ledgerID)
	}
	return nil
}
