package server

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
)

// rest wraps an API handler: it sets the request id (the caller's
// X-Request-Id if sane, else random; always sent back), marks every answer
// no-store and nosniff, refuses a body whose declared length is over
// maxBody at once with 413 (none of it is read), and caps the body it lets
// through at maxBody (a handler reading past it gets an
// *http.MaxBytesError, and the connection is closed after the answer).
func (s *Server) rest(maxBody int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := requestID(r.Header.Get(headerRequestID))
		hdr := w.Header()
		hdr.Set(headerRequestID, id)
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("X-Content-Type-Options", "nosniff")
		rc := &restCall{state: restState{id: id}}
		st := &rc.state
		r = r.WithContext(context.WithValue(context.WithValue(r.Context(), restStateKey{}, st), restPageKey{}, &rc.page))
		if r.ContentLength > maxBody {
			hdr.Set("Connection", "close")
			s.httpError(w, r, tooLarge(maxBody))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &restBody{ReadCloser: http.MaxBytesReader(w, r.Body, maxBody), state: st}
		}
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			var sys []any
			for k, v := range r.Header {
				if strings.HasPrefix(strings.ToLower(k), "vipps-system-") && len(v) > 0 {
					sys = append(sys, strings.ToLower(k), cleanAuditText(v[0]))
				}
			}
			s.log.Debug("request", append([]any{"contextId", id, "method", r.Method, "path", r.URL.Path}, sys...)...)
		}
		// A commit wakes every long poll parked at the log's end at once,
		// and each poller asks again as soon as it has its answer. So that
		// the answers go out first, a long poll steps back twice: before its
		// request is handled (answers already woken run first; the new
		// request parks again anyway), and once its answer is sent (sent
		// now, whole, with the length the gateway sets; the connection's
		// own finishing waits behind the other answers). Nothing is
		// skipped or reordered within a request; only which goroutine runs
		// first changes.
		longPoll := strings.Contains(r.URL.RawQuery, "wait=")
		if longPoll {
			st.w = w // page_json.go sendEarly
			runtime.Gosched()
		}
		h.ServeHTTP(w, r)
		st.finish()
		if longPoll && !st.sent && hdr.Get("Content-Length") != "" {
			_ = http.NewResponseController(w).Flush()
			runtime.Gosched()
		}
	})
}

// restCall is what the middleware keeps for one REST request, allocated
// together: its state (problem.go) and the slot of a page answer written
// by its handler (page_json.go).
type restCall struct {
	state restState
	page  restPage
}
