package report

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Where finished files are kept: in the node's directory (dirFiles, with
// the bbolt store: one node), or as blobs of a store that several nodes
// share (blobFiles, with a store that is a ledger.Blobs), so that a file
// made on one node downloads from any. Either way a file is written whole
// to a temp file in Config.Dir first, then stored under its name at once.

// BlobPrefix starts the blob key of every report file: the file a record
// names (File.Object, or ID.FORMAT for a record without one, the name the
// file has in a bbolt node's DATA/reports) is the blob BlobPrefix+name.
const BlobPrefix = "reports/"

type fileStore interface {
	// name is the name the current attempt of f stores its file under.
	name(f *File) string
	// put stores the temp file tmp, written whole, under name, atomically,
	// and returns its size. The caller removes tmp afterwards.
	put(ctx context.Context, tmp *os.File, name string) (int64, error)
	// open opens a stored file; one that does not exist is errNoDownload.
	open(ctx context.Context, name string) (io.ReadSeekCloser, error)
	// remove deletes a stored file; a missing one is no error.
	remove(ctx context.Context, name string) error
	// list calls fn for each stored file with when it was stored.
	list(ctx context.Context, fn func(name string, stored time.Time) error) error
}

// dirFiles keeps files in a directory, as ID.FORMAT: a temp file fsynced
// and renamed, and the directory fsynced.
type dirFiles struct{ dir string }

func (d dirFiles) name(f *File) string { return f.diskName() }

func (d dirFiles) put(_ context.Context, tmp *os.File, name string) (int64, error) {
	if err := tmp.Sync(); err != nil {
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	final := filepath.Join(d.dir, name)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return 0, err
	}
	if err := syncDir(d.dir); err != nil {
		return 0, err
	}
	fi, err := os.Stat(final)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (d dirFiles) open(_ context.Context, name string) (io.ReadSeekCloser, error) {
	fh, err := os.Open(filepath.Join(d.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoDownload
	}
	return fh, err
}

func (d dirFiles) remove(_ context.Context, name string) error {
	if err := os.Remove(filepath.Join(d.dir, name)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

func (d dirFiles) list(_ context.Context, fn func(string, time.Time) error) error {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, "."+FormatCSV) || strings.HasSuffix(name, "."+FormatXLSX)) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if err := fn(name, fi.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

// blobFiles keeps files as blobs of a shared store. Each attempt of a job
// stores under its own name, ID.ATTEMPT.FORMAT, so a worker that lost its
// job to another node (lease.go) never overwrites the file the record
// names, and deletes only its own.
type blobFiles struct{ b ledger.Blobs }

func (b blobFiles) name(f *File) string {
	return f.ID + "." + strconv.Itoa(f.Attempts) + "." + f.Format
}

func (b blobFiles) put(ctx context.Context, tmp *os.File, name string) (int64, error) {
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := b.b.PutBlob(ctx, BlobPrefix+name, tmp)
	if err != nil {
		return 0, fmt.Errorf("store report file: %w", err)
	}
	return n, nil
}

func (b blobFiles) open(ctx context.Context, name string) (io.ReadSeekCloser, error) {
	r, err := b.b.OpenBlob(ctx, BlobPrefix+name)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, errNoDownload
	}
	return r, err
}

func (b blobFiles) remove(ctx context.Context, name string) error {
	return b.b.DeleteBlob(ctx, BlobPrefix+name)
}

func (b blobFiles) list(ctx context.Context, fn func(string, time.Time) error) error {
	return b.b.ListBlobs(ctx, BlobPrefix, func(bi ledger.BlobInfo) error {
		return fn(strings.TrimPrefix(bi.Key, BlobPrefix), bi.Stored)
	})
}
