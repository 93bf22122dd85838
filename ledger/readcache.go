package ledger

import (
	"bytes"
	"slices"
	"sync"
)

// decoded remembers the decoding of small JSON records read on every API
// call (a ledger's record, a client's), keyed by id. A hit needs the stored
// bytes to be equal to those the value was decoded from, so it can never be
// stale: a changed record is a miss and is decoded again. Entries are made
// only for records that exist, so the map is bounded by the store's own
// ledgers and clients.
type decoded[T any] struct {
	m sync.Map // id → *decodedRecord[T]
}

type decodedRecord[T any] struct {
	raw []byte
	val T
}

// get returns the value decoded from raw, decoding it with dec on a miss.
func (d *decoded[T]) get(id string, raw []byte, dec func([]byte) (T, error)) (T, error) {
	if v, ok := d.m.Load(id); ok {
		if r := v.(*decodedRecord[T]); bytes.Equal(r.raw, raw) {
			return r.val, nil
		}
	}
	val, err := dec(raw)
	if err != nil {
		return val, err
	}
	d.m.Store(id, &decodedRecord[T]{raw: bytes.Clone(raw), val: val})
	return val, nil
}

// forget drops id (a deleted record), so the map does not keep it.
func (d *decoded[T]) forget(id string) { d.m.Delete(id) }

// clone returns a copy of r that shares nothing changeable with it: the
// writer changes its tx's copy of a record the readers share.
func (r *ledgerRecord) clone() *ledgerRecord {
	c := *r
	c.SettlesForRecipientHandles = slices.Clone(r.SettlesForRecipientHandles)
	c.SalesUnits = slices.Clone(r.SalesUnits)
	return &c
}
