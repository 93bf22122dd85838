package ledger

import (
	"encoding/binary"
	"reflect"
	"testing"
	"time"
)

// FuzzEntryCodec: any entry encodes and decodes to itself, and no byte
// string makes decodeEntry panic or read past its input.
func FuzzEntryCodec(f *testing.F) {
	f.Add("e-1", "psp-1", "capture", "order-1", "api:123456", true, int64(-1250), int64(90000), int64(1714600000000000), uint32(20240502), false)
	f.Add("", "", "", "", "", false, int64(0), int64(0), int64(86400e6), uint32(0), true)
	f.Fuzz(func(t *testing.T, id, psp, typ, ref, handle string, hasHandle bool, amount, before, micros int64, date uint32, gdpr bool) {
		in := Entry{EntryID: id, PSPReference: psp, EntryType: typ, Reference: ref,
			Amount: amount, BalanceBefore: before, BalanceAfter: before + amount,
			Time: time.UnixMicro(micros).UTC(), LedgerDate: Date(date), HasGDPR: gdpr}
		if hasHandle {
			in.RecipientHandle = &handle
		}
		rec := encodeEntry(&in)
		var out Entry
		if err := decodeEntry(rec, &out, true); err != nil {
			t.Fatalf("decode of an encoded entry: %v", err)
		}
		in.Hash = out.Hash
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
		}
		// Every truncation, and every prefix with junk after it, is
		// refused or decoded, never a panic.
		for n := range rec {
			var e Entry
			_ = decodeEntry(rec[:n], &e, false)
			_ = decodeEntry(append(rec[:n:n], 0xff, 0xff), &e, false)
		}
	})
}

func TestStrAt(t *testing.T) {
	enc := func(parts ...[]byte) string {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return string(b)
	}
	long := binary.AppendUvarint(nil, 1<<63)
	for _, c := range []struct {
		name string
		in   string
		want string
		next int
		ok   bool
	}{
		{"empty string", enc([]byte{0}), "", 1, true},
		{"short", enc([]byte{3}, []byte("abc"), []byte("z")), "abc", 4, true},
		{"two-byte length", enc(binary.AppendUvarint(nil, 200), make([]byte, 200)), string(make([]byte, 200)), 202, true},
		{"length past the end", enc([]byte{4}, []byte("abc")), "", 0, false},
		{"no length", "", "", 0, false},
		{"unterminated varint", enc([]byte{0x80, 0x80}), "", 0, false},
		{"huge length", enc(long), "", 0, false},
		{"varint over 64 bits", enc([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}), "", 0, false},
	} {
		got, next, ok := strAt(c.in, 0)
		if got != c.want || next != c.next || ok != c.ok {
			t.Errorf("%s: strAt = %q, %d, %v; want %q, %d, %v", c.name, got, next, ok, c.want, c.next, c.ok)
		}
	}
}
