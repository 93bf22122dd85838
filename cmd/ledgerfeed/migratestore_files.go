package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/report"
)

// Report files: a bbolt node keeps each finished file in DIR/reports under
// the name its record gives (File.Object, or ID.FORMAT for records made
// before Object was kept); a PostgreSQL store keeps it as the blob
// report.BlobPrefix+name, so that every node serves it. migrate-store
// copies the file of every successful report record; other files in the
// directory (temp files, the node id, files no record names) are not the
// store's. A record whose file is gone (removed by hand) is counted and
// left as it is: it answers alike on both stores.

// reportFileNames returns the file names the report records name, in
// record order.
func reportFileNames(recs ledger.Records) ([]string, error) {
	var names []string
	err := recs.ScanRecords(ledger.RecordReportFiles, "", func(key string, value []byte) error {
		var f report.File
		if err := json.Unmarshal(value, &f); err != nil {
			return fmt.Errorf("report record %q: %w", key, err)
		}
		if f.Status != report.StatusSuccessful {
			return nil
		}
		name := f.Object
		if name == "" {
			name = f.ID + "." + f.Format
		}
		if name == "" || filepath.Base(name) != name || name == "." || name == ".." {
			return fmt.Errorf("report record %q names the file %q", key, name)
		}
		names = append(names, name)
		return nil
	})
	return names, err
}

// copyFiles stores each report file as a blob of the target, and keeps its
// SHA-256 for verifyFiles.
func (m *storeMigration) copyFiles(ctx context.Context) error {
	names, err := reportFileNames(m.src)
	if err != nil {
		return err
	}
	m.fileSums = map[string][32]byte{}
	for _, name := range names {
		f, err := os.Open(filepath.Join(m.dir, "reports", name))
		if errors.Is(err, os.ErrNotExist) {
			m.sum.MissingFiles++
			continue
		}
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := m.dst.PutBlob(ctx, report.BlobPrefix+name, io.TeeReader(f, h))
		f.Close()
		if err != nil {
			return fmt.Errorf("report file %s: %w", name, err)
		}
		m.fileSums[name] = [32]byte(h.Sum(nil))
		m.sum.Files++
		m.sum.FileBytes += n
	}
	return nil
}

// verifyFiles reads every copied file back from the target and compares
// its bytes with the source's.
func (m *storeMigration) verifyFiles(ctx context.Context) error {
	for name, want := range m.fileSums {
		r, err := m.dst.OpenBlob(ctx, report.BlobPrefix+name)
		if err != nil {
			return fmt.Errorf("report file %s: %w", name, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("report file %s: %w", name, err)
		}
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			return fmt.Errorf("report file %s: the target's bytes differ from the source's", name)
		}
	}
	return nil
}
