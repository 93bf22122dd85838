package auth

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// AllowCall takes one API call from a client's token bucket, or fails with a
// *RateLimitError saying when the next call may pass.
func (a *Service) AllowCall(clientID string) error {
	return a.apiLimits.allow(a.now(), clientID)
}

// AllowTokenRequest takes one token request from the buckets of the client
// id and of the remote address (host and port or a bare IP; an IPv6 address
// counts by its /64). A request passes only when both have a token, and
// then takes one from each.
func (a *Service) AllowTokenRequest(clientID, remoteAddr string) error {
	return a.tokenLimits.allow(a.now(), "c:"+clientID, "a:"+addrKey(remoteAddr))
}

// AllowUnauthenticated takes one attempt without a valid token from the
// remote address's bucket (the token endpoint's limits, a bucket of its
// own): plain HTTP routes that audit every attempt, such as report file
// downloads, refuse a flood of anonymous attempts instead of logging it.
func (a *Service) AllowUnauthenticated(remoteAddr string) error {
	return a.tokenLimits.allow(a.now(), "u:"+addrKey(remoteAddr))
}

// addrKey is the rate-limit key of a remote address.
func addrKey(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func perSecond(r float64) rate.Limit {
	if r < 0 {
		return rate.Inf
	}
	return rate.Limit(r)
}

// limiterMap holds one token bucket per key. Buckets idle long enough to
// have refilled are dropped, since a new bucket is the same; when the map
// still holds maxBuckets, new keys share one overflow bucket, so a flood of
// new keys can neither grow memory nor reset a bucket it has emptied.
type limiterMap struct {
	limit rate.Limit
	burst int
	idle  time.Duration // time for an empty bucket to refill

	mu        sync.Mutex
	buckets   map[string]*bucket
	overflow  *bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

const maxBuckets = 100000

func newLimiterMap(limit rate.Limit, burst int) *limiterMap {
	idle := time.Minute
	if limit != rate.Inf && limit > 0 {
		if d := time.Duration(float64(burst) / float64(limit) * float64(time.Second)); d > idle {
			idle = d
		}
	}
	return &limiterMap{
		limit: limit, burst: burst, idle: idle,
		buckets:  map[string]*bucket{},
		overflow: &bucket{lim: rate.NewLimiter(limit, burst)},
	}
}

// allow takes one token from the bucket of every key at now, or none.
func (m *limiterMap) allow(now time.Time, keys ...string) error {
	if m.limit == rate.Inf {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	var wait time.Duration
	rs := make([]*rate.Reservation, 0, len(keys))
	for _, k := range keys {
		b := m.get(k, now)
		r := b.lim.ReserveN(now, 1)
		rs = append(rs, r)
		if !r.OK() {
			wait = max(wait, time.Second) // burst 0: never; say 1 s
			continue
		}
		wait = max(wait, r.DelayFrom(now))
	}
	if wait <= 0 {
		return nil
	}
	for _, r := range rs {
		r.CancelAt(now)
	}
	return &RateLimitError{RetryAfter: roundUpSecond(wait)}
}

func (m *limiterMap) get(k string, now time.Time) *bucket {
	b, ok := m.buckets[k]
	if !ok {
		if len(m.buckets) >= maxBuckets {
			b = m.overflow
		} else {
			b = &bucket{lim: rate.NewLimiter(m.limit, m.burst)}
			m.buckets[k] = b
		}
	}
	b.last = now
	return b
}

// sweep drops the buckets idle for longer than a refill, at most once per
// idle period, or once a second while the map is full.
func (m *limiterMap) sweep(now time.Time) {
	since := now.Sub(m.lastSweep)
	if since < m.idle && (len(m.buckets) < maxBuckets || since < time.Second) {
		return
	}
	m.lastSweep = now
	for k, b := range m.buckets {
		if now.Sub(b.last) > m.idle {
			delete(m.buckets, k)
		}
	}
}

// size reports how many buckets are held (tests).
func (m *limiterMap) size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buckets)
}

func roundUpSecond(d time.Duration) time.Duration {
	s := (d + time.Second - 1) / time.Second * time.Second
	return max(s, time.Second)
}
