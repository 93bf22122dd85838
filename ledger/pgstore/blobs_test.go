package pgstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// It is also the store of shared report files.
var _ ledger.Blobs = (*Store)(nil)

// blobBytes returns n pseudo-random bytes of a seed.
func blobBytes(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// failingReader yields its bytes, then fails.
type failingReader struct{ r io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("disk on fire")
	}
	return n, err
}

func TestBlobs_PutOpenReadSeek(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := openPG(t, dsn, Options{}), openPG(t, dsn, Options{}) // two nodes
	ctx := context.Background()
	data := blobBytes(1, 2*BlobChunk+BlobChunk/2+7)
	n, err := a.PutBlob(ctx, "r/one.csv", bytes.NewReader(data))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("put: %d %v", n, err)
	}
	if n, err := a.PutBlob(ctx, "r/empty", strings.NewReader("")); err != nil || n != 0 {
		t.Fatalf("put empty: %d %v", n, err)
	}

	r, err := b.OpenBlob(ctx, "r/one.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != int64(len(data)) {
		t.Fatalf("size %d, want %d", r.Size(), len(data))
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), differ from the %d written", len(got), err, len(data))
	}
	// ReadAt across a chunk boundary, at the end, past the end.
	for _, c := range []struct{ off, n int }{{BlobChunk - 3, 10}, {0, 1}, {2*BlobChunk - 1, BlobChunk/2 + 2}, {len(data) - 5, 5}} {
		p := make([]byte, c.n)
		k, err := r.ReadAt(p, int64(c.off))
		if err != nil || k != c.n || !bytes.Equal(p, data[c.off:c.off+c.n]) {
			t.Errorf("ReadAt(%d, %d): %d %v", c.off, c.n, k, err)
		}
	}
	p := make([]byte, 10)
	if k, err := r.ReadAt(p, int64(len(data)-4)); k != 4 || err != io.EOF || !bytes.Equal(p[:4], data[len(data)-4:]) {
		t.Errorf("ReadAt over the end: %d %v", k, err)
	}
	if end, err := r.Seek(-3, io.SeekEnd); err != nil || end != int64(len(data)-3) {
		t.Errorf("seek from the end: %d %v", end, err)
	}
	if rest, _ := io.ReadAll(r); !bytes.Equal(rest, data[len(data)-3:]) {
		t.Errorf("after a seek: %x", rest)
	}

	// Served with http.ServeContent, a Range request answers those bytes.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rd, err := b.OpenBlob(req.Context(), "r/one.csv")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer rd.Close()
		http.ServeContent(w, req, "", a.now(), rd)
	}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Range", "bytes=1048570-1048585")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[1048570:1048586]) {
		t.Errorf("range answer %d, %d bytes", resp.StatusCode, len(body))
	}

	e, err := b.OpenBlob(ctx, "r/empty")
	if err != nil || e.Size() != 0 {
		t.Fatalf("empty blob: %v", err)
	}
	if got, err := io.ReadAll(e); err != nil || len(got) != 0 {
		t.Errorf("empty blob read %d bytes, %v", len(got), err)
	}
	if _, err := b.OpenBlob(ctx, "r/missing"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("missing blob: %v, want ErrNotFound", err)
	}
	if _, err := a.PutBlob(ctx, "", strings.NewReader("x")); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("empty key: %v, want ErrInvalid", err)
	}
}

// A write that fails or is cancelled leaves nothing, and the blob it would
// have replaced stays whole.
func TestBlobs_PutAtomic(t *testing.T) {
	dsn := pgtest.Start(t)
	s := openPG(t, dsn, Options{})
	ctx := context.Background()
	old := blobBytes(2, BlobChunk+100)
	if _, err := s.PutBlob(ctx, "k", bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutBlob(ctx, "k", &failingReader{bytes.NewReader(blobBytes(3, 3*BlobChunk))}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("a failing reader: %v", err)
	}
	if _, err := s.PutBlob(ctx, "new", &failingReader{bytes.NewReader(blobBytes(3, 2*BlobChunk))}); err == nil {
		t.Fatal("a failing reader stored a new blob")
	}
	cctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		pw.Write(blobBytes(4, BlobChunk+1)) // one chunk sent, then the caller gives up
		cancel()
		pw.Close()
	}()
	if _, err := s.PutBlob(cctx, "k", pr); err == nil {
		t.Fatal("a cancelled put succeeded")
	}
	r, err := s.OpenBlob(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); !bytes.Equal(got, old) {
		t.Errorf("the old blob changed: %d bytes", len(got))
	}
	if _, err := s.OpenBlob(ctx, "new"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("a failed put is visible: %v", err)
	}
	var chunks int
	if err := s.Pool().QueryRow(ctx, "SELECT count(*) FROM blob_chunks").Scan(&chunks); err != nil || chunks != 2 {
		t.Errorf("%d chunks stored (%v), want the old blob's 2", chunks, err)
	}
}

// A reader keeps reading the version it opened, or fails: a replace or a
// delete never mixes other bytes into it. Concurrent writes of one key end
// as one of them, whole.
func TestBlobs_ReplaceDeleteList(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := openPG(t, dsn, Options{}), openPG(t, dsn, Options{})
	ctx := context.Background()
	v1 := blobBytes(5, 2*BlobChunk)
	if _, err := a.PutBlob(ctx, "f/x", bytes.NewReader(v1)); err != nil {
		t.Fatal(err)
	}
	r, err := b.OpenBlob(ctx, "f/x")
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 10)
	if _, err := r.Read(p); err != nil || !bytes.Equal(p, v1[:10]) {
		t.Fatalf("first read: %v", err)
	}
	var wg sync.WaitGroup
	versions := [][]byte{blobBytes(6, BlobChunk+5), blobBytes(7, 3*BlobChunk/2)}
	for _, v := range versions {
		wg.Go(func() {
			if _, err := a.PutBlob(ctx, "f/x", bytes.NewReader(v)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := r.ReadAt(p, BlobChunk); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("reading a replaced version: %v, want ErrNotFound", err)
	}
	r2, err := b.OpenBlob(ctx, "f/x")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r2)
	if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
		t.Errorf("after two concurrent puts: %d bytes, neither version", len(got))
	}
	for _, k := range []string{"f/y", "g/z", "f"} {
		if _, err := a.PutBlob(ctx, k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	list := func(prefix string) (out []string) {
		t.Helper()
		if err := b.ListBlobs(ctx, prefix, func(bi ledger.BlobInfo) error {
			if bi.Stored.IsZero() || bi.Size < 0 {
				t.Errorf("blob %s: %+v", bi.Key, bi)
			}
			out = append(out, bi.Key)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := strings.Join(list("f/"), " "); got != "f/x f/y" {
		t.Errorf("list f/: %s", got)
	}
	if got := strings.Join(list(""), " "); got != "f f/x f/y g/z" {
		t.Errorf("list all: %s", got)
	}
	if err := b.DeleteBlob(ctx, "f/x"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteBlob(ctx, "f/x"); err != nil {
		t.Errorf("deleting a missing blob: %v", err)
	}
	if _, err := a.OpenBlob(ctx, "f/x"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("deleted blob opens: %v", err)
	}
	if _, err := r2.ReadAt(p, 0); err != nil && !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("reading a deleted blob's cached chunk: %v", err)
	}
	var chunks int
	if err := a.Pool().QueryRow(ctx, "SELECT count(*) FROM blob_chunks").Scan(&chunks); err != nil || chunks != 3 {
		t.Errorf("%d chunks left (%v), want 3 (f, f/y, g/z)", chunks, err)
	}
}

// BenchmarkBlobs stores a 64 MiB file as a blob and reads it back, as a
// report job and a download do; MB/s each way.
func BenchmarkBlobs(b *testing.B) {
	dsn := pgtest.Start(b)
	s := openPG(b, dsn, Options{})
	ctx := context.Background()
	const size = 64 << 20
	path := filepath.Join(b.TempDir(), "file")
	if err := os.WriteFile(path, blobBytes(9, size), 0o600); err != nil {
		b.Fatal(err)
	}
	var put, get time.Duration
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := s.PutBlob(ctx, "bench", f); err != nil {
			b.Fatal(err)
		}
		put += time.Since(t0)
		f.Close()
		t0 = time.Now()
		r, err := s.OpenBlob(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != size {
			b.Fatalf("read %d, %v", n, err)
		}
		get += time.Since(t0)
	}
	b.ReportMetric(float64(size)*float64(b.N)/put.Seconds()/1e6, "put-MB/s")
	b.ReportMetric(float64(size)*float64(b.N)/get.Seconds()/1e6, "read-MB/s")
	b.ReportMetric(0, "ns/op")
}
