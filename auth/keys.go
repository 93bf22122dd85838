package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// The signing keys live in DataDir/keys (mode 0700):
//
//	<kid>.pem   the Ed25519 private key, PKCS#8 PEM, mode 0600
//	index.json  every key ever made, with when it was made and rotated out,
//	            and its public key
//
// A key rotated out keeps verifying tokens for the grace (the token
// lifetime); after it its private key file is deleted, but its public key
// stays in the index and in the JWKS for ever: seals (closed dates' JWS)
// signed with it must stay verifiable with the JWKS alone. Tokens are only
// accepted from keys within their grace, whatever the JWKS lists.
//
//	current     the kid that signs new tokens
//	.lock       taken (flock) while the directory is changed
//
// A rotation writes the new key, then the index, then current, each by an
// atomic rename, so a reader that sees the new current finds everything else.
const (
	keysDirName     = "keys"
	currentFileName = "current"
	indexFileName   = "index.json"
)

// KeysDir returns the directory of the signing keys in a data directory.
func KeysDir(dataDir string) string { return filepath.Join(dataDir, keysDirName) }

type keyIndex struct {
	Keys []keyIndexEntry `json:"keys"`
}

type keyIndexEntry struct {
	Kid       string     `json:"kid"`
	CreatedAt time.Time  `json:"createdAt"`
	RetiredAt *time.Time `json:"retiredAt,omitempty"` // when another key became current
	// Public is the base64url Ed25519 public key. Kept after the private
	// key is deleted, to publish it for verifying seals. Empty in indexes
	// written before it was kept (filled in when the key is next read).
	Public string `json:"public,omitempty"`
}

// signingKey is one of our own keys.
type signingKey struct {
	kid       string
	priv      ed25519.PrivateKey
	pub       ed25519.PublicKey
	retiredAt time.Time // zero while current
}

// kidOf names a public key: base64url of the first 12 bytes of its SHA-256.
func kidOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// validKid reports whether a kid is a plain token ([A-Za-z0-9_-], 1–64
// characters): the only kids ever looked up, so that no kid can name a path
// or a URL.
func validKid(kid string) bool {
	if kid == "" || len(kid) > 64 {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// RotateKeyInDir makes a new signing key in dataDir/keys and makes it the
// current one; the previous key keeps verifying for a token lifetime. It is
// safe while a server runs on the same directory: the server signs with the
// new key within a few seconds and verifies its tokens at once.
func RotateKeyInDir(dataDir string) (kid string, err error) {
	dir := KeysDir(dataDir)
	if err := ensureKeysDir(dir); err != nil {
		return "", err
	}
	return rotateKeys(dir, time.Now(), 0)
}

func ensureKeysDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create key directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("key directory %s: %w", dir, err)
		}
	}
	return nil
}

// rotateKeys makes a new current key in dir. With keep > 0 it also deletes
// the keys rotated out longer than keep ago.
func rotateKeys(dir string, now time.Time, keep time.Duration) (string, error) {
	unlock, err := lockDir(dir)
	if err != nil {
		return "", fmt.Errorf("lock key directory: %w", err)
	}
	defer unlock()
	return rotateLocked(dir, now, keep)
}

func rotateLocked(dir string, now time.Time, keep time.Duration) (string, error) {
	idx, err := readIndex(dir, nil)
	if err != nil {
		return "", err
	}
	cur, err := readCurrent(dir, nil)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	kid := kidOf(pub)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(dir, kid+".pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return "", fmt.Errorf("write signing key: %w", err)
	}
	now = now.UTC()
	if cur != "" && !slices.ContainsFunc(idx.Keys, func(e keyIndexEntry) bool { return e.Kid == cur }) {
		idx.Keys = append(idx.Keys, keyIndexEntry{Kid: cur, CreatedAt: now})
	}
	for i := range idx.Keys {
		if idx.Keys[i].RetiredAt == nil {
			idx.Keys[i].RetiredAt = &now
		}
	}
	idx.Keys = append(idx.Keys, keyIndexEntry{Kid: kid, CreatedAt: now, Public: base64.RawURLEncoding.EncodeToString(pub)})
	if keep > 0 {
		idx.Keys = pruneKeys(dir, idx.Keys, now, keep)
	}
	if err := writeIndex(dir, idx); err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(dir, currentFileName), []byte(kid+"\n")); err != nil {
		return "", fmt.Errorf("write current key marker: %w", err)
	}
	return kid, nil
}

// pruneKeys deletes the private key files of keys rotated out more than
// keep before now. Their entries stay, with the public key (read from the
// file first when the index lacks it), so the JWKS still publishes them.
func pruneKeys(dir string, keys []keyIndexEntry, now time.Time, keep time.Duration) []keyIndexEntry {
	for i := range keys {
		e := &keys[i]
		if e.RetiredAt == nil || now.Sub(*e.RetiredAt) <= keep || !validKid(e.Kid) {
			continue
		}
		path := filepath.Join(dir, e.Kid+".pem")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			continue // pruned before
		}
		if e.Public == "" {
			k, err := readKey(dir, e.Kid, nil)
			if err != nil {
				continue // unreadable: leave the file for an operator to look at
			}
			e.Public = base64.RawURLEncoding.EncodeToString(k.pub)
		}
		os.Remove(path) // a failure leaves a file that verifies nothing more
	}
	return keys
}

func readCurrent(dir string, hook func(string)) (string, error) {
	path := filepath.Join(dir, currentFileName)
	if hook != nil {
		hook(path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	kid := strings.TrimSpace(string(b))
	if !validKid(kid) {
		return "", fmt.Errorf("%s: %q is not a key id", path, kid)
	}
	return kid, nil
}

func readIndex(dir string, hook func(string)) (keyIndex, error) {
	path := filepath.Join(dir, indexFileName)
	if hook != nil {
		hook(path)
	}
	var idx keyIndex
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return idx, nil
	}
	if err != nil {
		return idx, err
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return idx, fmt.Errorf("%s: %w", path, err)
	}
	return idx, nil
}

func writeIndex(dir string, idx keyIndex) error {
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, indexFileName), append(b, '\n')); err != nil {
		return fmt.Errorf("write key index: %w", err)
	}
	return nil
}

func readKey(dir, kid string, hook func(string)) (*signingKey, error) {
	path := filepath.Join(dir, kid+".pem")
	if hook != nil {
		hook(path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseKeyPEM(b, kid, path)
}

// parseKeyPEM parses the PKCS#8 PEM Ed25519 private key of kid; what names
// it in errors.
func parseKeyPEM(b []byte, kid, what string) (*signingKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PKCS#8 PEM private key", what)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", what)
	}
	pub := priv.Public().(ed25519.PublicKey)
	if kidOf(pub) != kid {
		return nil, fmt.Errorf("%s: the key does not match its name", what)
	}
	return &signingKey{kid: kid, priv: priv, pub: pub}, nil
}

// writeFileAtomic writes a 0600 file by rename, synced with its directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// keyStorage is where a key ring keeps its keys: files in a key directory
// (fileKeys) or records of a shared store (recordKeys, keyrecords.go). The
// ring's logic (grace, JWKS, polling) is the same on both.
type keyStorage interface {
	// open makes the first key when there is none (one of several openers
	// at once wins, the others load its key) and forgets the private keys
	// rotated out longer than keep ago.
	open(now time.Time, keep time.Duration) error
	// rotate makes a new current key; with keep > 0 it also forgets the
	// private keys rotated out longer than keep ago.
	rotate(now time.Time, keep time.Duration) (kid string, err error)
	// read returns the current kid, the index, a reader of private keys
	// and a stamp of what was read.
	read() (keySnapshot, error)
	// changed reports whether the current key may have changed since the
	// read that gave stamp.
	changed(stamp any) (bool, error)
}

// keySnapshot is one read of a keyStorage.
type keySnapshot struct {
	current string
	index   keyIndex
	key     func(kid string) (*signingKey, error)
	stamp   any
}

// fileKeys is the keyStorage of a key directory.
type fileKeys struct {
	dir  string
	hook func(path string)
}

func (f *fileKeys) open(now time.Time, keep time.Duration) error {
	if err := ensureKeysDir(f.dir); err != nil {
		return err
	}
	unlock, err := lockDir(f.dir)
	if err != nil {
		return fmt.Errorf("lock key directory: %w", err)
	}
	defer unlock()
	if _, err := readCurrent(f.dir, f.hook); errors.Is(err, fs.ErrNotExist) {
		_, err := rotateLocked(f.dir, now, keep)
		return err
	} else if err != nil {
		return err
	}
	idx, err := readIndex(f.dir, f.hook)
	if err != nil {
		return err
	}
	before, _ := json.Marshal(idx)
	idx.Keys = pruneKeys(f.dir, idx.Keys, now, keep)
	if after, _ := json.Marshal(idx); string(after) != string(before) {
		return writeIndex(f.dir, idx)
	}
	return nil
}

func (f *fileKeys) rotate(now time.Time, keep time.Duration) (string, error) {
	return rotateKeys(f.dir, now, keep)
}

func (f *fileKeys) read() (keySnapshot, error) {
	curPath := filepath.Join(f.dir, currentFileName)
	if f.hook != nil {
		f.hook(curPath)
	}
	stamp, err := os.Stat(curPath)
	if err != nil {
		return keySnapshot{}, err
	}
	kid, err := readCurrent(f.dir, f.hook)
	if err != nil {
		return keySnapshot{}, err
	}
	idx, err := readIndex(f.dir, f.hook)
	if err != nil {
		return keySnapshot{}, err
	}
	return keySnapshot{
		current: kid, index: idx, stamp: stamp,
		key: func(kid string) (*signingKey, error) { return readKey(f.dir, kid, f.hook) },
	}, nil
}

func (f *fileKeys) changed(old any) (bool, error) {
	curPath := filepath.Join(f.dir, currentFileName)
	if f.hook != nil {
		f.hook(curPath)
	}
	fi, err := os.Stat(curPath)
	if err != nil {
		return false, err
	}
	stamp, _ := old.(os.FileInfo)
	same := stamp != nil && os.SameFile(fi, stamp) && fi.ModTime().Equal(stamp.ModTime()) && fi.Size() == stamp.Size()
	return !same, nil
}

// keyRing is the in-memory view of the signing keys in their storage.
type keyRing struct {
	store keyStorage
	now   func() time.Time
	grace time.Duration // how long a rotated-out key keeps verifying
	poll  time.Duration // how often issuing checks the current marker

	mu        sync.RWMutex
	current   *signingKey
	keys      map[string]*signingKey
	archived  []jwk     // public keys past their grace, newest last: seals only
	stamp     any       // of the storage when last loaded
	lastCheck time.Time // monotonic
}

// open makes the first key if there is none, deletes keys past their grace,
// and loads the rest.
func (r *keyRing) open() error {
	if err := r.store.open(r.now(), r.grace); err != nil {
		return err
	}
	return r.load()
}

// rotate makes a new current key and loads it.
func (r *keyRing) rotate() (string, error) {
	kid, err := r.store.rotate(r.now(), r.grace)
	if err != nil {
		return "", err
	}
	return kid, r.load()
}

// load reads the keys from their storage into memory.
func (r *keyRing) load() error {
	snap, err := r.store.read()
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	kid, idx := snap.current, snap.index
	r.mu.RLock()
	old := r.keys
	r.mu.RUnlock()
	keys := make(map[string]*signingKey, len(idx.Keys)+1)
	var archived []jwk
	now := r.now()
	get := func(kid string) (*signingKey, error) {
		if k, ok := old[kid]; ok {
			c := *k
			return &c, nil
		}
		return snap.key(kid)
	}
	for _, e := range idx.Keys {
		if e.Kid == kid || !validKid(e.Kid) {
			continue
		}
		retired := now
		if e.RetiredAt != nil {
			retired = *e.RetiredAt
		}
		archive := func() {
			if pub, err := base64.RawURLEncoding.DecodeString(e.Public); err == nil && len(pub) == ed25519.PublicKeySize {
				archived = append(archived, keyJWK(e.Kid, pub))
			}
		}
		if now.Sub(retired) > r.grace {
			archive()
			continue
		}
		k, err := get(e.Kid)
		if err != nil {
			// A key we cannot read verifies nothing (the current one must
			// load), but its public key, when known, still verifies seals:
			// another process with a shorter grace may have pruned it.
			archive()
			continue
		}
		k.retiredAt = retired
		keys[e.Kid] = k
	}
	cur, err := get(kid)
	if err != nil {
		return fmt.Errorf("signing keys: current key: %w", err)
	}
	cur.retiredAt = time.Time{}
	keys[kid] = cur
	r.mu.Lock()
	r.current, r.keys, r.archived, r.stamp, r.lastCheck = cur, keys, archived, snap.stamp, time.Now()
	r.mu.Unlock()
	return nil
}

// refresh reloads the keys when the current marker has changed since the
// last load. Unless force is set it looks at most once per poll interval.
func (r *keyRing) refresh(force bool) error {
	r.mu.RLock()
	stamp, last := r.stamp, r.lastCheck
	r.mu.RUnlock()
	if !force && time.Since(last) < r.poll {
		return nil
	}
	changed, err := r.store.changed(stamp)
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	if !changed {
		r.mu.Lock()
		r.lastCheck = time.Now()
		r.mu.Unlock()
		return nil
	}
	return r.load()
}

// signer returns the current key, looking for a rotation by another process
// at most once per poll interval.
func (r *keyRing) signer() (*signingKey, error) {
	if err := r.refresh(false); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.current, nil
}

// lookup returns the key of kid if it still verifies. A kid it does not know
// makes it look for a rotation by another process first. kid must have
// passed validKid.
func (r *keyRing) lookup(kid string) (*signingKey, bool) {
	if k, ok := r.find(kid); ok {
		return k, true
	}
	if err := r.refresh(true); err != nil {
		return nil, false
	}
	return r.find(kid)
}

func (r *keyRing) find(kid string) (*signingKey, bool) {
	r.mu.RLock()
	k, ok := r.keys[kid]
	r.mu.RUnlock()
	if !ok || (!k.retiredAt.IsZero() && r.now().Sub(k.retiredAt) > r.grace) {
		return nil, false
	}
	return k, true
}

// verifying returns the keys that still verify, the current one first.
func (r *keyRing) verifying() []*signingKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	out := []*signingKey{r.current}
	for _, k := range r.keys {
		if k != r.current && now.Sub(k.retiredAt) <= r.grace {
			out = append(out, k)
		}
	}
	slices.SortStableFunc(out[1:], func(a, b *signingKey) int { return b.retiredAt.Compare(a.retiredAt) })
	return out
}

// jwk is one JSON Web Key of a JWKS.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// jwks is the key set: the keys that verify tokens (current first, then
// those in their grace, newest first), then the public keys past their
// grace, which verify seals only.
func (r *keyRing) jwks() []byte {
	var set jwkSet
	for _, k := range r.verifying() {
		set.Keys = append(set.Keys, keyJWK(k.kid, k.pub))
	}
	r.mu.RLock()
	var past []*signingKey // loaded, but past their grace since
	for _, k := range r.keys {
		if !slices.ContainsFunc(set.Keys, func(j jwk) bool { return j.Kid == k.kid }) {
			past = append(past, k)
		}
	}
	slices.SortFunc(past, func(a, b *signingKey) int { return b.retiredAt.Compare(a.retiredAt) })
	for _, k := range past {
		set.Keys = append(set.Keys, keyJWK(k.kid, k.pub))
	}
	for i := len(r.archived) - 1; i >= 0; i-- {
		if !slices.ContainsFunc(set.Keys, func(k jwk) bool { return k.Kid == r.archived[i].Kid }) {
			set.Keys = append(set.Keys, r.archived[i])
		}
	}
	r.mu.RUnlock()
	b, _ := json.Marshal(set)
	return b
}

func keyJWK(kid string, pub ed25519.PublicKey) jwk {
	return jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Use: "sig", Alg: "EdDSA"}
}
