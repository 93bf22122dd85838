package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters for new hashes: OWASP's first recommendation
// (m=19 MiB, t=2, p=1).
const (
	argonMemory  = 19456 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// SecretPrefix starts every secret NewSecret makes, so that a leaked one is
// easy to recognise (secret scanners, logs).
const SecretPrefix = "lfs_"

// dummyHash is checked against when a token request names an unknown client,
// so that it costs the same as a wrong secret. Nothing hashes to it.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$bGVkZ2VyZmVlZC1kdW1teQ$bGVkZ2VyZmVlZCBkdW1teSBoYXNoOiBubyBtYXRjaCE"

// NewSecret returns a new random client secret: "lfs_" and 32 random bytes
// in base64url.
func NewSecret() string {
	return SecretPrefix + randomString(32)
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashSecret hashes a secret with argon2id into PHC form
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" (unpadded standard base64).
// It waits for a free hashing slot (see Config.MaxConcurrentHashes) and
// returns ctx's error if ctx ends first.
func (a *Service) HashSecret(ctx context.Context, secret string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	p := phc{memory: argonMemory, time: argonTime, threads: argonThreads, salt: salt}
	key, err := a.argon(ctx, p, secret, argonKeyLen)
	if err != nil {
		return "", err
	}
	p.key = key
	return p.String(), nil
}

// checkSecret reports whether secret matches the PHC hash, comparing in
// constant time. An unparsable hash is checked as the dummy hash is, and
// never matches.
func (a *Service) checkSecret(ctx context.Context, hash, secret string) (bool, error) {
	p, err := parsePHC(hash)
	valid := err == nil
	if !valid {
		p, _ = parsePHC(dummyHash)
	}
	key, err := a.argon(ctx, p, secret, len(p.key))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(key, p.key) == 1 && valid, nil
}

// argon runs one argon2id derivation inside the concurrency cap.
func (a *Service) argon(ctx context.Context, p phc, secret string, keyLen int) ([]byte, error) {
	select {
	case a.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-a.hashSlots }()
	if a.onHash != nil {
		a.onHash()
	}
	return argon2.IDKey([]byte(secret), p.salt, p.time, p.memory, p.threads, uint32(keyLen)), nil
}

// phc is an argon2id hash in PHC string form.
type phc struct {
	memory    uint32
	time      uint32
	threads   uint8
	salt, key []byte
}

func (p phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(p.salt), base64.RawStdEncoding.EncodeToString(p.key))
}

var errBadHash = errors.New("not an argon2id PHC hash")

// parsePHC parses a PHC argon2id hash, refusing parameters far beyond what
// HashSecret makes so that a stored value cannot make a check run for long
// or take much memory.
func parsePHC(s string) (phc, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return phc{}, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return phc{}, errBadHash
	}
	var p phc
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil || n != 3 {
		return phc{}, errBadHash
	}
	if p.memory < 8 || p.memory > 256<<10 || p.time < 1 || p.time > 16 || p.threads < 1 || p.threads > 16 {
		return phc{}, errBadHash
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < 8 {
		return phc{}, errBadHash
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < 16 || len(p.key) > 64 {
		return phc{}, errBadHash
	}
	return p, nil
}
