package auth

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func wantLimited(t *testing.T, err error) time.Duration {
	t.Helper()
	var rl *RateLimitError
	if !errors.As(err, &rl) || !errors.Is(err, ErrRateLimited) || err.Error() != "rate limit exceeded" {
		t.Fatalf("err = %v, want a *RateLimitError", err)
	}
	if rl.RetryAfter < time.Second || rl.RetryAfter%time.Second != 0 {
		t.Fatalf("RetryAfter = %v, want whole seconds ≥ 1 s", rl.RetryAfter)
	}
	return rl.RetryAfter
}

func TestService_AllowCall(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.RatePerSecond = 0.5; c.Burst = 3 })
	for i := range 3 {
		if err := e.svc.AllowCall("acme"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	retry := wantLimited(t, e.svc.AllowCall("acme"))
	if retry != 2*time.Second {
		t.Fatalf("RetryAfter = %v, want 2s at 0.5/s", retry)
	}
	// Denied calls take nothing: still limited, and the same wait.
	if r := wantLimited(t, e.svc.AllowCall("acme")); r != retry {
		t.Fatalf("RetryAfter after a denied call = %v, want %v", r, retry)
	}
	// Other clients have their own bucket.
	if err := e.svc.AllowCall("other"); err != nil {
		t.Fatal(err)
	}
	// A client that waits as told gets through.
	e.clock.Add(retry)
	if err := e.svc.AllowCall("acme"); err != nil {
		t.Fatalf("after waiting %v: %v", retry, err)
	}
	wantLimited(t, e.svc.AllowCall("acme"))
}

func TestService_AllowCall_Unlimited(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.RatePerSecond = -1 })
	for range 1000 {
		if err := e.svc.AllowCall("acme"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestService_AllowTokenRequest(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.TokenRatePerMinute, c.TokenBurst = 10, 5 })
	// Per remote address, whatever the client id (and port).
	for i := range 5 {
		if err := e.svc.AllowTokenRequest(fmt.Sprintf("c%d", i), fmt.Sprintf("192.0.2.1:%d", 40000+i)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	retry := wantLimited(t, e.svc.AllowTokenRequest("c9", "192.0.2.1:50000"))
	if retry != 6*time.Second {
		t.Fatalf("RetryAfter = %v, want 6s at 10/min", retry)
	}
	// Per client id, whatever the address.
	for i := range 5 {
		if err := e.svc.AllowTokenRequest("acme", fmt.Sprintf("198.51.100.%d:443", i)); err != nil {
			t.Fatalf("acme request %d: %v", i, err)
		}
	}
	wantLimited(t, e.svc.AllowTokenRequest("acme", "198.51.100.200:443"))
	// The denied request took nothing from the fresh address's bucket.
	for i := range 5 {
		if err := e.svc.AllowTokenRequest(fmt.Sprintf("d%d", i), "198.51.100.200"); err != nil {
			t.Fatalf("fresh address request %d: %v", i, err)
		}
	}
	// IPv6 addresses count by /64.
	for i := range 5 {
		if err := e.svc.AllowTokenRequest(fmt.Sprintf("e%d", i), fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1)); err != nil {
			t.Fatalf("v6 request %d: %v", i, err)
		}
	}
	wantLimited(t, e.svc.AllowTokenRequest("e9", "[2001:db8:1:2:ffff::1]:443"))
	// Waiting as told lets the next one through.
	e.clock.Add(retry)
	if err := e.svc.AllowTokenRequest("c9", "192.0.2.1:50001"); err != nil {
		t.Fatalf("after waiting: %v", err)
	}
}

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:1234":        "192.0.2.1",
		"192.0.2.1":             "192.0.2.1",
		"[::ffff:192.0.2.1]:80": "192.0.2.1",
		"[2001:db8::1]:80":      "2001:db8::/64",
		"[fe80::1%eth0]:80":     "fe80::/64",
		"@":                     "@",
	} {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLimiterMap_Eviction(t *testing.T) {
	m := newLimiterMap(1, 2) // refills in 2 s; swept at most once a minute
	now := time.Unix(1_700_000_000, 0)
	for i := range 1000 {
		m.allow(now, fmt.Sprint(i))
	}
	if m.size() != 1000 {
		t.Fatalf("size %d", m.size())
	}
	// An emptied bucket is not dropped before it has refilled.
	m.allow(now, "hot")
	m.allow(now, "hot")
	wantLimited(t, m.allow(now, "hot"))
	now = now.Add(2 * time.Minute)
	m.allow(now, "fresh")
	if m.size() != 1 {
		t.Fatalf("size after idle sweep %d, want 1", m.size())
	}
}

func TestLimiterMap_Overflow(t *testing.T) {
	m := newLimiterMap(1, 1)
	now := time.Unix(1_700_000_000, 0)
	for i := range maxBuckets {
		m.buckets[fmt.Sprint(i)] = &bucket{lim: rate.NewLimiter(m.limit, m.burst), last: now}
	}
	// A full map puts new keys in one shared bucket.
	if err := m.allow(now, "new-1"); err != nil {
		t.Fatal(err)
	}
	wantLimited(t, m.allow(now, "new-2"))
	if m.size() != maxBuckets {
		t.Fatalf("size %d", m.size())
	}
}
