package pgstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// GDPR fields are sealed with AES-256-GCM, each entry's under its own random
// key. The sealed text lives in table gdpr, the key in gdpr_keys; the
// additional data binds a sealed value to its entry (num, topic, seq).
// Erasure deletes both rows in one transaction and then vacuums both tables.
// What that does and does not guarantee inside PostgreSQL (dead tuples, WAL,
// backups) is in docs/postgres.md.

type gdprJSON struct {
	Name          string `json:"n,omitempty"`
	MaskedPhoneNo string `json:"p,omitempty"`
	Message       string `json:"m,omitempty"`
}

func gdprAAD(num int32, topic int16, seq uint64) []byte {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 14), uint32(num))
	b = binary.BigEndian.AppendUint16(b, uint16(topic))
	return binary.BigEndian.AppendUint64(b, seq)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealGDPR returns a fresh key and nonce ‖ ciphertext of g.
func sealGDPR(g ledger.GDPR, aad []byte) (key, sealed []byte, err error) {
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, nil, err
	}
	plain, err := json.Marshal(gdprJSON(g))
	if err != nil {
		return nil, nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return key, aead.Seal(nonce, nonce, plain, aad), nil
}

var errGDPRRecord = errors.New("gdpr record does not decode")

// openGDPR decrypts a sealed value; a nil key or value (erased) gives nil.
func openGDPR(key, sealed, aad []byte) (*ledger.GDPR, error) {
	if key == nil || sealed == nil {
		return nil, nil
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, fmt.Errorf("%w: gdpr key: %v", ledger.ErrDamaged, err)
	}
	ns := aead.NonceSize()
	if len(sealed) < ns {
		return nil, fmt.Errorf("%w: %v", ledger.ErrDamaged, errGDPRRecord)
	}
	plain, err := aead.Open(nil, sealed[:ns], sealed[ns:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: gdpr record: %v", ledger.ErrDamaged, err)
	}
	var g gdprJSON
	if err := json.Unmarshal(plain, &g); err != nil {
		return nil, fmt.Errorf("%w: %v", ledger.ErrDamaged, errGDPRRecord)
	}
	out := ledger.GDPR(g)
	return &out, nil
}

// EraseGDPR erases the GDPR fields of every entry of a ledger (both topics)
// with the given reference or pspReference, and returns how many entries had
// fields erased. Entries, balances and hashes are unchanged. After the commit
// the fields cannot be read through PostgreSQL; the tables are then vacuumed
// so the dead rows' space is reclaimed (see docs/postgres.md for what
// remains in WAL and backups).
func (s *Store) EraseGDPR(ctx context.Context, ledgerID string, by ledger.Erasure) (int, error) {
	if (by.Reference == "") == (by.PSPReference == "") {
		return 0, &ledger.FieldError{Field: "reference", Reason: "exactly one of reference and pspReference is required"}
	}
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	col, value := "reference", by.Reference
	if by.PSPReference != "" {
		col, value = "psp_reference", by.PSPReference
	}
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var num int32
		if err := tx.QueryRow(ctx, "SELECT num FROM ledgers WHERE id = $1", ledgerID).Scan(&num); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("ledger %s: %w", ledgerID, ledger.ErrNotFound)
			}
			return err
		}
		// col is one of two constants above.
		sel := "SELECT topic, seq FROM entries WHERE num = $1 AND " + col + " = $2"
		if col == "reference" {
			sel += " AND reference <> ''"
		}
		tag, err := tx.Exec(ctx, "DELETE FROM gdpr g USING ("+sel+") e WHERE g.num = $1 AND g.topic = e.topic AND g.seq = e.seq", num, value)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		_, err = tx.Exec(ctx, "DELETE FROM gdpr_keys k USING ("+sel+") e WHERE k.num = $1 AND k.topic = e.topic AND k.seq = e.seq", num, value)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("erase gdpr data in ledger %s: %w", ledgerID, err)
	}
	if n > 0 {
		// Reclaim the deleted rows now rather than at autovacuum's leisure.
		// VACUUM cannot run in a transaction; a failure here leaves the data
		// erased (unreadable) and only delays the reclaim.
		if _, err := s.pool.Exec(ctx, "VACUUM gdpr_keys, gdpr"); err != nil {
			s.log.Warn("postgres store: vacuum after gdpr erasure", "err", err)
		}
	}
	return n, nil
}
