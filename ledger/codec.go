package ledger

import (
	"encoding/binary"
	"errors"
	"github.com/ledgerfeed/ledgerfeed/ledger/chain"
	"hash/crc32"
	"time"
)

// Stored entry value, format 1:
//
//	format u8 = 1 | hash [32] | crc32c u32 | flags u8 | balanceBefore i64 |
//	amount i64 | time µs i64 | ledgerDate u32 |
//	entryId, pspReference, entryType, reference, recipientHandle? (uvarint length + bytes)
//
// crc32c covers every byte but its own, so verify finds a flipped byte in any
// field, including those outside the hash chain (entryId, flags). Sequence,
// ledger, topic and currency come from the key and the ledger record.
const (
	entryFormat     = 1
	flagRecipient   = 1 << 0 // recipientHandle is present (not null)
	flagGDPR        = 1 << 1 // GDPR fields were posted (they may since be erased)
	entryHeaderSize = 1 + 32 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadRecord = errors.New("entry record does not decode")

func encodeEntry(e *Entry) []byte {
	b := make([]byte, entryHeaderSize, 128)
	b[0] = entryFormat
	copy(b[1:33], e.Hash[:])
	var flags byte
	if e.RecipientHandle != nil {
		flags |= flagRecipient
	}
	if e.HasGDPR {
		flags |= flagGDPR
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(e.BalanceBefore))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Amount))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixMicro()))
	b = binary.BigEndian.AppendUint32(b, uint32(e.LedgerDate))
	b = appendStr(b, e.EntryID)
	b = appendStr(b, e.PSPReference)
	b = appendStr(b, e.EntryType)
	b = appendStr(b, e.Reference)
	if e.RecipientHandle != nil {
		b = appendStr(b, *e.RecipientHandle)
	}
	binary.BigEndian.PutUint32(b[33:37], recordCRC(b))
	return b
}

func recordCRC(b []byte) uint32 {
	c := crc32.Update(0, castagnoli, b[:33])
	return crc32.Update(c, castagnoli, b[entryHeaderSize:])
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeEntry decodes a stored value into e. It fills the stored fields
// (e.RecipientHandle may be preset as a hint, see below);
// the caller sets LedgerID, Topic, Sequence and Currency. It checks the crc
// only when checkCRC is set (verify); reads trust the file.
func decodeEntry(b []byte, e *Entry, checkCRC bool) error {
	if len(b) < entryHeaderSize+1+28 || b[0] != entryFormat {
		return errBadRecord
	}
	if checkCRC && binary.BigEndian.Uint32(b[33:37]) != recordCRC(b) {
		return errors.New("entry record checksum mismatch")
	}
	copy(e.Hash[:], b[1:33])
	p := b[entryHeaderSize:]
	flags := p[0]
	e.BalanceBefore = int64(binary.BigEndian.Uint64(p[1:]))
	e.Amount = int64(binary.BigEndian.Uint64(p[9:]))
	e.Time = time.UnixMicro(int64(binary.BigEndian.Uint64(p[17:]))).UTC()
	e.LedgerDate = Date(binary.BigEndian.Uint32(p[25:]))
	// One allocation holds all of the entry's strings; each field is a
	// substring of it.
	str := string(p[29:])
	off, ok := 0, false
	if e.EntryID, off, ok = strAt(str, off); !ok {
		return errBadRecord
	}
	if e.PSPReference, off, ok = strAt(str, off); !ok {
		return errBadRecord
	}
	if e.EntryType, off, ok = strAt(str, off); !ok {
		return errBadRecord
	}
	if e.Reference, off, ok = strAt(str, off); !ok {
		return errBadRecord
	}
	// A recipient handle equal to the one e held on entry is shared, not
	// allocated again: scan passes the previous entry's, and a page of one
	// merchant's entries makes one handle.
	hint := e.RecipientHandle
	e.RecipientHandle = nil
	if flags&flagRecipient != 0 {
		var h string
		if h, off, ok = strAt(str, off); !ok {
			return errBadRecord
		}
		if hint != nil && *hint == h {
			e.RecipientHandle = hint
		} else {
			hh := h
			e.RecipientHandle = &hh
		}
	}
	if off != len(str) {
		return errBadRecord
	}
	e.HasGDPR = flags&flagGDPR != 0
	e.BalanceAfter = e.BalanceBefore + e.Amount // checked when appended; verify re-checks
	return nil
}

// decodeRaw parses a stored value into e without copying or decoding its
// strings: e's byte slices are sub-slices of b. It accepts exactly the
// values decodeEntry accepts (without the crc check) and gives the same
// fields.
func decodeRaw(b []byte, e *RawEntry) error {
	if len(b) < entryHeaderSize+1+28 || b[0] != entryFormat {
		return errBadRecord
	}
	p := b[entryHeaderSize:]
	flags := p[0]
	e.BalanceBefore = int64(binary.BigEndian.Uint64(p[1:]))
	e.Amount = int64(binary.BigEndian.Uint64(p[9:]))
	e.TimeMicros = int64(binary.BigEndian.Uint64(p[17:]))
	e.LedgerDate = Date(binary.BigEndian.Uint32(p[25:]))
	str := p[29:]
	off, ok := 0, false
	if _, off, ok = strAt(str, off); !ok { // entryId
		return errBadRecord
	}
	if e.PSPReference, off, ok = strAt(str, off); !ok {
		return errBadRecord
	}
	if e.EntryType, off, ok = strAt(str, off); !ok {
		return errBadRecord
	}
	if e.Reference, off, ok = strAt(str, off); !ok {
		return errBadRecord
	}
	e.HasRecipient = flags&flagRecipient != 0
	e.RecipientHandle = nil
	if e.HasRecipient {
		if e.RecipientHandle, off, ok = strAt(str, off); !ok {
			return errBadRecord
		}
	}
	if off != len(str) {
		return errBadRecord
	}
	e.HasGDPR = flags&flagGDPR != 0
	e.BalanceAfter = e.BalanceBefore + e.Amount // as decodeEntry
	return nil
}

// strAt reads the uvarint-length-prefixed string at s[off:]; it answers the
// string and the offset after it.
func strAt[S ~string | ~[]byte](s S, off int) (S, int, bool) {
	if off < len(s) && s[off] < 0x80 { // a length under 128: one byte
		n := int(s[off])
		off++
		if n > len(s)-off {
			return s[:0], 0, false
		}
		return s[off : off+n], off + n, true
	}
	var n uint64
	for i, shift := 0, uint(0); ; i, shift = i+1, shift+7 {
		if off >= len(s) || i == binary.MaxVarintLen64 {
			return s[:0], 0, false
		}
		c := s[off]
		off++
		if i == binary.MaxVarintLen64-1 && c > 1 {
			return s[:0], 0, false // overflows 64 bits
		}
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	if n > uint64(len(s)-off) {
		return s[:0], 0, false
	}
	return s[off : off+int(n)], off + int(n), true
}

// Canonical returns the canonical encoding of e that its hash covers; the
// encoding is documented in package chain.
func Canonical(e *Entry) []byte {
	c := chainEntry(e)
	return chain.AppendCanonical(make([]byte, 0, 192), &c)
}

// ChainHash returns SHA-256(prev ‖ Canonical(e)).
func ChainHash(prev [32]byte, e *Entry) [32]byte {
	c := chainEntry(e)
	return chain.Hash(prev, &c)
}

func chainEntry(e *Entry) chain.Entry {
	var date [16]byte
	return chain.Entry{
		LedgerID:        e.LedgerID,
		Topic:           string(e.Topic),
		Sequence:        e.Sequence,
		PSPReference:    e.PSPReference,
		TimeMicros:      e.Time.UnixMicro(),
		LedgerDate:      string(e.LedgerDate.AppendFormat(date[:0])),
		EntryType:       e.EntryType,
		Reference:       e.Reference,
		Currency:        e.Currency,
		Amount:          e.Amount,
		BalanceBefore:   e.BalanceBefore,
		BalanceAfter:    e.BalanceAfter,
		RecipientHandle: e.RecipientHandle,
	}
}
