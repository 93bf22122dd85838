package server

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ledgerfeed/ledgerfeed/auth"
)

// Limits bound what one request or one client may take. Zero fields take
// the defaults.
type Limits struct {
	// MaxBodyBytes caps a REST request body (413 beyond; a declared
	// Content-Length over it is refused before any of the body is read).
	MaxBodyBytes int64
	// MaxHeaderBytes caps the request line and headers (431 beyond).
	MaxHeaderBytes int
	// MaxRecvMsgBytes caps a received gRPC message (RESOURCE_EXHAUSTED).
	MaxRecvMsgBytes int
	// ReadHeaderTimeout, ReadTimeout (headers and body), WriteTimeout (from
	// the end of the headers to the end of the answer: above the 60 s long
	// poll) and IdleTimeout (keep-alive) of the REST listener.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxLongPollsPerClient bounds the long polls (feed wait, SubscribeFeed)
	// one client holds open at once (429 beyond).
	MaxLongPollsPerClient int
}

// Defaults of Limits.
const (
	DefaultMaxBodyBytes          = 10 << 20
	DefaultMaxHeaderBytes        = 64 << 10
	DefaultMaxRecvMsgBytes       = 16 << 20
	DefaultReadHeaderTimeout     = 10 * time.Second
	DefaultReadTimeout           = 60 * time.Second
	DefaultWriteTimeout          = 90 * time.Second
	DefaultIdleTimeout           = 2 * time.Minute
	DefaultMaxLongPollsPerClient = 4

	// tokenMaxBodyBytes caps the body of a token request (a form at most).
	tokenMaxBodyBytes = 64 << 10
)

func (l Limits) withDefaults() Limits {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxRecvMsgBytes <= 0 {
		l.MaxRecvMsgBytes = DefaultMaxRecvMsgBytes
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.ReadTimeout, DefaultReadTimeout)
	def(&l.WriteTimeout, DefaultWriteTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxLongPollsPerClient <= 0 {
		l.MaxLongPollsPerClient = DefaultMaxLongPollsPerClient
	}
	return l
}

// pollSlots bounds the long polls each client holds at once.
type pollSlots struct {
	mu  sync.Mutex
	max int
	n   map[string]int
}

func newPollSlots(max int) *pollSlots { return &pollSlots{max: max, n: make(map[string]int)} }

// acquire takes one of clientID's slots; release gives it back (call it
// exactly once). With every slot taken it fails with a rate limit error
// (429, Retry-After 1 s).
func (p *pollSlots) acquire(clientID string) (release func(), err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[clientID] >= p.max {
		return nil, &detailedError{
			kind: &auth.RateLimitError{RetryAfter: time.Second},
			err:  fmt.Errorf("%w: at most %d long polls at once per client", auth.ErrRateLimited, p.max),
		}
	}
	p.n[clientID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.n[clientID]--; p.n[clientID] <= 0 {
				delete(p.n, clientID)
			}
		})
	}, nil
}

// tooLarge is the error of a body over limit bytes.
func tooLarge(limit int64) error {
	return &detailedError{kind: errTooLarge, err: errors.New(fmt.Sprintf("request body larger than %d bytes", limit))}
}
