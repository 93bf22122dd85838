package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
)

// reportFiles lists the finished report files in dir/reports (name →
// size); partial files (*.tmp, excelize-*) are left out.
func reportFiles(dataDir string) (map[string]int64, error) {
	des, err := os.ReadDir(filepath.Join(dataDir, "reports"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, de := range des {
		n := de.Name()
		if !de.Type().IsRegular() || strings.HasSuffix(n, ".tmp") || strings.HasPrefix(n, "excelize-") {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			return nil, err
		}
		out[n] = fi.Size()
	}
	return out, nil
}

// copyFiles: the PostgreSQL store keeps no report files yet (each node
// serves them from its own --data DIR/reports), so they are not copied;
// the summary says how many there are and where to put them.
func (m *storeMigration) copyFiles(ctx context.Context) error {
	files, err := reportFiles(m.dir)
	if err != nil {
		return err
	}
	for _, size := range files {
		m.sum.LocalFiles++
		m.sum.LocalFileBytes += size
	}
	return nil
}

func (m *storeMigration) verifyFiles(ctx context.Context) error { return nil }
