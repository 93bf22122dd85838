package ledger

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// checkDataFile reads the two meta pages of a bbolt file and refuses a file
// that bbolt would crash on or silently misread: bad magic or version in both
// metas, or a file shorter than the high-water mark of the meta bbolt would
// use (a truncated file makes bolt.Open die with SIGBUS). A missing or empty
// file is fine: bbolt creates it.
//
// Meta page layout (bbolt internal/common): a 16-byte page header, then
// magic u32, version u32, pageSize u32, flags u32, root pgid u64, root
// sequence u64, freelist pgid u64, high-water pgid u64, txid u64, checksum u64
// (FNV-64a of the 56 bytes before it), in the machine's byte order
// (little-endian on every platform ledgerfeed supports).
func checkDataFile(path string) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size == 0 {
		return nil
	}
	damaged := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s; restore it from a backup (see README, \"Backup and restore\")",
			ErrDamaged, path, fmt.Sprintf(format, args...))
	}
	const metaOff, metaLen = 16, 64
	type meta struct {
		ok       bool
		pageSize uint32
		pgid     uint64
		txid     uint64
	}
	read := func(off int64) meta {
		buf := make([]byte, metaOff+metaLen)
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			return meta{}
		}
		m := buf[metaOff:]
		le := binary.LittleEndian
		h := fnv.New64a()
		h.Write(m[:56])
		if le.Uint32(m[0:]) != 0xED0CDAED || le.Uint32(m[4:]) != 2 || le.Uint64(m[56:]) != h.Sum64() {
			return meta{}
		}
		return meta{ok: true, pageSize: le.Uint32(m[8:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
	}
	m0 := read(0)
	if !m0.ok {
		// Page 0 is damaged: bbolt finds page 1 by the OS page size.
		m0 = read(int64(os.Getpagesize()))
		if !m0.ok {
			return damaged("no valid meta page (the file is not a bbolt file, or its header is damaged)")
		}
	}
	m1 := read(int64(m0.pageSize))
	use := m0
	if m1.ok && m1.txid > m0.txid {
		use = m1
	}
	if use.pageSize < 512 || use.pageSize > 1<<16 {
		return damaged("page size %d in the meta page is not plausible", use.pageSize)
	}
	need := int64(use.pgid) * int64(use.pageSize)
	if size < need {
		return damaged("the file is %d bytes but its last commit needs %d (truncated)", size, need)
	}
	return nil
}

// checkNotLost refuses to start a new store where the data file is missing or
// empty but the GDPR key file beside it holds keys: the data file was lost,
// and a new empty store would hide that.
func checkNotLost(dataPath, keyPath string) error {
	if st, err := os.Stat(dataPath); err == nil && st.Size() > 0 {
		return nil
	}
	st, err := os.Stat(keyPath)
	if err != nil || st.Size() <= keyHeaderSize {
		return nil
	}
	return fmt.Errorf("%w: %s is missing or empty, but %s holds %d keys: the data file was lost; restore it from a backup",
		ErrDamaged, dataPath, keyPath, (st.Size()-keyHeaderSize)/keySize)
}
