package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Token is an access token as the token endpoints answer it.
type Token struct {
	AccessToken string
	TokenType   string // "Bearer"
	ExpiresIn   int64  // seconds
	IssuedAt    time.Time
	NotBefore   time.Time
	ExpiresAt   time.Time
	Scope       string // space-separated
}

// The "typ" header of our access tokens (RFC 9068).
const tokenType = "at+jwt"

// maxTokenLen bounds the tokens Verify reads.
const maxTokenLen = 8 << 10

// accessClaims are the claims of our own access tokens.
type accessClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	// Gen binds the token to the client record it was issued for, so that a
	// client deleted and created again under the same id does not inherit
	// the old one's tokens.
	Gen string `json:"lf_gen"`
}

// clientGen identifies one incarnation of a client record.
func clientGen(c ledger.Client) string { return strconv.FormatInt(c.CreatedAt.UnixNano(), 36) }

// IssueToken checks a client's credentials and issues an access token
// holding the client's scopes. An unknown client id and a wrong secret cost
// one argon2id check each and fail with the same error: ErrUnauthenticated,
// "invalid client credentials". The caller audits the outcome.
func (a *Service) IssueToken(ctx context.Context, clientID, secret string) (Token, error) {
	c, err := a.store.GetClient(clientID)
	hash := c.SecretHash
	switch {
	case errors.Is(err, ledger.ErrNotFound) || clientID == "":
		hash = dummyHash
	case err != nil:
		return Token{}, fmt.Errorf("issue token: %w", err)
	}
	ok, err := a.checkSecret(ctx, hash, secret)
	if err != nil {
		return Token{}, err
	}
	if !ok || hash == dummyHash {
		return Token{}, errInvalidCredentials
	}
	return a.sign(c)
}

// sign issues a token for a client whose credentials have been checked.
func (a *Service) sign(c ledger.Client) (Token, error) {
	key, err := a.keys.signer()
	if err != nil {
		return Token{}, fmt.Errorf("issue token: %w", err)
	}
	now := a.now().Truncate(time.Second)
	exp := now.Add(a.cfg.TokenTTL)
	scope := strings.Join(c.Scopes, " ")
	claims := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    a.cfg.Issuer,
			Subject:   c.ID,
			Audience:  jwt.ClaimStrings{a.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        randomString(16),
		},
		ClientID: c.ID,
		Scope:    scope,
		Gen:      clientGen(c),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = key.kid
	t.Header["typ"] = tokenType
	raw, err := t.SignedString(key.priv)
	if err != nil {
		return Token{}, fmt.Errorf("issue token: %w", err)
	}
	return Token{
		AccessToken: raw, TokenType: "Bearer", ExpiresIn: int64(a.cfg.TokenTTL / time.Second),
		IssuedAt: now, NotBefore: now, ExpiresAt: exp, Scope: scope,
	}, nil
}

// Principal is the authenticated caller of a request.
type Principal struct {
	ClientID string
	Scopes   []string      // the token's scopes that the client still holds
	Client   ledger.Client // as stored at the time of the request
	External bool          // the token came from an external issuer
}

// HasScope reports whether the caller holds scope.
func (p *Principal) HasScope(s string) bool { return p != nil && slices.Contains(p.Scopes, s) }

// CanRead reports whether the caller may read a ledger: the read scope and
// a grant for it.
func (p *Principal) CanRead(ledgerID string) bool {
	if !p.HasScope(ledger.ScopeRead) {
		return false
	}
	_, ok := p.Client.Grant(ledgerID)
	return ok
}

// GDPRConsent reports whether the caller may read a ledger's GDPR fields.
func (p *Principal) GDPRConsent(ledgerID string) bool {
	if !p.HasScope(ledger.ScopeRead) {
		return false
	}
	g, ok := p.Client.Grant(ledgerID)
	return ok && g.GDPRConsent
}

// RequireScope returns nil if the caller holds scope, else an error wrapping
// ErrForbidden.
func (p *Principal) RequireScope(s string) error {
	if p.HasScope(s) {
		return nil
	}
	return fmt.Errorf("%w: this needs the %s scope", ErrForbidden, s)
}

// CheckLedger returns nil if the caller may read a ledger (with its GDPR
// fields when gdpr is set). Without the read scope it fails with
// ErrForbidden; without a grant with ledger.ErrNotFound, worded as the store
// words an unknown ledger, so the two cannot be told apart; with gdpr but
// no consent with ErrForbidden.
func (p *Principal) CheckLedger(ledgerID string, gdpr bool) error {
	if err := p.RequireScope(ledger.ScopeRead); err != nil {
		return err
	}
	g, ok := p.Client.Grant(ledgerID)
	if !ok {
		return fmt.Errorf("ledger %s: %w", ledgerID, ledger.ErrNotFound)
	}
	if gdpr && !g.GDPRConsent {
		return fmt.Errorf("%w: no consent to GDPR-sensitive data of ledger %s", ErrForbidden, ledgerID)
	}
	return nil
}

// Verify checks an access token — its signature with a pinned algorithm and
// a key found by kid, its typ, exp (required), nbf, iat, iss and aud — and
// loads its client from the store, so that changed grants and deleted
// clients take effect at once. Every failure wraps ErrUnauthenticated except
// a store failure, which is returned as it is.
func (a *Service) Verify(ctx context.Context, raw string) (*Principal, error) {
	if raw == "" {
		return nil, unauthenticated("missing token")
	}
	if len(raw) > maxTokenLen {
		return nil, unauthenticated("invalid token: too long")
	}
	if claims, ok := a.cachedClaims(raw); ok {
		return a.principal(claims, nil)
	}
	// Read the issuer unverified only to pick the rules and keys to check
	// the token with; nothing else is trusted before the signature is.
	peek, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
	if err != nil {
		return nil, unauthenticated("invalid token: malformed")
	}
	iss, _ := peek.Claims.(jwt.MapClaims)["iss"].(string)
	var ext *externalSet
	methods := []string{jwt.SigningMethodEdDSA.Alg()}
	aud := a.cfg.Audience
	if iss != a.cfg.Issuer {
		ext = a.externals[iss]
		if ext == nil {
			return nil, unauthenticated("invalid token: unknown issuer")
		}
		methods = ext.methods()
		aud = ext.cfg.Audience
		if len(methods) == 0 {
			methods = []string{jwt.SigningMethodEdDSA.Alg()}
		}
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(iss),
		jwt.WithAudience(aud),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(a.now),
	)
	claims := jwt.MapClaims{}
	tok, err := p.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		return a.keyFor(t, ext)
	})
	if err != nil {
		return nil, unauthenticated("invalid token: %s", jwtReason(err))
	}
	if ext == nil {
		a.rememberClaims(raw, tok, claims)
	}
	return a.principal(claims, ext)
}

// keyFor finds the verification key of a token whose algorithm the parser
// has already checked against the issuer's list.
func (a *Service) keyFor(t *jwt.Token, ext *externalSet) (any, error) {
	typ, _ := t.Header["typ"].(string)
	kid, _ := t.Header["kid"].(string)
	if !validKid(kid) {
		return nil, errBadKid
	}
	alg := t.Method.Alg()
	if ext == nil {
		if !strings.EqualFold(typ, tokenType) && !strings.EqualFold(typ, "application/"+tokenType) {
			return nil, errBadTyp
		}
		k, ok := a.keys.lookup(kid)
		if !ok {
			return nil, errUnknownKey
		}
		if alg != jwt.SigningMethodEdDSA.Alg() {
			return nil, errKeyAlg
		}
		return k.pub, nil
	}
	switch {
	case typ == "", strings.EqualFold(typ, "JWT"), strings.EqualFold(typ, tokenType), strings.EqualFold(typ, "application/"+tokenType):
	default:
		return nil, errBadTyp
	}
	k, ok := ext.lookup(kid)
	if !ok {
		return nil, errUnknownKey
	}
	if !slices.Contains(k.algs, alg) {
		return nil, errKeyAlg
	}
	switch pub := k.key.(type) {
	case ed25519.PublicKey, *ecdsa.PublicKey, *rsa.PublicKey:
		return pub, nil
	}
	return nil, errKeyAlg
}

// Reasons a keyfunc refuses a token.
var (
	errBadKid     = errors.New("bad or missing kid")
	errBadTyp     = errors.New("not an access token (typ)")
	errUnknownKey = errors.New("unknown key")
	errKeyAlg     = errors.New("wrong algorithm for key")
)

// jwtReason words a parse failure for the caller.
func jwtReason(err error) string {
	for _, r := range []error{errBadKid, errBadTyp, errUnknownKey, errKeyAlg} {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "a required claim is missing"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature or algorithm"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	}
	return "rejected"
}

// principal checks the claims of a verified token against the store.
func (a *Service) principal(claims jwt.MapClaims, ext *externalSet) (*Principal, error) {
	idClaim := "sub"
	if ext != nil {
		idClaim = ext.cfg.ClientIDClaim
	}
	id, _ := claims[idClaim].(string)
	if id == "" {
		return nil, unauthenticated("invalid token: no %s claim", idClaim)
	}
	c, err := a.store.GetClient(id)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, unauthenticated("client %s no longer exists", id)
	}
	if err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	if ext == nil {
		if gen, _ := claims["lf_gen"].(string); gen != clientGen(c) {
			return nil, unauthenticated("client %s no longer exists", id)
		}
	}
	scopes, present := tokenScopes(claims)
	if ext != nil && !present {
		scopes = c.Scopes // an external token without scopes gets the client's
	}
	var held []string
	for _, s := range scopes {
		if c.HasScope(s) && !slices.Contains(held, s) {
			held = append(held, s)
		}
	}
	return &Principal{ClientID: id, Scopes: held, Client: c, External: ext != nil}, nil
}

// tokenScopes reads "scope" (space-separated) or "scp" (a string or a list).
func tokenScopes(claims jwt.MapClaims) ([]string, bool) {
	if s, ok := claims["scope"].(string); ok {
		return strings.Fields(s), true
	}
	switch v := claims["scp"].(type) {
	case string:
		return strings.Fields(v), true
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out, true
	}
	return nil, false
}

// Sign returns a compact JWS of claims signed with the current key (EdDSA,
// with kid and the given typ, "JWT" when empty), verifiable with the JWKS while the key is
// published there. Access tokens are made by IssueToken, not with this.
func (a *Service) Sign(typ string, claims map[string]any) (string, error) {
	key, err := a.keys.signer()
	if err != nil {
		return "", err
	}
	if strings.EqualFold(typ, tokenType) || strings.EqualFold(typ, "application/"+tokenType) {
		return "", fmt.Errorf("sign: typ %q is reserved for access tokens", typ)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(claims))
	t.Header["kid"] = key.kid
	if typ != "" {
		t.Header["typ"] = typ
	}
	return t.SignedString(key.priv)
}
