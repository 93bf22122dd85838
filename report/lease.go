package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Claims and leases: how the nodes that share a store run each job once.
//
// A worker claims a job with one compare-and-set of its record (claim, in
// one UpdateRecords: SERIALIZABLE in PostgreSQL, one writer at a time in
// bbolt). It may take a pending job, a running job whose lease has expired
// (its node died or lost the store), or a running job of its own node that
// a previous life of the process left (the node id persists in Dir); it
// never takes a job another node holds a live lease on. The claim sets the
// status running, Owner to the node id, LeaseUntil to now + Lease, and
// counts the attempt. Within one process, the running map keeps two
// workers off one job.
//
// While the file is written the worker renews the lease every Lease/3 with
// the same compare-and-set (owner and attempt unchanged). When a renewal
// finds the job no longer its own, or the lease ran out before a renewal
// got through, the job's context is cancelled. The final update applies
// only while the job is still the worker's: one that lost its job keeps
// its hands off the record and deletes the blob it stored (each attempt
// stores under its own name, see storage.go), so the newer owner's result
// stands.
//
// Jobs reach a node's queue when it starts (findWork), when they are
// requested there, and by polling the records every PollEvery, which is how
// a node finds jobs requested on other nodes and jobs whose owner died.

// nodeIDFile holds the node id in Dir.
const nodeIDFile = "node-id"

var (
	// errLost: the job's record is no longer this worker's (another node
	// took it over after the lease expired, or it was deleted).
	errLost = errors.New("report job: lease lost to another node")
)

// loadNodeID returns the node id kept in dir, making one on first use.
func loadNodeID(dir string) (string, error) {
	p := filepath.Join(dir, nodeIDFile)
	b, err := os.ReadFile(p)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if id == "" || len(id) > 128 {
			return "", fmt.Errorf("report node id in %s: empty or too long; delete the file to make a new one", p)
		}
		return id, nil
	}
	if !os.IsNotExist(err) {
		return "", fmt.Errorf("report node id: %w", err)
	}
	id := "node-" + newID()
	tmp, err := os.CreateTemp(dir, nodeIDFile+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("report node id: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(id + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return "", fmt.Errorf("report node id: %w", err)
	}
	return id, nil
}

// claimable reports whether this node may claim f at now (see above).
func (s *Service) claimable(f *File, now time.Time) bool {
	switch {
	case f.Finished():
		return false
	case f.Status == StatusRunning && f.Owner != s.node && now.Before(f.LeaseUntil):
		return false // another node's, and it is alive
	}
	return true
}

// owns reports whether f is still the job this node claimed as attempt.
func (s *Service) owns(f *File, attempt int) bool {
	return f.Status == StatusRunning && f.Owner == s.node && f.Attempts == attempt
}

// claim marks the job of key running on this node, if it may (errSkip if
// not), and returns the record as stored.
func (s *Service) claim(ctx context.Context, key string) (*File, error) {
	now := s.now().UTC()
	return s.update(ctx, key, func(f *File) error {
		if !s.claimable(f, now) {
			return errSkip
		}
		f.Status, f.StartedAt, f.Attempts = StatusRunning, now, f.Attempts+1
		f.Owner, f.LeaseUntil = s.node, now.Add(s.cfg.Lease)
		if f.Attempts > maxAttempts {
			f.Status, f.CompletedAt = StatusFailed, now
			f.Error = fmt.Sprintf("internal error: gave up after %d attempts", maxAttempts)
		}
		return nil
	})
}

// keepLease renews the lease of attempt of the job of key every Lease/3
// until ctx ends; when the job is lost it cancels ctx with errLost.
func (s *Service) keepLease(ctx context.Context, key string, attempt int, until time.Time, lose context.CancelCauseFunc) {
	t := time.NewTicker(s.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.now().UTC()
		f, err := s.update(ctx, key, func(f *File) error {
			if !s.owns(f, attempt) {
				return errLost
			}
			f.LeaseUntil = now.Add(s.cfg.Lease)
			return nil
		})
		switch {
		case err == nil:
			until = f.LeaseUntil
		case ctx.Err() != nil:
			return
		case errors.Is(err, errLost), errors.Is(err, ledger.ErrNotFound):
			lose(errLost)
			return
		default:
			s.log.Warn("report job: renew lease", "file", key, "err", err)
			if !s.now().Before(until) {
				// Another node may have claimed it by now.
				lose(errLost)
				return
			}
		}
	}
}

// findWork queues the jobs this node may claim now, oldest first, except
// those its workers run.
func (s *Service) findWork() error {
	now := s.now().UTC()
	var todo []*File
	err := s.st.ScanRecords(ledger.RecordReportFiles, "", func(k string, v []byte) error {
		if finishedJSON(v) {
			return nil // most records: skipped without decoding
		}
		f, err := unmarshalFile(v)
		if err != nil {
			return err
		}
		if _, busy := s.running.Load(k); !busy && s.claimable(f, now) {
			todo = append(todo, f)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(todo, func(a, b *File) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for _, f := range todo {
		s.enqueue(f.key())
	}
	s.polls.Add(1)
	return nil
}

// pollLoop runs findWork every PollEvery until ctx ends.
func (s *Service) pollLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.findWork(); err != nil && ctx.Err() == nil && s.st.Ready() {
			s.log.Error("report jobs: look for work", "err", err)
		}
	}
}

// NodeID returns the id this node claims jobs under.
func (s *Service) NodeID() string { return s.node }

// finishedJSON reports, without decoding it, whether a file record is
// finished: its JSON (File.marshal's) holds the status as written below,
// which a string value cannot hold unescaped.
func finishedJSON(v []byte) bool {
	return bytes.Contains(v, []byte(`"status":"successful"`)) || bytes.Contains(v, []byte(`"status":"failed"`))
}
