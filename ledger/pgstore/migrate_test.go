package pgstore

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
)

// TestMigrate_ConcurrentAndIdempotent: four nodes migrating an empty
// database at once apply each migration exactly once; migrating again does
// nothing; a database newer than the binary is refused.
func TestMigrate_ConcurrentAndIdempotent(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = Migrate(ctx, pool) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrator %d: %v", i, err)
		}
	}
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("second run: %v", err)
	}
	var rows, max int
	if err := pool.QueryRow(ctx, "SELECT count(*), max(version) FROM schema_migrations").Scan(&rows, &max); err != nil {
		t.Fatal(err)
	}
	if SchemaVersion() < 1 || rows != SchemaVersion() || max != SchemaVersion() {
		t.Fatalf("schema_migrations: %d rows up to %d; want %d", rows, max, SchemaVersion())
	}
	if _, err := pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')", SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, pool); err == nil || !strings.Contains(err.Error(), "newer") && !strings.Contains(err.Error(), "knows up to") {
		t.Fatalf("newer schema: %v", err)
	}
}
