package main

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerfeed/ledgerfeed/ledger/pgstore"
)

// runMigrate applies the schema migrations of the store in --store and
// exits. For PostgreSQL that is what serve also does at start (under an
// advisory lock, so nodes starting at once apply each migration once); run
// alone it lets an operator upgrade the schema before rolling out nodes.
// A bbolt store has nothing to migrate: its schema version is in its file
// and checked when it opens.
func runMigrate(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "[flags]", "Applies the schema migrations the PostgreSQL database in --store lacks, and\nexits (serve applies them at start too). A bbolt store has nothing to migrate:\nits schema version is kept in its file and checked when it opens.", stderr)
	cfg.dataFlag(fs)
	cfg.storeFlag(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(fs, "unexpected argument %q", pos[0])
	}
	dsn, err := cfg.resolveStore()
	if err != nil {
		return usagef(fs, "%v", err)
	}
	if dsn == "" {
		fmt.Fprintf(stdout, "bolt store in %s: nothing to migrate (its schema version is kept in the file and checked when it opens)\n", cfg.DataDir)
		return nil
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer pool.Close()
	before, err := schemaVersion(ctx, pool)
	if err != nil {
		return err
	}
	if err := pgstore.Migrate(ctx, pool); err != nil {
		return err
	}
	after, err := schemaVersion(ctx, pool)
	if err != nil {
		return err
	}
	if after == before {
		fmt.Fprintf(stdout, "postgres schema is at version %d: nothing to migrate\n", after)
	} else {
		fmt.Fprintf(stdout, "postgres schema migrated from version %d to %d\n", before, after)
	}
	return nil
}

// schemaVersion is the database's schema version: 0 before the first
// migration.
func schemaVersion(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return 0, fmt.Errorf("migrate: read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("migrate: read schema version: %w", err)
	}
	return v, nil
}
