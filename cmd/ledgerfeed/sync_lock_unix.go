//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockSyncDir takes an exclusive lock on DIR/.sync/lock so that two syncs
// never write one mirror; a second one fails at once. The lock goes with
// the process, however it ends.
func lockSyncDir(dir string) (func(), error) {
	if err := mkdirDurable(filepath.Join(dir, ".sync")); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".sync", "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: another ledgerfeed sync is writing this directory", dir)
		}
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
