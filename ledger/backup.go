package ledger

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BackupInfo describes a backup written by Backup.
type BackupInfo struct {
	Bytes int64  // size of the data file in the backup
	TxID  uint64 // the bbolt transaction the backup is a snapshot of
}

// Backup writes a consistent snapshot of the store to w while it serves: a
// tar archive holding DataFileName, copied from one read transaction, and the
// GDPR key file. Restore by extracting it into an empty data directory
// (tar -xf FILE -C DIR). Keys erased after the snapshot began read as erased
// in the backup too.
func (s *Store) Backup(ctx context.Context, w io.Writer) (BackupInfo, error) {
	var info BackupInfo
	err := s.viewTx(func(tx *bolt.Tx) error {
		info = BackupInfo{Bytes: tx.Size(), TxID: uint64(tx.ID())}
		// The key file is read after the snapshot began: it holds every key
		// the snapshot refers to (keys are written before their commit).
		st, err := s.keys.f.Stat()
		if err != nil {
			return err
		}
		keySize := st.Size()
		tw := tar.NewWriter(w)
		mod := s.now().UTC().Truncate(time.Second)
		if err := tw.WriteHeader(&tar.Header{Name: DataFileName, Mode: 0o600, Size: info.Bytes, ModTime: mod, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tx.WriteTo(&ctxWriter{ctx, tw}); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: keyFileName, Mode: 0o600, Size: keySize, ModTime: mod, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := io.Copy(&ctxWriter{ctx, tw}, io.NewSectionReader(s.keys.f, 0, keySize)); err != nil {
			return err
		}
		return tw.Close()
	})
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup: %w", err)
	}
	return info, nil
}

// ctxWriter stops a long copy when its context ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
