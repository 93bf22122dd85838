package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ledgerfeed/ledgerfeed/auth"
)

// keysRecordKey is the key of the signing keys' record in a shared store.
const keysRecordKey = auth.KeysRecordKey

// ringRecord is the signing keys' record of a shared store, as package
// auth reads it (auth/keyrecords.go: keysRecord): the key directory's
// index.json entries plus each key's PKCS#8 PEM private key while it has
// one, and the current kid. migrate-store writes it from a key directory
// (auth/keys.go: current, index.json, <kid>.pem); its test serves the copy
// and checks that tokens and seals signed before still verify.
type ringRecord struct {
	Current string     `json:"current"`
	Keys    []ringItem `json:"keys"`
}

type ringItem struct {
	Kid       string     `json:"kid"`
	CreatedAt time.Time  `json:"createdAt"`
	RetiredAt *time.Time `json:"retiredAt,omitempty"`
	Public    string     `json:"public,omitempty"`
	Private   string     `json:"private,omitempty"`
}

// ringKid is auth's name of a public key: base64url of the first 12 bytes
// of its SHA-256.
func ringKid(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// keyRingRecord reads dataDir/keys and returns it as the record value,
// with the number of keys; nil when the directory has no current key.
// Every private key must match its kid and public key; the current key
// must have one.
func keyRingRecord(dataDir string) ([]byte, int, error) {
	dir := auth.KeysDir(dataDir)
	cur, err := os.ReadFile(filepath.Join(dir, "current"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var idx struct {
		Keys []ringItem `json:"keys"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, 0, err
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, 0, fmt.Errorf("index.json: %w", err)
	}
	rec := ringRecord{Current: strings.TrimSpace(string(cur)), Keys: idx.Keys}
	found := false
	for i := range rec.Keys {
		k := &rec.Keys[i]
		if strings.ContainsAny(k.Kid, `/\.`) || k.Kid == "" {
			return nil, 0, fmt.Errorf("index.json: %q is not a key id", k.Kid)
		}
		p, err := os.ReadFile(filepath.Join(dir, k.Kid+".pem"))
		switch {
		case errors.Is(err, os.ErrNotExist):
			// Past its grace: only the public key stays, for seals.
		case err != nil:
			return nil, 0, err
		default:
			pub, err := pemPublic(p)
			if err != nil {
				return nil, 0, fmt.Errorf("%s.pem: %w", k.Kid, err)
			}
			if ringKid(pub) != k.Kid {
				return nil, 0, fmt.Errorf("%s.pem: the key does not match its name", k.Kid)
			}
			enc := base64.RawURLEncoding.EncodeToString(pub)
			if k.Public != "" && k.Public != enc {
				return nil, 0, fmt.Errorf("%s.pem: the key does not match index.json's public key", k.Kid)
			}
			k.Public, k.Private = enc, string(p)
		}
		if k.Public == "" {
			return nil, 0, fmt.Errorf("key %s has neither a private key nor a public key in index.json", k.Kid)
		}
		if k.Kid == rec.Current {
			found = true
			if k.Private == "" {
				return nil, 0, fmt.Errorf("the current key %s has no private key file", k.Kid)
			}
		}
	}
	if !found {
		return nil, 0, fmt.Errorf("the current key %q is not in index.json", rec.Current)
	}
	out, err := json.Marshal(rec)
	return out, len(rec.Keys), err
}

// pemPublic returns the public key of a PKCS#8 PEM Ed25519 private key.
func pemPublic(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PKCS#8 PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("not an Ed25519 key")
	}
	return priv.Public().(ed25519.PublicKey), nil
}

// ringPublicKeys returns the public keys of a signing keys' record by kid.
func ringPublicKeys(value []byte) (map[string]ed25519.PublicKey, string, error) {
	var rec ringRecord
	if err := json.Unmarshal(value, &rec); err != nil {
		return nil, "", err
	}
	out := map[string]ed25519.PublicKey{}
	for _, k := range rec.Keys {
		b, err := base64.RawURLEncoding.DecodeString(k.Public)
		if err != nil || len(b) != ed25519.PublicKeySize || ringKid(b) != k.Kid {
			return nil, "", fmt.Errorf("key %s: the public key is not its own", k.Kid)
		}
		out[k.Kid] = b
	}
	return out, rec.Current, nil
}
