package reference

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LongPoll is the bare reference of a long-poll feed, for the push-latency
// benchmark: a net/http handler that holds a GET until the next entry is
// published and then writes it, with nothing else (no routing, auth, store,
// cursor MAC, audit or metrics). Entries are numbered 1, 2, …; a request's
// cursor is the last number its client has (none: answer the current end
// at once). An answer is
//
//	{"items":[{"pspReference":"K","pad":"…"}],"tryLater":false,"cursor":"K"}
//
// with pad making the item itemBytes long, so that it is as big as the
// project's own item; a wait that ends with nothing new answers
// {"items":[],"tryLater":true,"cursor":"N"}.
type LongPoll struct {
	srv    *http.Server
	ln     net.Listener
	pad    string
	mu     sync.Mutex
	latest int
	next   chan struct{} // closed by the next Publish
}

// ServeLongPoll starts a LongPoll on addr (e.g. "127.0.0.1:0").
func ServeLongPoll(addr string, itemBytes int) (*LongPoll, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &LongPoll{ln: ln, next: make(chan struct{})}
	if n := itemBytes - len(`{"pspReference":"1234567890","pad":""}`); n > 0 {
		l.pad = strings.Repeat("x", n)
	}
	l.srv = &http.Server{Handler: http.HandlerFunc(l.serve)}
	go l.srv.Serve(ln)
	return l, nil
}

// Addr is the listening address (host:port).
func (l *LongPoll) Addr() string { return l.ln.Addr().String() }

// Close stops the server.
func (l *LongPoll) Close() error { return l.srv.Close() }

// Publish makes entry k (the one after the last published) the feed's end
// and wakes every request waiting for it.
func (l *LongPoll) Publish(k int) {
	l.mu.Lock()
	l.latest = k
	ch := l.next
	l.next = make(chan struct{})
	l.mu.Unlock()
	close(ch)
}

func (l *LongPoll) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	l.mu.Lock()
	latest, ch := l.latest, l.next
	l.mu.Unlock()
	cursor, err := strconv.Atoi(q.Get("cursor"))
	if err != nil {
		l.answer(w, 0, latest)
		return
	}
	if latest <= cursor {
		wait, _ := time.ParseDuration(q.Get("wait"))
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
		l.mu.Lock()
		latest = l.latest
		l.mu.Unlock()
	}
	if latest > cursor {
		l.answer(w, cursor+1, cursor+1)
		return
	}
	l.answer(w, 0, cursor)
}

// answer writes entry k (none when k is 0) with the cursor c.
func (l *LongPoll) answer(w http.ResponseWriter, k, c int) {
	b := make([]byte, 0, 96+len(l.pad))
	if k == 0 {
		b = append(b, `{"items":[],"tryLater":true,"cursor":"`...)
	} else {
		b = append(b, `{"items":[{"pspReference":"`...)
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, `","pad":"`...)
		b = append(b, l.pad...)
		b = append(b, `"}],"tryLater":false,"cursor":"`...)
	}
	b = strconv.AppendInt(b, int64(c), 10)
	b = append(b, `"}`...)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.Write(b)
}
