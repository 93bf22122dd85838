package reference

import (
	"net"
	"net/http"
	"strconv"
)

// HTTP is the bare net/http reference the report API's REST benchmarks are
// measured against: a handler that writes the same answer bytes, computed
// beforehand, to every request, with no routing, auth, store read or
// encoding.
type HTTP struct {
	srv *http.Server
	ln  net.Listener
}

// ServeHTTP starts a bare HTTP/1.1 server on addr (e.g. "127.0.0.1:0")
// answering every request with status 200, contentType and body.
func ServeHTTP(addr string, body []byte, contentType string) (*HTTP, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	n := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hd := w.Header()
		hd["Content-Type"] = []string{contentType}
		hd["Content-Length"] = []string{n}
		w.Write(body)
	})
	s := &HTTP{srv: &http.Server{Handler: h}, ln: ln}
	go s.srv.Serve(ln)
	return s, nil
}

// Addr is the listening address (host:port).
func (s *HTTP) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *HTTP) Close() error { return s.srv.Close() }
