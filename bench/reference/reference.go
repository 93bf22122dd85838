// Package reference holds the bare bbolt loops that ledgerfeed's ingest
// benchmarks measure the ledger store against (see shared/BENCHMARKING.md):
// the least work that still makes the same entry bytes durable, with no
// indexes, no validation, no hash chain and no GDPR key file.
//
// A Loop writes each value under the next sequential 13-byte key (a 5-byte
// ledger|topic prefix and a big-endian u64 sequence, as the store's entries
// bucket keys), one Put per entry, into one bucket. The bbolt file is opened
// with the options the store uses (map freelist, 256 MiB initial mmap) and
// the bucket is written with FillPercent 0.9 as the store writes its
// append-only buckets, so the store is not compared with a differently tuned
// bbolt.
package reference

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// KeyLen is the length of every key a Loop writes.
const KeyLen = 13

var bucketName = []byte("entries")

// keyPrefix stands for ledger 1, topic funds: the store's prefix of a
// one-ledger ingest.
var keyPrefix = [5]byte{0, 0, 0, 1, 1}

// Options tune a Loop. The zero value gives the store's bbolt settings and
// bbolt's own batch defaults.
type Options struct {
	// MaxBatchSize and MaxBatchDelay set db.MaxBatchSize and
	// db.MaxBatchDelay for Batch; 0 keeps bbolt's defaults (1000, 10 ms).
	MaxBatchSize  int
	MaxBatchDelay time.Duration
	// FillPercent of the bucket in each write transaction; 0 means 0.9.
	FillPercent float64
}

// Loop is a raw bbolt ingest loop over one file. Update and Batch are safe
// for concurrent use.
type Loop struct {
	db   *bolt.DB
	fill float64
	next atomic.Uint64 // last sequence handed out
}

// Open creates (or opens) the bbolt file at path with its one bucket.
func Open(path string, o Options) (*Loop, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         time.Second,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 256 << 20,
	})
	if err != nil {
		return nil, err
	}
	if o.MaxBatchSize > 0 {
		db.MaxBatchSize = o.MaxBatchSize
	}
	if o.MaxBatchDelay > 0 {
		db.MaxBatchDelay = o.MaxBatchDelay
	}
	if o.FillPercent == 0 {
		o.FillPercent = 0.9
	}
	l := &Loop{db: db, fill: o.FillPercent}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketName)
		if err != nil {
			return err
		}
		if k, _ := b.Cursor().Last(); len(k) == KeyLen {
			l.next.Store(binary.BigEndian.Uint64(k[5:]))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}

// Close closes the file.
func (l *Loop) Close() error { return l.db.Close() }

// DB returns the underlying bbolt handle (for inspection in tests).
func (l *Loop) DB() *bolt.DB { return l.db }

// Key returns the key of sequence seq.
func Key(seq uint64) []byte {
	k := make([]byte, 0, KeyLen)
	k = append(k, keyPrefix[:]...)
	return binary.BigEndian.AppendUint64(k, seq)
}

// Update writes values in one db.Update (one commit, fsynced), one Put per
// value under consecutive keys. It returns once the commit is durable.
func (l *Loop) Update(values [][]byte) error {
	if len(values) == 0 {
		return errors.New("reference: empty batch")
	}
	first := l.next.Add(uint64(len(values))) - uint64(len(values)) + 1
	return l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		b.FillPercent = l.fill
		for i, v := range values {
			if err := b.Put(Key(first+uint64(i)), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// Batch writes one value with db.Batch, which shares one commit among
// concurrent callers (up to MaxBatchSize of them, or whoever arrived within
// MaxBatchDelay). It returns once that commit is durable. The key is taken
// before the call, so a rerun of the function (bbolt reruns the functions
// of a failed batch one by one) writes the same key and value.
func (l *Loop) Batch(value []byte) error {
	key := Key(l.next.Add(1))
	return l.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		b.FillPercent = l.fill
		return b.Put(key, value)
	})
}

// Count returns the number of entries stored.
func (l *Loop) Count() (int, error) {
	var n int
	err := l.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketName).Stats().KeyN
		return nil
	})
	return n, err
}
