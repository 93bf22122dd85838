package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ledgerfeed/ledgerfeed/client"
)

// syncState is <dir>/.sync/state.json: where each feed stands. It is
// written (atomically) only after the CSV rows it covers are durable, so
// after a crash the files may hold rows beyond it, never fewer; those rows
// are recognised by their sequence and not written again.
type syncState struct {
	Version int                     `json:"version"`
	Ledgers map[string]*ledgerState `json:"ledgers"`
}

type ledgerState struct {
	Topics map[string]*topicState `json:"topics"`
	// Sealed is the last date whose seal was verified against the entries
	// written; dates up to it are complete and unaltered.
	Sealed *client.Sealed `json:"sealed,omitempty"`
}

type topicState struct {
	// Cursor resumes the feed right after the last entry written.
	Cursor string `json:"cursor"`
	// Chain is the topic's chain after the last entry written.
	Chain client.TopicChain `json:"chain"`
	// Verified is the chain after the last sealed date (Sealed).
	Verified client.TopicChain `json:"verified"`
	// Dates sums up each date with entries written but not sealed yet,
	// oldest first; the last may still grow.
	Dates []dateSum `json:"dates"`
}

type dateSum struct {
	Date string `json:"date"`
	client.TopicSummary
}

func (ts *topicState) clone() *topicState {
	c := *ts
	c.Dates = slices.Clone(ts.Dates)
	return &c
}

// ledger returns the state of ledger id, made empty when new.
func (s *syncState) ledger(id string) *ledgerState {
	if s.Ledgers == nil {
		s.Ledgers = map[string]*ledgerState{}
	}
	l := s.Ledgers[id]
	if l == nil {
		l = &ledgerState{}
		s.Ledgers[id] = l
	}
	if l.Topics == nil {
		l.Topics = map[string]*topicState{}
	}
	for _, topic := range client.Topics {
		if l.Topics[topic] == nil {
			l.Topics[topic] = &topicState{
				Chain:    client.TopicChain{LedgerID: id, Topic: topic},
				Verified: client.TopicChain{LedgerID: id, Topic: topic},
			}
		}
	}
	return l
}

const syncStateVersion = 1

func statePath(dir string) string { return filepath.Join(dir, ".sync", "state.json") }

// loadState reads the state file; a missing file is an empty state.
func loadState(dir string) (*syncState, error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return &syncState{Version: syncStateVersion, Ledgers: map[string]*ledgerState{}}, nil
	}
	if err != nil {
		return nil, err
	}
	var s syncState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w (move it away to sync afresh)", statePath(dir), err)
	}
	if s.Version != syncStateVersion {
		return nil, fmt.Errorf("%s: version %d, this ledgerfeed knows %d", statePath(dir), s.Version, syncStateVersion)
	}
	if s.Ledgers == nil {
		s.Ledgers = map[string]*ledgerState{}
	}
	return &s, nil
}

// saveState writes the state file atomically.
func saveState(dir string, s *syncState) error {
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	return writeAtomic(statePath(dir), nil, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// writeAtomic replaces path with prefix (a file to copy first; nil: none)
// followed by what write writes: a temp file in the same directory,
// fsync'd, renamed over path, and the directory fsync'd. A reader sees the
// old file or the new one, never a part; a crash leaves at most a
// ".NAME.tmp-*" file, which removeTemps deletes.
func writeAtomic(path string, prefix *os.File, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := mkdirDurable(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if prefix != nil {
		if _, err := prefix.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.Copy(bw, prefix); err != nil {
			return err
		}
	}
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// mkdirDurable makes dir and its missing parents, fsyncing each parent
// after a directory is made in it.
func mkdirDurable(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// removeTemps deletes the temp files a killed sync left in dir.
func removeTemps(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), ".") && strings.Contains(d.Name(), ".tmp-") {
			return os.Remove(path)
		}
		return nil
	})
}
