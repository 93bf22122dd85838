package auth

import (
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// verifiedTokens remembers the access tokens of this server's own issuer
// whose signature and claims have been checked, so that a client polling
// every few milliseconds does not pay an Ed25519 verification and a JSON
// parse per call. Keyed by the exact token text: a token that differs in
// any byte is a miss and is verified in full. A hit still checks what can
// change after the first verification: the expiry (with Leeway), and that
// the signing key still verifies (not retired past its grace). The client is
// loaded from the store on every call all the same (principal), so deleted
// clients, rotated secrets and changed grants take effect at once.
type verifiedTokens struct {
	mu sync.Mutex
	m  map[string]verifiedToken
}

type verifiedToken struct {
	kid    string
	exp    time.Time
	claims jwt.MapClaims // read-only once cached
}

// maxVerifiedTokens bounds the cache; when full, an arbitrary entry makes
// room (tokens live an hour and clients reuse theirs, so the set of live
// tokens is small).
const maxVerifiedTokens = 4096

func (c *verifiedTokens) get(raw string) (verifiedToken, bool) {
	c.mu.Lock()
	v, ok := c.m[raw]
	c.mu.Unlock()
	return v, ok
}

func (c *verifiedTokens) put(raw string, v verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]verifiedToken)
	}
	if len(c.m) >= maxVerifiedTokens {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[raw] = v
}

func (c *verifiedTokens) drop(raw string) {
	c.mu.Lock()
	delete(c.m, raw)
	c.mu.Unlock()
}

// cachedClaims returns the claims of raw when it was verified before and is
// still good now; ok is false when it must be verified in full.
func (a *Service) cachedClaims(raw string) (jwt.MapClaims, bool) {
	v, ok := a.verified.get(raw)
	if !ok {
		return nil, false
	}
	if !a.now().Before(v.exp.Add(Leeway)) {
		a.verified.drop(raw)
		return nil, false
	}
	if _, ok := a.keys.find(v.kid); !ok {
		a.verified.drop(raw)
		return nil, false
	}
	return v.claims, true
}

// rememberClaims caches a token of this server's issuer just verified.
func (a *Service) rememberClaims(raw string, t *jwt.Token, claims jwt.MapClaims) {
	kid, _ := t.Header["kid"].(string)
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return
	}
	a.verified.put(raw, verifiedToken{kid: kid, exp: exp.Time, claims: claims})
}
