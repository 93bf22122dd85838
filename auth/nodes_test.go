package auth

import (
	"errors"
	"testing"
)

// With Nodes = N the configured limits are the whole service's: each node
// enforces 1/N of every rate and burst (a burst at least 1), so N nodes
// sharing the load give a client the configured limit, never N times it.
func TestNodes_DivideTheLimits(t *testing.T) {
	for _, c := range []struct {
		nodes, burst, tokenBurst int
		wantCalls, wantTokens    int
	}{
		{nodes: 0, burst: 10, tokenBurst: 6, wantCalls: 10, wantTokens: 6},
		{nodes: 1, burst: 10, tokenBurst: 6, wantCalls: 10, wantTokens: 6},
		{nodes: 2, burst: 10, tokenBurst: 6, wantCalls: 5, wantTokens: 3},
		{nodes: 3, burst: 10, tokenBurst: 6, wantCalls: 4, wantTokens: 2},
		{nodes: 50, burst: 10, tokenBurst: 6, wantCalls: 1, wantTokens: 1},
	} {
		e := newTestEnv(t, func(cfg *Config) {
			cfg.Nodes = c.nodes
			cfg.RatePerSecond, cfg.Burst = 10, c.burst
			cfg.TokenRatePerMinute, cfg.TokenBurst = 6, c.tokenBurst
		})
		// The clock stands still: only the burst is there to take.
		calls := 0
		for e.svc.AllowCall("acme") == nil {
			calls++
			if calls > 100 {
				t.Fatal("no limit")
			}
		}
		tokens := 0
		var err error
		for err = e.svc.AllowTokenRequest("acme", "192.0.2.1:5000"); err == nil; err = e.svc.AllowTokenRequest("acme", "192.0.2.1:5000") {
			tokens++
			if tokens > 100 {
				t.Fatal("no token limit")
			}
		}
		var rl *RateLimitError
		if !errors.As(err, &rl) {
			t.Fatalf("nodes %d: refusal %v, want a RateLimitError", c.nodes, err)
		}
		if calls != c.wantCalls || tokens != c.wantTokens {
			t.Errorf("nodes %d: %d calls and %d token requests passed, want %d and %d",
				c.nodes, calls, tokens, c.wantCalls, c.wantTokens)
		}
	}
}
