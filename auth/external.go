package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"slices"
	"sync"
)

// ExternalIssuer is another token issuer whose access tokens are accepted.
// Its tokens name a client of this store (by ClientIDClaim), whose grants
// apply as for our own tokens.
type ExternalIssuer struct {
	Issuer        string // the tokens' "iss", exactly
	Audience      string // the "aud" required; "" means Config.Audience
	JWKSFile      string // a JSON Web Key Set file; re-read when a token names a kid it lacks and the file has changed
	ClientIDClaim string // the claim naming the client; "" means "sub"
}

// externalKey is a verification key of an external issuer.
type externalKey struct {
	key  crypto.PublicKey
	algs []string // the JWS algorithms it may verify
}

// externalSet is the loaded JWKS of one external issuer.
type externalSet struct {
	cfg   ExternalIssuer
	hook  func(string)
	mu    sync.RWMutex
	keys  map[string]externalKey
	stamp os.FileInfo
}

func (e *externalSet) load() error {
	if e.hook != nil {
		e.hook(e.cfg.JWKSFile)
	}
	fi, err := os.Stat(e.cfg.JWKSFile)
	if err != nil {
		return fmt.Errorf("external issuer %s: %w", e.cfg.Issuer, err)
	}
	b, err := os.ReadFile(e.cfg.JWKSFile)
	if err != nil {
		return fmt.Errorf("external issuer %s: %w", e.cfg.Issuer, err)
	}
	keys, err := parseJWKS(b)
	if err != nil {
		return fmt.Errorf("external issuer %s: %s: %w", e.cfg.Issuer, e.cfg.JWKSFile, err)
	}
	e.mu.Lock()
	e.keys, e.stamp = keys, fi
	e.mu.Unlock()
	return nil
}

// lookup finds a key by kid, re-reading the file once if it has changed
// since it was loaded. kid must have passed validKid.
func (e *externalSet) lookup(kid string) (externalKey, bool) {
	e.mu.RLock()
	k, ok := e.keys[kid]
	stamp := e.stamp
	e.mu.RUnlock()
	if ok {
		return k, true
	}
	if e.hook != nil {
		e.hook(e.cfg.JWKSFile)
	}
	fi, err := os.Stat(e.cfg.JWKSFile)
	if err != nil || (stamp != nil && os.SameFile(fi, stamp) && fi.ModTime().Equal(stamp.ModTime()) && fi.Size() == stamp.Size()) {
		return externalKey{}, false
	}
	if err := e.load(); err != nil {
		return externalKey{}, false
	}
	e.mu.RLock()
	k, ok = e.keys[kid]
	e.mu.RUnlock()
	return k, ok
}

// methods returns the algorithms this issuer's keys verify.
func (e *externalSet) methods() []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var out []string
	for _, k := range e.keys {
		for _, a := range k.algs {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return out
}

// parseJWKS reads the signature keys of a JWKS that have a kid: OKP Ed25519
// (EdDSA), EC P-256 (ES256), P-384 (ES384) and RSA of 2048 bits or more
// (RS256). Each key verifies only its own algorithm; others are skipped.
func parseJWKS(b []byte) (map[string]externalKey, error) {
	var set jwkSet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, err
	}
	out := make(map[string]externalKey, len(set.Keys))
	for _, k := range set.Keys {
		if !validKid(k.Kid) || (k.Use != "" && k.Use != "sig") {
			continue
		}
		key, alg, err := k.publicKey()
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.Kid, err)
		}
		if key == nil || (k.Alg != "" && k.Alg != alg) {
			continue
		}
		out[k.Kid] = externalKey{key: key, algs: []string{alg}}
	}
	return out, nil
}

// publicKey decodes a JWK; an unsupported kind of key is (nil, "", nil).
func (k jwk) publicKey() (crypto.PublicKey, string, error) {
	dec := base64.RawURLEncoding.DecodeString
	switch k.Kty {
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, "", nil
		}
		x, err := dec(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, "", fmt.Errorf("bad Ed25519 x")
		}
		return ed25519.PublicKey(x), "EdDSA", nil
	case "EC":
		var curve elliptic.Curve
		var alg string
		var size int
		switch k.Crv {
		case "P-256":
			curve, alg, size = elliptic.P256(), "ES256", 32
		case "P-384":
			curve, alg, size = elliptic.P384(), "ES384", 48
		default:
			return nil, "", nil
		}
		x, err1 := dec(k.X)
		y, err2 := dec(k.Y)
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return nil, "", fmt.Errorf("bad EC coordinates")
		}
		// Check the point through the uncompressed encoding, which refuses
		// points off the curve.
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, "", fmt.Errorf("bad EC point: %w", err)
		}
		return pub, alg, nil
	case "RSA":
		n, err1 := dec(k.N)
		e, err2 := dec(k.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return nil, "", fmt.Errorf("bad RSA key")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 || pub.E < 3 || pub.E%2 == 0 {
			return nil, "", fmt.Errorf("RSA key too small or bad exponent")
		}
		return pub, "RS256", nil
	}
	return nil, "", nil
}
