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

	bolt "go.etcd.io/bbolt"
)

// GDPR fields are sealed with AES-256-GCM, each entry's under its own random
// key. The keys do not live in the bbolt file: bbolt never zeroes the pages it
// frees, so a deleted key would stay readable there. They live in gdpr.keys, a
// file of fixed 32-byte slots; erasure overwrites the slot with zeros in place
// and fsyncs, after which the sealed text still in the bbolt file (live or in
// freed pages) cannot be read by anyone.
//
// Crash order: keys are generated and fsynced in chunks ahead of use, so a
// bbolt commit only ever refers to durable keys, and it records the
// high-water mark of used slots itself (a crash leaves at most unused
// slots, which are used later); an erased slot is zeroed and fsynced before
// the bbolt commit that drops the record (a crash leaves a record whose key
// is gone: it reads as erased).

const (
	keyFileName   = "gdpr.keys"
	keyFileMagic  = "LFGDPRK1\x00\x00\x00\x00\x00\x00\x00\x00"
	keyHeaderSize = 16
	keySize       = 32
)

type keyFile struct {
	f      *os.File
	noSync bool // tests only

	// Slots below next may be referenced by committed records; next is kept
	// in the bbolt meta bucket and moves only when a commit that uses new
	// slots succeeds. Slots [next, synced) hold fresh random keys that are
	// already durable in the file, so a commit that seals GDPR fields needs
	// no fsync of its own: the pool is refilled keyPoolChunk keys at a time.
	// Only the writer goroutine touches these fields.
	next   uint64
	synced uint64
	pool   []byte // the keys of slots [next, synced)
}

const keyPoolChunk = 4096

var metaGDPRNext = []byte("gdprNext")

// openKeyFile opens the key file; next is the first slot no committed record
// refers to (from the meta bucket).
func openKeyFile(path string, next uint64, noSync bool) (*keyFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	k := &keyFile{f: f, noSync: noSync}
	if err := k.load(path, next); err != nil {
		f.Close()
		return nil, err
	}
	return k, nil
}

func (k *keyFile) load(path string, next uint64) error {
	st, err := k.f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size == 0 {
		if _, err := k.f.WriteAt([]byte(keyFileMagic), 0); err != nil {
			return err
		}
		size = keyHeaderSize
	}
	hdr := make([]byte, keyHeaderSize)
	if _, err := k.f.ReadAt(hdr, 0); err != nil || string(hdr) != keyFileMagic {
		return fmt.Errorf("%w: %s is not a ledgerfeed key file", ErrDamaged, path)
	}
	// A torn last slot (crash mid-write) was never referenced by a commit.
	k.synced = uint64(size-keyHeaderSize) / keySize
	if next > k.synced {
		return fmt.Errorf("%w: %s holds %d keys but the data file uses %d", ErrDamaged, path, k.synced, next)
	}
	k.next = next
	// The unused slots may hold a chunk whose write a crash cut short; they
	// get fresh keys, written and synced before any of them is used.
	k.pool = make([]byte, (k.synced-next)*keySize)
	if len(k.pool) > 0 {
		if _, err := rand.Read(k.pool); err != nil {
			return err
		}
		if _, err := k.f.WriteAt(k.pool, slotOffset(next)); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := k.sync(); err != nil {
			return err
		}
	}
	return nil
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

// refill appends keyPoolChunk fresh random keys to the file and fsyncs it.
func (k *keyFile) refill() error {
	fresh := make([]byte, keyPoolChunk*keySize)
	if _, err := rand.Read(fresh); err != nil {
		return err
	}
	if _, err := k.f.WriteAt(fresh, slotOffset(k.synced)); err != nil {
		return fmt.Errorf("write gdpr keys: %w", err)
	}
	if err := k.sync(); err != nil {
		return err
	}
	k.synced += keyPoolChunk
	k.pool = append(k.pool, fresh...)
	return nil
}

func (k *keyFile) sync() error {
	if k.noSync {
		return nil
	}
	if err := k.f.Sync(); err != nil {
		return fmt.Errorf("sync gdpr keys: %w", err)
	}
	return nil
}

// keyWrites collects the key file changes of one transaction.
type keyWrites struct {
	used int      // slots taken from the pool, starting at keyFile.next
	zero []uint64 // slots to erase
}

// alloc takes the next pooled key for a record of this transaction.
func (w *keyWrites) alloc(k *keyFile) (uint64, []byte, error) {
	slot := k.next + uint64(w.used)
	if slot >= k.synced {
		if err := k.refill(); err != nil {
			return 0, nil, err
		}
	}
	off := w.used * keySize
	w.used++
	return slot, k.pool[off : off+keySize], nil
}

// prepare makes the transaction's key changes durable before its commit:
// erased slots are zeroed and synced, and the new high-water mark of used
// slots is put into the meta bucket of the same transaction.
func (k *keyFile) prepare(w *keyWrites, meta *bolt.Bucket) error {
	if len(w.zero) > 0 {
		zeros := make([]byte, keySize)
		for _, slot := range w.zero {
			if _, err := k.f.WriteAt(zeros, slotOffset(slot)); err != nil {
				return fmt.Errorf("erase gdpr key: %w", err)
			}
		}
		if err := k.sync(); err != nil {
			return err
		}
	}
	if w.used > 0 {
		return meta.Put(metaGDPRNext, itob(k.next+uint64(w.used)))
	}
	return nil
}

// committed moves the pool past the slots a successful commit used.
func (k *keyFile) committed(w *keyWrites) {
	k.next += uint64(w.used)
	k.pool = k.pool[w.used*keySize:]
	if len(k.pool) == 0 {
		k.pool = nil
	}
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
