package report

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// sweepLoop deletes expired files and tokens now and every SweepEvery until
// ctx ends.
func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepEvery)
	defer t.Stop()
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("report files sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep deletes the files requested longer than the retention ago (record
// and file; a job still running is left to finish) and the expired
// download tokens, then files in the directory that no record names.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	cutoff := now.Add(-s.cfg.Retention)
	var oldFiles, oldTokens []string
	known := map[string]bool{}
	err := s.st.ScanRecords(ledger.RecordReportFiles, "", func(k string, v []byte) error {
		f, err := unmarshalFile(v)
		if err != nil {
			return err
		}
		if f.CreatedAt.Before(cutoff) && f.Status != StatusRunning {
			oldFiles = append(oldFiles, k)
			return nil
		}
		known[f.diskName()] = true
		return nil
	})
	if err != nil {
		return err
	}
	err = s.st.ScanRecords(ledger.RecordDownloadTokens, "", func(k string, v []byte) error {
		var tr tokenRecord
		if json.Unmarshal(v, &tr) != nil || !now.Before(tr.Expires) {
			oldTokens = append(oldTokens, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for len(oldFiles) > 0 || len(oldTokens) > 0 {
		// In chunks, so that one commit stays small.
		nf, nt := min(len(oldFiles), 500), min(len(oldTokens), 500)
		files, toks := oldFiles[:nf], oldTokens[:nt]
		oldFiles, oldTokens = oldFiles[nf:], oldTokens[nt:]
		err := s.st.UpdateRecords(ctx, func(tx ledger.RecordTx) error {
			for _, k := range files {
				if err := tx.Delete(ledger.RecordReportFiles, k); err != nil {
					return err
				}
			}
			for _, k := range toks {
				if err := tx.Delete(ledger.RecordDownloadTokens, k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// The disk files of deleted records, and any a crash left behind.
	ents, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || known[name] || !(strings.HasSuffix(name, "."+FormatCSV) || strings.HasSuffix(name, "."+FormatXLSX)) {
			continue
		}
		// A job that finished after the scan above has a file no record
		// named then: leave young files alone.
		if fi, err := e.Info(); err != nil || fi.ModTime().After(now.Add(-time.Hour)) {
			continue
		}
		if err := os.Remove(filepath.Join(s.cfg.Dir, name)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}
