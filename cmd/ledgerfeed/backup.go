package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// runBackup writes a consistent backup of the store to FILE: a tar archive
// of ledgerfeed.db and gdpr.keys, restored with tar -xf FILE -C DATA_DIR.
// It goes to FILE.tmp first and is renamed to FILE only once complete and
// fsync'd, so FILE is never a partial archive. While a server holds the
// store, the server writes the archive through its admin socket.
func runBackup(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", "FILE [--data DIR]", "Writes a consistent backup of the store to FILE, a tar archive (mode 0600: it\nholds the GDPR keys). Works while a server runs (through its admin socket).\nRestore into an empty data directory with: tar -xf FILE -C DIR", stderr)
	cfg.dataFlag(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef(fs, "missing FILE")
	case len(pos) > 1:
		return usagef(fs, "unexpected argument %q", pos[1])
	}
	file := pos[0]

	m, err := openMaintainer(cfg.Store, cfg.DataDir, stderr)
	if err != nil {
		return err
	}
	defer m.Close()

	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	cw := &countingWriter{w: f}
	info, err := m.Backup(ctx, cw)
	if err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	if err := syncDir(filepath.Dir(file)); err != nil {
		return fmt.Errorf("backup: written, but the directory entry may not be durable: %w", err)
	}
	fmt.Fprintf(stdout, "backup written to %s: %d bytes (%s), data file %s at txid %d\n", file, cw.n, humanBytes(cw.n), humanBytes(info.Bytes), info.TxID)
	return nil
}

// syncDir fsyncs a directory so that a rename in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, os.ErrInvalid) {
		err = nil // directories cannot be synced on this platform
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
