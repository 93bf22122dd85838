//go:build !unix

package auth

import "sync"

var dirLock sync.Mutex

// lockDir serialises key changes within this process; on this platform two
// processes rotating keys at the same moment are not kept apart.
func lockDir(dir string) (func(), error) {
	dirLock.Lock()
	return dirLock.Unlock, nil
}
