package ledger

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
)

// GDPR fields are sealed with AES-256-GCM, each entry's under its own random
// key. The keys do not live in the bbolt file: bbolt never zeroes the pages it
// frees, so a deleted key would stay readable there. They live in gdpr.keys, a
// file of fixed 32-byte slots; erasure overwrites the slot with zeros in place
// and fsyncs, after which the sealed text still in the bbolt file (live or in
// freed pages) cannot be read by anyone.
//
// Crash order: new keys are written and fsynced before the bbolt commit that
// refers to them (a crash leaves at most unused slots); an erased slot is
// zeroed and fsynced before the bbolt commit that drops the record (a crash
// leaves a record whose key is gone: it reads as erased).

const (
	keyFileName   = "gdpr.keys"
	keyFileMagic  = "LFGDPRK1\x00\x00\x00\x00\x00\x00\x00\x00"
	keyHeaderSize = 16
	keySize       = 32
)

type keyFile struct {
	f    *os.File
	mu   sync.Mutex // guards next
	next uint64     // first unused slot
}

func openKeyFile(path string) (*keyFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	size := st.Size()
	if size == 0 {
		if _, err := f.WriteAt([]byte(keyFileMagic), 0); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
		size = keyHeaderSize
	}
	hdr := make([]byte, keyHeaderSize)
	if _, err := f.ReadAt(hdr, 0); err != nil || string(hdr) != keyFileMagic {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a ledgerfeed key file", ErrDamaged, path)
	}
	// A torn last slot (crash mid-write) was never referenced by a commit.
	next := uint64(size-keyHeaderSize+keySize-1) / keySize
	return &keyFile{f: f, next: next}, nil
}

func slotOffset(slot uint64) int64 { return keyHeaderSize + int64(slot)*keySize }

// read returns the key in slot, or nil when it has been erased.
func (k *keyFile) read(slot uint64) ([]byte, error) {
	key := make([]byte, keySize)
	if _, err := k.f.ReadAt(key, slotOffset(slot)); err != nil {
		return nil, fmt.Errorf("read gdpr key %d: %w", slot, err)
	}
	if bytes.Equal(key, make([]byte, keySize)) {
		return nil, nil
	}
	return key, nil
}

// keyWrites collects the key file changes of one commit.
type keyWrites struct {
	first   uint64 // slot of newKeys[0]
	newKeys []byte // consecutive new keys
	zero    []uint64
}

// alloc reserves the next slot for a new random key.
func (w *keyWrites) alloc(k *keyFile) (uint64, []byte) {
	if w.newKeys == nil {
		k.mu.Lock()
		w.first = k.next
		k.mu.Unlock()
	}
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	slot := w.first + uint64(len(w.newKeys)/keySize)
	w.newKeys = append(w.newKeys, key...)
	return slot, key
}

// flush writes the collected changes and fsyncs the key file.
func (k *keyFile) flush(w *keyWrites) error {
	if len(w.newKeys) == 0 && len(w.zero) == 0 {
		return nil
	}
	if len(w.newKeys) > 0 {
		if _, err := k.f.WriteAt(w.newKeys, slotOffset(w.first)); err != nil {
			return fmt.Errorf("write gdpr keys: %w", err)
		}
	}
	zeros := make([]byte, keySize)
	for _, slot := range w.zero {
		if _, err := k.f.WriteAt(zeros, slotOffset(slot)); err != nil {
			return fmt.Errorf("erase gdpr key: %w", err)
		}
	}
	if err := k.f.Sync(); err != nil {
		return fmt.Errorf("sync gdpr keys: %w", err)
	}
	if len(w.newKeys) > 0 {
		k.mu.Lock()
		k.next = max(k.next, w.first+uint64(len(w.newKeys)/keySize))
		k.mu.Unlock()
	}
	return nil
}

// sealGDPR returns the stored value for g: slot u64 | nonce | ciphertext.
// aad binds it to its entry's key in the gdpr bucket.
func sealGDPR(slot uint64, key []byte, g GDPR, aad []byte) []byte {
	plain, err := json.Marshal(gdprJSON(g))
	if err != nil {
		panic(err)
	}
	aead := newAEAD(key)
	out := binary.BigEndian.AppendUint64(make([]byte, 0, 8+aead.NonceSize()+len(plain)+aead.Overhead()), slot)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, aad)
}

type gdprJSON struct {
	Name          string `json:"n,omitempty"`
	MaskedPhoneNo string `json:"p,omitempty"`
	Message       string `json:"m,omitempty"`
}

func newAEAD(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // key is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

var errGDPRRecord = errors.New("gdpr record does not decode")

func gdprSlot(v []byte) (uint64, error) {
	if len(v) < 8 {
		return 0, errGDPRRecord
	}
	return binary.BigEndian.Uint64(v), nil
}

// openGDPR decrypts a stored GDPR value. It returns nil when the key has been
// erased.
func (k *keyFile) openGDPR(v, aad []byte) (*GDPR, error) {
	slot, err := gdprSlot(v)
	if err != nil {
		return nil, err
	}
	key, err := k.read(slot)
	if err != nil || key == nil {
		return nil, err
	}
	aead := newAEAD(key)
	ns := aead.NonceSize()
	if len(v) < 8+ns {
		return nil, errGDPRRecord
	}
	plain, err := aead.Open(nil, v[8:8+ns], v[8+ns:], aad)
	if err != nil {
		return nil, fmt.Errorf("gdpr record: %w", err)
	}
	var g gdprJSON
	if err := json.Unmarshal(plain, &g); err != nil {
		return nil, errGDPRRecord
	}
	out := GDPR(g)
	return &out, nil
}
