package report

import (
	"context"
	"encoding/json"
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
// download tokens, then stored files that no record names (left by a crash
// between a file's store and its record's update, or by a node that lost
// its job): those stored over an hour ago, so that a job finishing now
// keeps its file. With a shared store any node may sweep; the deletes are
// idempotent.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	cutoff := now.Add(-s.cfg.Retention)
	var oldFiles, oldTokens, oldObjects []string
	known := map[string]bool{}
	err := s.st.ScanRecords(ledger.RecordReportFiles, "", func(k string, v []byte) error {
		f, err := unmarshalFile(v)
		if err != nil {
			return err
		}
		if f.CreatedAt.Before(cutoff) && f.Status != StatusRunning {
			oldFiles = append(oldFiles, k)
			if f.Status == StatusSuccessful {
				oldObjects = append(oldObjects, f.object())
			}
			return nil
		}
		known[f.object()] = true
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
	// The files of the deleted records, and any no record names.
	for _, name := range oldObjects {
		if err := s.files.remove(ctx, name); err != nil {
			return err
		}
	}
	var orphans []string
	err = s.files.list(ctx, func(name string, stored time.Time) error {
		if !known[name] && stored.Before(now.Add(-time.Hour)) {
			orphans = append(orphans, name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range orphans {
		if err := s.files.remove(ctx, name); err != nil {
			return err
		}
	}
	return nil
}
