package client

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SealType is the "typ" header of a date seal.
const SealType = "ledgerfeed-seal+jwt"

// SealClaims is what the server signs when a ledger date closes.
type SealClaims struct {
	LedgerID       string       `json:"ledgerId"`
	LedgerDate     string       `json:"ledgerDate"`
	Currency       string       `json:"currency"`
	StartTime      string       `json:"startTime"`
	EndTime        string       `json:"endTime"`
	Funds          TopicSummary `json:"funds"`
	Fees           TopicSummary `json:"fees"`
	PrevLedgerDate string       `json:"prevLedgerDate"` // "" on the first sealed date
	PrevSeal       string       `json:"prevSeal"`       // hex SHA-256 of the previous date's seal; "" on the first
	jwt.RegisteredClaims
}

// Topic returns the summary of topic ("funds" or "fees").
func (c *SealClaims) Topic(topic string) (TopicSummary, bool) {
	switch topic {
	case "funds":
		return c.Funds, true
	case "fees":
		return c.Fees, true
	}
	return TopicSummary{}, false
}

// SealDigest is the hex SHA-256 of a compact seal: the next date's prevSeal.
func SealDigest(seal string) string {
	h := sha256.Sum256([]byte(seal))
	return hex.EncodeToString(h[:])
}

// Sealed names a verified date and its seal: the link the next date's seal
// must point to.
type Sealed struct {
	LedgerDate string `json:"ledgerDate"`
	Seal       string `json:"seal"`
}

// Verifier checks date seals with the server's published keys
// (/.well-known/jwks.json), fetched on first use and again when a seal names
// a key it does not know (at most every 10 s). It is safe for concurrent use.
type Verifier struct {
	fetch func(ctx context.Context) (map[string]ed25519.PublicKey, error)

	mu      sync.Mutex
	keys    map[string]ed25519.PublicKey
	fetched time.Time
}

// NewVerifier returns a Verifier that reads the JWKS of c's server.
func (c *Client) NewVerifier() *Verifier {
	return &Verifier{fetch: func(ctx context.Context) (map[string]ed25519.PublicKey, error) {
		var set jwks
		if err := c.call(ctx, "GET", "/.well-known/jwks.json", nil, false, &set, nil); err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
		return set.ed25519()
	}}
}

// NewVerifierWithKeys returns a Verifier that trusts exactly these Ed25519
// keys by kid (a JWKS pinned out of band).
func NewVerifierWithKeys(keys map[string]ed25519.PublicKey) *Verifier {
	return &Verifier{keys: keys, fetched: time.Now(), fetch: func(context.Context) (map[string]ed25519.PublicKey, error) {
		return keys, nil
	}}
}

type jwks struct {
	Keys []struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Kid string `json:"kid"`
		Alg string `json:"alg"`
	} `json:"keys"`
}

// ed25519 returns the set's Ed25519 keys by kid; other keys are skipped.
func (s jwks) ed25519() (map[string]ed25519.PublicKey, error) {
	out := map[string]ed25519.PublicKey{}
	for _, k := range s.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Kid == "" || (k.Alg != "" && k.Alg != "EdDSA") {
			continue
		}
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.X, "="))
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("jwks: key %q: x is not a base64url Ed25519 public key", k.Kid)
		}
		out[k.Kid] = ed25519.PublicKey(b)
	}
	return out, nil
}

func (v *Verifier) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[kid]; ok {
		return k, nil
	}
	if v.keys == nil || time.Since(v.fetched) > 10*time.Second {
		keys, err := v.fetch(ctx)
		if err != nil {
			return nil, err
		}
		v.keys, v.fetched = keys, time.Now()
		if k, ok := v.keys[kid]; ok {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: no key %q in the server's JWKS", ErrSeal, kid)
}

// ParseSeal checks a compact seal's signature (EdDSA only, a key of the
// JWKS by kid, typ ledgerfeed-seal+jwt) and that it seals ledgerID's
// ledgerDate, and returns its claims. It does not check the data: see
// VerifySeal.
func (v *Verifier) ParseSeal(ctx context.Context, ledgerID, ledgerDate, seal string) (*SealClaims, error) {
	var claims SealClaims
	var keyErr error
	_, err := jwt.ParseWithClaims(seal, &claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != SealType {
			return nil, fmt.Errorf("typ %q, want %q", typ, SealType)
		}
		kid, _ := t.Header["kid"].(string)
		k, err := v.key(ctx, kid)
		keyErr = err
		return k, err
	}, jwt.WithValidMethods([]string{"EdDSA"}))
	if err != nil {
		if keyErr != nil && !errors.Is(keyErr, ErrSeal) {
			return nil, keyErr // the JWKS could not be fetched: not a bad seal
		}
		return nil, fmt.Errorf("%w: %s %s: %v", ErrSeal, ledgerID, ledgerDate, err)
	}
	if claims.LedgerID != ledgerID || claims.LedgerDate != ledgerDate {
		return nil, fmt.Errorf("%w: the seal of %s %s names ledger %q date %q", ErrSeal, ledgerID, ledgerDate, claims.LedgerID, claims.LedgerDate)
	}
	return &claims, nil
}

// VerifySeal checks the seal of ledgerID's ledgerDate: its signature, that
// it links to prev (the previous sealed date and its seal; nil when this is
// the ledger's first sealed date), and that both topics' summaries equal got
// (computed by the caller from the entries it received, with TopicChain and
// Summarize). Any mismatch is an error wrapping ErrSeal that says what
// differs.
func (v *Verifier) VerifySeal(ctx context.Context, ledgerID, ledgerDate, seal string, prev *Sealed, got map[string]TopicSummary) (*SealClaims, error) {
	if seal == "" {
		return nil, fmt.Errorf("%w: %s %s has no seal", ErrSeal, ledgerID, ledgerDate)
	}
	c, err := v.ParseSeal(ctx, ledgerID, ledgerDate, seal)
	if err != nil {
		return nil, err
	}
	if err := c.CheckLink(prev); err != nil {
		return c, err
	}
	for _, topic := range Topics {
		want, _ := c.Topic(topic)
		if g := got[topic]; g != want {
			return c, fmt.Errorf("%w: %s %s %s: received %+v, the seal says %+v", ErrSeal, ledgerID, ledgerDate, topic, g, want)
		}
	}
	return c, nil
}

// CheckLink checks that the claims point to prev: its date and the SHA-256
// of its seal (prev nil: no previous seal).
func (c *SealClaims) CheckLink(prev *Sealed) error {
	wantDate, wantSeal := "", ""
	if prev != nil {
		wantDate, wantSeal = prev.LedgerDate, SealDigest(prev.Seal)
	}
	if c.PrevLedgerDate != wantDate || c.PrevSeal != wantSeal {
		return fmt.Errorf("%w: %s %s: links to date %q seal %q, want date %q seal %q",
			ErrSeal, c.LedgerID, c.LedgerDate, c.PrevLedgerDate, c.PrevSeal, wantDate, wantSeal)
	}
	return nil
}

// VerifyDate verifies one closed date from its manifest item and all of its
// entries per topic, in append order. chains holds each topic's chain state
// before the date (TopicChain with LedgerID and Topic set; nil or missing:
// the topic's beginning) and is advanced past the date's entries; prev is
// the previous sealed date (nil for the first). It returns the date as the
// next call's prev. After an error the chains are not usable for the next
// date.
func (v *Verifier) VerifyDate(ctx context.Context, ledgerID string, m DateManifest, prev *Sealed, chains map[string]*TopicChain, entries map[string][]Entry) (*Sealed, error) {
	if m.State != "closed" {
		return nil, fmt.Errorf("%s %s is %s, not closed: it has no seal yet", ledgerID, m.LedgerDate, m.State)
	}
	got := map[string]TopicSummary{}
	for _, topic := range Topics {
		tc := chains[topic]
		if tc == nil {
			tc = &TopicChain{LedgerID: ledgerID, Topic: topic}
			chains[topic] = tc
		}
		before := *tc
		for i := range entries[topic] {
			e := &entries[topic][i]
			if e.LedgerDate != m.LedgerDate {
				return nil, fmt.Errorf("%w: %s %s %s: an entry of date %s", ErrSeal, ledgerID, m.LedgerDate, topic, e.LedgerDate)
			}
			if err := tc.Add(e); err != nil {
				return nil, err
			}
		}
		got[topic] = Summarize(&before, tc)
	}
	if _, err := v.VerifySeal(ctx, ledgerID, m.LedgerDate, m.Seal, prev, got); err != nil {
		return nil, err
	}
	return &Sealed{LedgerDate: m.LedgerDate, Seal: m.Seal}, nil
}
