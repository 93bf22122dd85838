package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// problem is the REST error body, application/problem+json (RFC 9457) with
// DESIGN.md's contextId and errorCode. Type is "about:blank": the title is
// then the HTTP status phrase, and errorCode tells problems apart.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Instance  string `json:"instance"`
	ContextID string `json:"contextId"`
	ErrorCode int    `json:"errorCode"`
}

// restState is what the REST middleware keeps for one request: its id and,
// for gateway routes, what the body decoder found wrong (reported by the
// gRPC chain once the caller is authenticated, see gateway.go).
type restState struct {
	id        string
	decodeErr error
	done      []func() // run once the answer is written (pool.go)

	// w is the answer's writer, kept for a long poll only: a long poll woken
	// by a commit sends its answer the moment it is written (page_json.go
	// sendEarly), and sent tells everything after that it is gone.
	w    http.ResponseWriter
	sent bool
}

type restStateKey struct{}

func restStateOf(ctx context.Context) *restState {
	st, _ := ctx.Value(restStateKey{}).(*restState)
	return st
}

// contextIDOf returns the request id of a REST request.
func contextIDOf(r *http.Request, w http.ResponseWriter) string {
	if st := restStateOf(r.Context()); st != nil {
		return st.id
	}
	if w == nil {
		return ""
	}
	if id := w.Header().Get(headerRequestID); id != "" {
		return id
	}
	id := newUUID()
	w.Header().Set(headerRequestID, id)
	return id
}

// httpError answers a REST request with the problem of err, mapped by the
// error table (unknown errors are logged and become "internal error").
func (s *Server) httpError(w http.ResponseWriter, r *http.Request, err error) {
	if s.answered(r, err) {
		return
	}
	id := contextIDOf(r, w)
	if row, ok := rowOfError(err); ok && row.restOnly {
		writeProblem(w, r, row, detailOf(err), id)
		return
	}
	s.writeStatus(w, r, toStatus(s.log, id, r.Method+" "+r.URL.Path, err))
}

// answered reports (and logs) an error of a REST request whose answer was
// already sent (restState.sent): nothing may be written after it.
func (s *Server) answered(r *http.Request, err error) bool {
	st := restStateOf(r.Context())
	if st == nil || !st.sent {
		return false
	}
	s.log.Error("error after the answer was sent", "contextId", st.id, "path", r.URL.Path, "err", err)
	return true
}

// writeStatus answers a REST request with the problem of a gRPC status: the
// HTTP status and errorCode of its row in the error table, the status
// message as detail, Retry-After for a rate limit, WWW-Authenticate for 401.
func (s *Server) writeStatus(w http.ResponseWriter, r *http.Request, st *status.Status) {
	if s.answered(r, st.Err()) {
		return
	}
	id := contextIDOf(r, w)
	row := rowOfStatus(st)
	detail := st.Message()
	if row.err == errInternal && st.Code() != codes.Internal {
		// Not a status the chain made (the gateway's own, or a transport
		// failure): log it, answer as any unknown error.
		s.log.Error("internal error", "contextId", id, "path", r.URL.Path, "code", st.Code().String(), "err", st.Message())
		detail = errInternal.Error()
	}
	if d := retryAfterOf(st); d > 0 && row.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(d/time.Second), 10))
	}
	if row.status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ledgerfeed"`)
	}
	writeProblem(w, r, row, detail, id)
}

// writeProblem writes the problem body with the row's status.
func writeProblem(w http.ResponseWriter, r *http.Request, row errorRow, detail, contextID string) {
	p := problem{
		Type:      "about:blank",
		Title:     http.StatusText(row.status),
		Status:    row.status,
		Detail:    detail,
		Instance:  r.URL.Path,
		ContextID: contextID,
		ErrorCode: row.errorCode,
	}
	if p.Title == "" {
		p.Title = "Client Closed Request" // 499
	}
	b := marshalNoEscape(p)
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Trailer")
	h.Del("Transfer-Encoding")
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(row.status)
	w.Write(b)
}

// marshalNoEscape is json.Marshal without HTML escaping ("<" stays "<"),
// with a final newline. For plain structs of strings and numbers: it cannot
// fail.
func marshalNoEscape(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return buf.Bytes()
}

// drain reads what is left of a small request body so that the connection
// can be reused; bodies are capped by the middleware.
func drain(r io.Reader) { io.Copy(io.Discard, r) }
