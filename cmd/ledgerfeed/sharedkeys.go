package main

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// cursorKeyRecord is the record (kind ledger.RecordSecrets) of the cursor
// key that nodes sharing a PostgreSQL store share, so that a cursor from
// one node works on every other.
const cursorKeyRecord = "cursor"

// cursorKeyLen is the length of a cursor key made here, as feed.LoadKey's.
const cursorKeyLen = 32

// sharedCursorKey returns the cursor key kept in the store's records,
// making it first when there is none. The first node to start wins: the
// check and the write are one UpdateRecords, so nodes starting at once all
// get the same key.
func sharedCursorKey(ctx context.Context, recs ledger.Records) ([]byte, error) {
	fresh := make([]byte, cursorKeyLen)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	var key []byte
	err := recs.UpdateRecords(ctx, func(t ledger.RecordTx) error {
		b, err := t.Get(ledger.RecordSecrets, cursorKeyRecord)
		if err != nil {
			return err
		}
		if b != nil {
			key = b
			return nil
		}
		key = fresh
		return t.Put(ledger.RecordSecrets, cursorKeyRecord, fresh)
	})
	if err != nil {
		return nil, fmt.Errorf("cursor key: %w", err)
	}
	if len(key) < cursorKeyLen {
		return nil, fmt.Errorf("cursor key in the store: %d bytes, want %d", len(key), cursorKeyLen)
	}
	return key, nil
}
