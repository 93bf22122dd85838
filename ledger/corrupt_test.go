package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var corruptNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// corruptCopy copies the files of data directory src into a fresh one.
func corruptCopy(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{DataFileName, keyFileName} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// openNoCrash opens dir and turns a panic or memory fault inside Open into a
// test error: Open must refuse a damaged file with an error, never crash.
func openNoCrash(t *testing.T, dir string) (s *Store, err error) {
	t.Helper()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("Open panicked instead of returning ErrDamaged: %v\n%s", r, debug.Stack())
			s, err = nil, fmt.Errorf("%w: (test) Open panicked: %v", ErrDamaged, r)
		}
	}()
	s, err = Open(dir, Options{Now: func() time.Time { return corruptNow }})
	if s != nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// rawEntry returns the stored value of one entry, as bytes in the data file.
func rawEntry(t *testing.T, s *Store, id string, topic Topic, seq uint64) []byte {
	t.Helper()
	var raw []byte
	if err := s.view(id, func(tx *bolt.Tx, rec *ledgerRecord) error {
		raw = bytes.Clone(tx.Bucket(bucketEntries).Get(seqKey(rec.Num, topic, seq)))
		return nil
	}); err != nil || raw == nil {
		t.Fatalf("raw entry %s/%s/%d: %v (found %v)", id, topic, seq, err, raw != nil)
	}
	return raw
}

// corruptBuildStore makes a closed store with two ledgers, each topic holding
// six entries in two batches, and returns its directory.
func corruptBuildStore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, Options{Now: func() time.Time { return corruptNow }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mustPutLedger(t, s, "810001", "NOK", "Europe/Oslo", "")
	mustPutLedger(t, s, "810002", "EUR", "Europe/Helsinki", "04:00")
	for _, id := range []string{"810001", "810002"} {
		for _, topic := range Topics {
			for b := range 2 {
				in := make([]EntryInput, 3)
				for i := range in {
					seq := b*3 + i + 1
					in[i] = EntryInput{
						EntryID:      fmt.Sprintf("%s-%s-%d", id, topic, seq),
						PSPReference: fmt.Sprintf("psp-%s-%s-%d", id, topic, seq),
						Time:         corruptNow.Add(-time.Duration(10-seq) * time.Hour),
						EntryType:    map[Topic]string{TopicFunds: "capture", TopicFees: "capture-fee"}[topic],
						Reference:    fmt.Sprintf("order-%d", seq),
						Amount:       int64(1000 * seq),
						Name:         "Kunde",
					}
					if seq%2 == 0 {
						in[i].RecipientHandle = strp("NO:42")
					}
				}
				if _, err := s.Append(ctx, id, topic, in); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if _, err := s.Verify(ctx, nil); err != nil {
		t.Fatalf("verify the undamaged store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Cut the megabytes of zeros bbolt preallocates after the last commit,
	// so that copies are cheap (TestOpen_TruncatedFile shows it is harmless).
	path := filepath.Join(dir, DataFileName)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 64<<10)
	n, _ := f.ReadAt(head, 0)
	f.Close()
	pageSize, _, hw := boltMeta(t, head[:n])
	if err := os.Truncate(path, int64(hw*pageSize)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestVerify_FlippedByte flips one byte of one stored entry (in each of its
// fields, on a fresh copy each time) and expects Verify to name that entry.
func TestVerify_FlippedByte(t *testing.T) {
	base := corruptBuildStore(t)
	targets := []struct {
		ledger string
		topic  Topic
		seq    uint64 // 1: the first; 3: mid-log; 6: the head
	}{
		{"810002", TopicFees, 3},
		{"810001", TopicFunds, 6},
		{"810002", TopicFunds, 1},
	}
	for _, tg := range targets {
		s, err := Open(base, Options{Now: func() time.Time { return corruptNow }})
		if err != nil {
			t.Fatal(err)
		}
		raw := rawEntry(t, s, tg.ledger, tg.topic, tg.seq)
		es, err := s.Entries(tg.ledger, tg.topic, tg.seq, 1, ReadOptions{})
		s.Close()
		if err != nil || len(es) != 1 {
			t.Fatalf("read target: %v %v", es, err)
		}
		e := es[0]
		// Offsets per the format in codec.go.
		p := entryHeaderSize // flags
		positions := map[string]int{
			"hash":          1 + 17,
			"crc":           33 + 2,
			"flags":         p,
			"balanceBefore": p + 1 + 7,
			"amount":        p + 9 + 7,
			"time":          p + 17 + 6,
			"ledgerDate":    p + 25 + 3,
			"entryId":       bytes.Index(raw, []byte(e.EntryID)) + 2,
			"pspReference":  bytes.Index(raw, []byte(e.PSPReference)) + 5,
			"entryType":     bytes.Index(raw, []byte(e.EntryType)) + 1,
			"reference":     bytes.LastIndex(raw, []byte(e.Reference)) + 1,
		}
		if e.RecipientHandle != nil {
			positions["recipientHandle"] = len(raw) - 1
		}
		for _, field := range slices.Sorted(maps.Keys(positions)) {
			pos := positions[field]
			t.Run(fmt.Sprintf("%s/%s/%d/%s", tg.ledger, tg.topic, tg.seq, field), func(t *testing.T) {
				if pos <= 0 || pos >= len(raw) {
					t.Fatalf("no position for %s in the %d-byte record", field, len(raw))
				}
				dir := corruptCopy(t, base)
				path := filepath.Join(dir, DataFileName)
				file, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				// bbolt copies pages on write and leaves the old copies in
				// freed pages: flip the byte in every copy of the record.
				n := 0
				for off := 0; ; {
					i := bytes.Index(file[off:], raw)
					if i < 0 {
						break
					}
					file[off+i+pos] ^= 0xff
					n++
					off += i + len(raw)
				}
				if n == 0 {
					t.Fatalf("the record of %s/%s/%d is not in the data file", tg.ledger, tg.topic, tg.seq)
				}
				if err := os.WriteFile(path, file, 0o600); err != nil {
					t.Fatal(err)
				}
				s, err := openNoCrash(t, dir)
				if err != nil {
					t.Fatalf("open after flipping a byte of an entry: %v", err)
				}
				_, err = s.Verify(context.Background(), nil)
				var ve *VerifyError
				if !errors.As(err, &ve) || !errors.Is(err, ErrDamaged) {
					t.Fatalf("flipped %s byte (offset %d, %d copies): Verify returned %v, want a *VerifyError", field, pos, n, err)
				}
				if ve.LedgerID != tg.ledger || ve.Topic != tg.topic || ve.Sequence != tg.seq {
					t.Fatalf("flipped %s byte of %s/%s/%d: Verify blames %s/%s/%d: %v", field, tg.ledger, tg.topic, tg.seq, ve.LedgerID, ve.Topic, ve.Sequence, err)
				}
			})
		}
	}
}

// boltMeta reads the meta page bbolt would use from a data file: page size,
// root page and high-water page (the layout is described in filecheck.go).
func boltMeta(t *testing.T, file []byte) (pageSize, root, hw uint64) {
	t.Helper()
	le := binary.LittleEndian
	var txid uint64
	for _, off := range []int{0, os.Getpagesize()} {
		if len(file) < off+80 {
			continue
		}
		m := file[off+16:]
		if le.Uint32(m) != 0xED0CDAED {
			continue
		}
		if tx := le.Uint64(m[48:]); pageSize == 0 || tx > txid {
			pageSize, root, hw, txid = uint64(le.Uint32(m[8:])), le.Uint64(m[16:]), le.Uint64(m[40:]), tx
		}
	}
	if pageSize == 0 {
		t.Fatal("no meta page")
	}
	return pageSize, root, hw
}

// TestOpen_TruncatedFile cuts the data file short at several lengths, and
// replaces it with garbage: Open must refuse it with ErrDamaged, never crash
// (a truncated mmapped file makes bbolt die with SIGBUS).
func TestOpen_TruncatedFile(t *testing.T) {
	base := corruptBuildStore(t)
	file, err := os.ReadFile(filepath.Join(base, DataFileName))
	if err != nil {
		t.Fatal(err)
	}
	pageSize, _, hw := boltMeta(t, file)
	used := int64(hw * pageSize) // the end of the last commit
	t.Logf("data file %d bytes, %d up to its last commit, page size %d", len(file), used, pageSize)
	ps := int64(pageSize)

	damaged := []struct {
		name string
		size int64
	}{
		{"half of what is in use", used / 2},
		{"one page short", used - ps},
		{"one byte short", used - 1},
		{"both meta pages only", 2 * ps},
		{"first meta page and part of the second", ps + 100},
		{"100 bytes", 100},
		{"10 bytes", 10},
	}
	for _, c := range damaged {
		t.Run(c.name, func(t *testing.T) {
			dir := corruptCopy(t, base)
			path := filepath.Join(dir, DataFileName)
			if err := os.Truncate(path, c.size); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			s, err := openNoCrash(t, dir)
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("open a data file truncated to %d of %d bytes: got %v (store %v), want ErrDamaged", c.size, used, err, s != nil)
			}
			if s != nil {
				t.Fatal("Open returned a store with its error")
			}
			if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "backup") {
				t.Errorf("message %q should name %s and say to restore a backup", msg, path)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Open took %v to refuse the file", d)
			}
		})
	}

	// Trailing preallocated space is not data: cutting it off is harmless.
	t.Run("cut to its last commit", func(t *testing.T) {
		dir := corruptCopy(t, base) // corruptBuildStore cut it
		if st, err := os.Stat(filepath.Join(dir, DataFileName)); err != nil || st.Size() != used {
			t.Fatalf("copy: %v %v, want %d bytes", st, err, used)
		}
		s, err := openNoCrash(t, dir)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if rep, err := s.Verify(context.Background(), nil); err != nil || rep.Entries != 24 {
			t.Fatalf("verify: %+v %v", rep, err)
		}
		if _, err := s.Append(context.Background(), "810001", TopicFunds, []EntryInput{{
			EntryID: "after-cut", PSPReference: "p", Time: corruptNow.Add(-time.Minute), EntryType: "capture", Amount: 1,
		}}); err != nil {
			t.Fatalf("append after the cut: %v", err)
		}
	})

	// An empty file is what a crash right after creating it leaves: bbolt
	// initialises it (filecheck.go), so Open makes a new, empty store — but
	// not when gdpr.keys beside it holds keys: then the data file was lost.
	t.Run("0 bytes", func(t *testing.T) {
		dir := corruptCopy(t, base)
		if err := os.Truncate(filepath.Join(dir, DataFileName), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := openNoCrash(t, dir); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "lost") {
			t.Fatalf("open an empty data file beside a key file with keys: got %v, want ErrDamaged", err)
		}
		if err := os.Remove(filepath.Join(dir, keyFileName)); err != nil {
			t.Fatal(err)
		}
		s, err := openNoCrash(t, dir)
		if err != nil {
			t.Fatalf("open an empty data file: %v", err)
		}
		if ls, err := s.ListLedgers("", 10); err != nil || len(ls) != 0 {
			t.Fatalf("ledgers in a store made from an empty file: %v %v", ls, err)
		}
	})

	rng := rand.New(rand.NewPCG(7, 11))
	garbage := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"random garbage", garbage(1 << 20)},
		{"random garbage shorter than a page", garbage(1000)},
		{"valid meta pages, garbage after them", append(bytes.Clone(file[:2*ps]), garbage(int(used-2*ps))...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := corruptCopy(t, base)
			path := filepath.Join(dir, DataFileName)
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := openNoCrash(t, dir)
			if !errors.Is(err, ErrDamaged) || s != nil {
				t.Fatalf("open %s: got %v, want ErrDamaged", c.name, err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("message %q does not name the file", err)
			}
		})
	}
}

// TestOpen_DamagedRootPage zeroes the root page of the data file, or the root
// page of one bucket, leaving both meta pages and the freelist valid: Open
// must refuse the file with ErrDamaged (store.go initSchema: "It reads the
// root and every bucket's root page, so a damaged one is refused here"), not
// panic inside bbolt, nor open a store whose first read panics.
func TestOpen_DamagedRootPage(t *testing.T) {
	base := corruptBuildStore(t)
	s, err := Open(base, Options{Now: func() time.Time { return corruptNow }})
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]uint64{}
	if err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if pg := uint64(tx.Bucket(name).Root()); pg != 0 { // 0: inline, it has no page
				pages["root page of bucket "+string(name)] = pg
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if pages["root page of bucket entries"] == 0 {
		t.Fatalf("the entries bucket is inline: the store is too small for this test (%v)", pages)
	}
	head := make([]byte, 64<<10)
	f, err := os.Open(filepath.Join(base, DataFileName))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := f.ReadAt(head, 0)
	f.Close()
	pageSize, root, _ := boltMeta(t, head[:n])
	pages["root page"] = root

	for _, name := range slices.Sorted(maps.Keys(pages)) {
		pg := pages[name]
		t.Run(name, func(t *testing.T) {
			dir := corruptCopy(t, base)
			path := filepath.Join(dir, DataFileName)
			file, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			clear(file[pg*pageSize : (pg+1)*pageSize])
			if err := os.WriteFile(path, file, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := openNoCrash(t, dir)
			if s != nil {
				// Show what the server would meet on its first read.
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Errorf("Open accepted the file, and then Head panicked: %v", r)
						}
					}()
					s.Head("810001", TopicFunds)
				}()
			}
			if !errors.Is(err, ErrDamaged) || s != nil {
				t.Fatalf("open with page %d (%s) zeroed: got %v, want ErrDamaged", pg, name, err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("message %q does not name the file", err)
			}
		})
	}
}

const lockChildEnv = "LEDGERFEED_LOCK_CHILD"

// lockResult is what one Open of a held directory came to.
type lockResult struct {
	Locked  bool          `json:"locked"`
	Err     string        `json:"err"`
	Elapsed time.Duration `json:"elapsed"`
}

func tryOpenLocked(dir string) lockResult {
	start := time.Now()
	s, err := Open(dir, Options{})
	r := lockResult{Locked: errors.Is(err, ErrLocked), Elapsed: time.Since(start)}
	if err != nil {
		r.Err = err.Error()
	} else {
		s.Close()
	}
	return r
}

// TestOpen_LockedChild is the second process of TestOpen_SecondProcessLocked;
// run on its own it skips.
func TestOpen_LockedChild(t *testing.T) {
	dir := os.Getenv(lockChildEnv)
	if dir == "" {
		t.Skip("helper process of TestOpen_SecondProcessLocked")
	}
	b, _ := json.Marshal(tryOpenLocked(dir))
	os.Stdout.Write(append(append([]byte("result "), b...), '\n'))
}

// TestOpen_SecondProcessLocked opens a directory a store holds, from this
// process (bbolt's flock is per open file description, so that conflicts
// too on Linux) and from another: both get ErrLocked within a few seconds,
// naming the directory, and the holder is unharmed.
func TestOpen_SecondProcessLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openTestStoreAt(t, dir, Options{Now: func() time.Time { return corruptNow }})
	mustPutLedger(t, s, "830001", "NOK", "Europe/Oslo", "")

	check := func(t *testing.T, r lockResult) {
		t.Helper()
		if !r.Locked {
			t.Fatalf("second Open: got %q, want ErrLocked", r.Err)
		}
		if !strings.Contains(r.Err, dir) {
			t.Errorf("message %q does not name the directory %s", r.Err, dir)
		}
		if r.Elapsed > 3*time.Second {
			t.Errorf("second Open took %v to give up", r.Elapsed)
		}
	}
	t.Run("same process", func(t *testing.T) {
		check(t, tryOpenLocked(dir))
	})
	t.Run("other process", func(t *testing.T) {
		if testing.Short() {
			t.Skip("runs a child process")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestOpen_LockedChild$", "-test.count=1", "-test.timeout=1m")
		cmd.Env = append(os.Environ(), lockChildEnv+"="+dir)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		var r lockResult
		var found bool
		for _, line := range strings.Split(string(out), "\n") {
			if j, ok := strings.CutPrefix(line, "result "); ok {
				found = json.Unmarshal([]byte(j), &r) == nil
			}
		}
		if !found {
			t.Fatalf("child said no result:\n%s", out)
		}
		check(t, r)
	})

	// The holder still works, and once it closes the directory opens.
	if _, err := s.Append(context.Background(), "830001", TopicFunds, []EntryInput{{
		EntryID: "e1", PSPReference: "p1", Time: corruptNow.Add(-time.Minute), EntryType: "capture", Amount: 100,
	}}); err != nil {
		t.Fatalf("append in the holder after refused opens: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTestStoreAt(t, dir, Options{Now: func() time.Time { return corruptNow }})
	if h, err := s2.Head("830001", TopicFunds); err != nil || h.Sequence != 1 {
		t.Fatalf("reopen after the holder closed: %+v %v", h, err)
	}
}

// keySlots returns the 32-byte key slots of a gdpr.keys file.
func keySlots(t *testing.T, dir string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, keyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < keyHeaderSize || (len(b)-keyHeaderSize)%keySize != 0 {
		t.Fatalf("gdpr.keys is %d bytes: not a header and whole slots", len(b))
	}
	var slots [][]byte
	for off := keyHeaderSize; off < len(b); off += keySize {
		slots = append(slots, b[off:off+keySize])
	}
	return slots
}

func nonZeroSlots(slots [][]byte) int {
	n := 0
	for _, k := range slots {
		if !bytes.Equal(k, make([]byte, keySize)) {
			n++
		}
	}
	return n
}

// assertNotInDir fails if any file of dir contains one of the needles.
func assertNotInDir(t *testing.T, dir string, needles ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if i := bytes.Index(b, []byte(n)); i >= 0 {
				t.Errorf("%s holds %q in plain text at offset %d", de.Name(), n, i)
			}
		}
	}
}

// TestGDPR_ErasedTextUnreadable checks that GDPR fields are never in the
// files in plain text, that a raw phone number is never stored at all, and
// that erasure zeroes the entry's key so its sealed text (which bbolt may
// keep in freed pages) can no longer be decrypted, while entries, balances
// and digests stay as they were.
func TestGDPR_ErasedTextUnreadable(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, Options{Now: func() time.Time { return corruptNow }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	mustPutLedger(t, s, "840001", "NOK", "Europe/Oslo", "")
	mustPutLedger(t, s, "840002", "NOK", "Europe/Oslo", "")
	at := func(m int) time.Time { return corruptNow.Add(-time.Duration(60-m) * time.Minute) }
	const (
		name  = "Kari Nordmann-ZZQX"
		msg   = "secret-msg-ZZQX"
		phone = "+47 912 34 567"
	)
	funds := []EntryInput{
		{EntryID: "f1", PSPReference: "psp-f1", Time: at(1), EntryType: "capture", Reference: "order-77", Amount: 25000, Name: name, PhoneNumber: phone, Message: msg},
		{EntryID: "f2", PSPReference: "psp-f2", Time: at(2), EntryType: "refund", Reference: "order-77", Amount: -5000},
		{EntryID: "f3", PSPReference: "psp-f3", Time: at(3), EntryType: "capture", Reference: "order-88", Amount: 12000, Name: "Ola Keep", PhoneNumber: "+47 400 11 223", Message: "keep me"},
	}
	fees := []EntryInput{
		{EntryID: "g1", PSPReference: "psp-f1", Time: at(1), EntryType: "capture-fee", Reference: "order-77", Amount: -250, Name: name, Message: msg},
		{EntryID: "g2", PSPReference: "psp-g2", Time: at(4), EntryType: "capture-fee", Reference: "order-77", Amount: -120, PhoneNumber: phone},
	}
	other := []EntryInput{ // the same reference in another ledger is not erased
		{EntryID: "o1", PSPReference: "psp-o1", Time: at(5), EntryType: "capture", Reference: "order-77", Amount: 999, Name: "Other Ledger Kunde", PhoneNumber: "+47 400 99 887"},
	}
	for _, a := range []struct {
		id    string
		topic Topic
		in    []EntryInput
	}{{"840001", TopicFunds, funds}, {"840001", TopicFees, fees}, {"840002", TopicFunds, other}} {
		if _, err := s.Append(ctx, a.id, a.topic, a.in); err != nil {
			t.Fatal(err)
		}
	}
	erased := []struct {
		topic Topic
		seq   uint64
	}{{TopicFunds, 1}, {TopicFees, 1}, {TopicFees, 2}}

	// What the API gives before erasure: masked phone, readable fields.
	es, err := s.Entries("840001", TopicFunds, 1, 10, ReadOptions{GDPR: true})
	if err != nil || len(es) != 3 || es[0].GDPR == nil || *es[0].GDPR != (GDPR{Name: name, MaskedPhoneNo: "xxxx 4567", Message: msg}) {
		t.Fatalf("funds before erasure: %+v %v", es, err)
	}
	heads := map[Topic]Head{}
	for _, topic := range Topics {
		if heads[topic], err = s.Head("840001", topic); err != nil {
			t.Fatal(err)
		}
	}
	// The sealed values of the entries to erase, and the slots of their keys.
	sealed := map[string][]byte{}
	var erasedSlots []uint64
	if err := s.view("840001", func(tx *bolt.Tx, rec *ledgerRecord) error {
		for _, e := range erased {
			key := seqKey(rec.Num, e.topic, e.seq)
			v := tx.Bucket(bucketGDPR).Get(key)
			if v == nil {
				return fmt.Errorf("no sealed GDPR value for %s/%d", e.topic, e.seq)
			}
			slot, err := gdprSlot(v)
			if err != nil {
				return err
			}
			sealed[string(key)] = bytes.Clone(v)
			erasedSlots = append(erasedSlots, slot)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	secrets := []string{name, "Nordmann", msg, "ZZQX", "91234567", "912 34 567", "4791234567", "+47 912", "400 11 223", "40011223"}
	assertNotInDir(t, dir, secrets...)
	slotsBefore := keySlots(t, dir)
	// Keys are made ahead of use in a pool, so the file holds more keys than
	// entries; each sealed value has a key of its own.
	if n := nonZeroSlots(slotsBefore); n < 5 {
		t.Fatalf("%d keys in gdpr.keys before erasure, want at least one for each of the 5 entries with GDPR fields", n)
	}
	seenSlot := map[uint64]bool{}
	for _, v := range sealed {
		slot, _ := gdprSlot(v)
		if seenSlot[slot] {
			t.Fatalf("two sealed values share key slot %d", slot)
		}
		seenSlot[slot] = true
	}
	// Control: each key does open its sealed value, so the check after
	// erasure that no key does is meaningful.
	tryOpen := func(key, v []byte, aad string) bool {
		aead := newAEAD(key)
		ns := aead.NonceSize()
		_, err := aead.Open(nil, v[8:8+ns], v[8+ns:], []byte(aad))
		return err == nil
	}
	for aad, v := range sealed {
		slot, _ := gdprSlot(v)
		if !tryOpen(slotsBefore[slot], v, aad) {
			t.Fatalf("control: the key in slot %d does not open its sealed value", slot)
		}
	}

	s, err = Open(dir, Options{Now: func() time.Time { return corruptNow }})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.EraseGDPR(ctx, "840001", Erasure{Reference: "order-77"})
	if err != nil || n != len(erased) {
		t.Fatalf("erase order-77: %d %v, want %d", n, err, len(erased))
	}
	checkRead := func(when string) {
		t.Helper()
		for _, topic := range Topics {
			es, err := s.Entries("840001", topic, 1, 10, ReadOptions{GDPR: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				wasErased := e.Reference == "order-77"
				if wasErased && e.GDPR != nil {
					t.Errorf("%s: %s/%d still has GDPR fields %+v", when, topic, e.Sequence, *e.GDPR)
				}
				if !wasErased && (e.GDPR == nil || e.GDPR.Name != "Ola Keep" || e.GDPR.MaskedPhoneNo != "xxxx 1223") {
					t.Errorf("%s: %s/%d lost GDPR fields it should keep: %+v", when, topic, e.Sequence, e.GDPR)
				}
			}
			if h, err := s.Head("840001", topic); err != nil || h != heads[topic] {
				t.Errorf("%s: head of %s changed: %+v, was %+v (%v)", when, topic, h, heads[topic], err)
			}
		}
		if es, err := s.Entries("840002", TopicFunds, 1, 10, ReadOptions{GDPR: true}); err != nil || len(es) != 1 || es[0].GDPR == nil || es[0].GDPR.MaskedPhoneNo != "xxxx 9887" {
			t.Errorf("%s: the other ledger's entry lost its GDPR fields: %+v %v", when, es, err)
		}
		if rep, err := s.Verify(ctx, nil); err != nil || rep.Entries != 6 {
			t.Errorf("%s: verify: %+v %v", when, rep, err)
		}
	}
	checkRead("after erasure")
	// A retry of the erased entries is still a duplicate, not a conflict.
	if r, err := s.Append(ctx, "840001", TopicFees, fees); err != nil || r.Duplicates != len(fees) {
		t.Errorf("retry after erasure: %v %v", r, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	assertNotInDir(t, dir, secrets...)
	slotsAfter := keySlots(t, dir)
	if len(slotsAfter) != len(slotsBefore) {
		t.Errorf("gdpr.keys has %d slots after erasure, %d before", len(slotsAfter), len(slotsBefore))
	}
	if got, want := nonZeroSlots(slotsAfter), nonZeroSlots(slotsBefore)-len(erased); got != want {
		t.Errorf("%d non-zero keys in gdpr.keys after erasing %d entries, want %d", got, len(erased), want)
	}
	for _, slot := range erasedSlots {
		if !bytes.Equal(slotsAfter[slot], make([]byte, keySize)) {
			t.Errorf("key slot %d of an erased entry is not zeroed", slot)
		}
	}
	// The key point: nothing left in gdpr.keys decrypts an erased value,
	// wherever a copy of it may survive in the data file.
	for aad, v := range sealed {
		for slot, key := range slotsAfter {
			if !bytes.Equal(key, make([]byte, keySize)) && tryOpen(key, v, aad) {
				t.Errorf("the key in slot %d still decrypts an erased entry's GDPR fields", slot)
			}
		}
	}

	s, err = Open(dir, Options{Now: func() time.Time { return corruptNow }})
	if err != nil {
		t.Fatal(err)
	}
	checkRead("after reopening")
}
