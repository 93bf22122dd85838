package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// The signing keys of a shared store (several nodes on one PostgreSQL
// database) live in one record, kind ledger.RecordSigningKeys, key
// KeysRecordKey: the same index as a key directory's index.json, plus the
// current kid and each key's private key (PKCS#8 PEM) until it is past its
// grace. Every change is one UpdateRecords, so of two nodes making the first
// key at once one wins and the other loads its key, and a rotation on one
// node is one atomic change the others see at their next poll (or at once
// when a token names a key they do not know).
//
// KeysRecordKey is the key of that record.
const KeysRecordKey = "ring"

// recordTimeout bounds one read or write of the key record.
const recordTimeout = 10 * time.Second

// minRecordCheck is the least time between two reads of the key record to
// look for a rotation (or the poll interval when shorter), so that tokens
// naming unknown kids cannot make every request a database read.
const minRecordCheck = 250 * time.Millisecond

type keysRecord struct {
	Current string           `json:"current"`
	Keys    []keyRecordEntry `json:"keys"`
}

type keyRecordEntry struct {
	keyIndexEntry
	// Private is the PKCS#8 PEM private key; dropped once the key is past
	// its grace (Public stays, for seals).
	Private string `json:"private,omitempty"`
}

// recordKeys is the keyStorage of a shared store's records.
type recordKeys struct {
	recs     ledger.Records
	minCheck time.Duration // least time between two looks for a rotation

	mu        sync.Mutex
	lastRead  time.Time // monotonic
	lastValue string
}

// RotateKeyInRecords makes a new signing key in a shared store's records
// and makes it the current one; the previous key keeps verifying for a
// token lifetime. Every server on the store signs with the new key within a
// few seconds and verifies its tokens at once.
func RotateKeyInRecords(recs ledger.Records) (kid string, err error) {
	return (&recordKeys{recs: recs}).rotate(time.Now(), 0)
}

func (s *recordKeys) get() (keysRecord, []byte, error) {
	var rec keysRecord
	b, err := s.recs.GetRecord(ledger.RecordSigningKeys, KeysRecordKey)
	if errors.Is(err, ledger.ErrNotFound) {
		return rec, nil, nil
	}
	if err != nil {
		return rec, nil, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, nil, fmt.Errorf("signing key record: %w", err)
	}
	return rec, b, nil
}

func (s *recordKeys) update(fn func(rec *keysRecord) (bool, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	return s.recs.UpdateRecords(ctx, func(t ledger.RecordTx) error {
		var rec keysRecord
		b, err := t.Get(ledger.RecordSigningKeys, KeysRecordKey)
		if err != nil {
			return err
		}
		if b != nil {
			if err := json.Unmarshal(b, &rec); err != nil {
				return fmt.Errorf("signing key record: %w", err)
			}
		}
		write, err := fn(&rec)
		if err != nil || !write {
			return err
		}
		out, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return t.Put(ledger.RecordSigningKeys, KeysRecordKey, out)
	})
}

// newKeyEntry makes a key and its record entry.
func newKeyEntry(now time.Time) (keyRecordEntry, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return keyRecordEntry{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return keyRecordEntry{}, err
	}
	return keyRecordEntry{
		keyIndexEntry: keyIndexEntry{Kid: kidOf(pub), CreatedAt: now.UTC(), Public: base64.RawURLEncoding.EncodeToString(pub)},
		Private:       string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
	}, nil
}

// rotateRecord makes e current in rec, retiring the others.
func rotateRecord(rec *keysRecord, e keyRecordEntry, now time.Time, keep time.Duration) {
	now = now.UTC()
	for i := range rec.Keys {
		if rec.Keys[i].RetiredAt == nil {
			rec.Keys[i].RetiredAt = &now
		}
	}
	rec.Keys = append(rec.Keys, e)
	rec.Current = e.Kid
	if keep > 0 {
		pruneRecord(rec, now, keep)
	}
}

// pruneRecord drops the private keys of keys rotated out more than keep
// before now, and reports whether it dropped any.
func pruneRecord(rec *keysRecord, now time.Time, keep time.Duration) bool {
	pruned := false
	for i := range rec.Keys {
		e := &rec.Keys[i]
		if e.RetiredAt != nil && now.Sub(*e.RetiredAt) > keep && e.Private != "" && e.Kid != rec.Current {
			e.Private = ""
			pruned = true
		}
	}
	return pruned
}

func (s *recordKeys) open(now time.Time, keep time.Duration) error {
	e, err := newKeyEntry(now)
	if err != nil {
		return err
	}
	return s.update(func(rec *keysRecord) (bool, error) {
		if rec.Current == "" {
			rotateRecord(rec, e, now, keep)
			return true, nil
		}
		return pruneRecord(rec, now, keep), nil
	})
}

func (s *recordKeys) rotate(now time.Time, keep time.Duration) (string, error) {
	e, err := newKeyEntry(now)
	if err != nil {
		return "", err
	}
	err = s.update(func(rec *keysRecord) (bool, error) {
		rotateRecord(rec, e, now, keep)
		return true, nil
	})
	if err != nil {
		return "", err
	}
	return e.Kid, nil
}

func (s *recordKeys) read() (keySnapshot, error) {
	rec, raw, err := s.get()
	if err != nil {
		return keySnapshot{}, err
	}
	s.mu.Lock()
	s.lastRead, s.lastValue = time.Now(), string(raw)
	s.mu.Unlock()
	if !validKid(rec.Current) {
		return keySnapshot{}, fmt.Errorf("signing key record: current key %q is not a key id", rec.Current)
	}
	idx := keyIndex{Keys: make([]keyIndexEntry, len(rec.Keys))}
	for i, e := range rec.Keys {
		idx.Keys[i] = e.keyIndexEntry
	}
	key := func(kid string) (*signingKey, error) {
		i := slices.IndexFunc(rec.Keys, func(e keyRecordEntry) bool { return e.Kid == kid })
		if i < 0 || rec.Keys[i].Private == "" {
			return nil, fmt.Errorf("signing key record: no private key %s", kid)
		}
		return parseKeyPEM([]byte(rec.Keys[i].Private), kid, "signing key record: key "+kid)
	}
	return keySnapshot{current: rec.Current, index: idx, key: key, stamp: string(raw)}, nil
}

func (s *recordKeys) changed(old any) (bool, error) {
	s.mu.Lock()
	recent := time.Since(s.lastRead) < s.minCheck && s.lastValue == old
	s.mu.Unlock()
	if recent {
		return false, nil
	}
	b, err := s.recs.GetRecord(ledger.RecordSigningKeys, KeysRecordKey)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	s.lastRead = time.Now()
	s.mu.Unlock()
	prev, _ := old.(string)
	return string(b) != prev, nil
}
