package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// Two callers get two distinct, empty, writable databases on a server that
// runs with fsync and synchronous_commit on.
func TestStart(t *testing.T) {
	ctx := context.Background()
	var names []string
	for range 2 {
		conn, err := pgx.Connect(ctx, Start(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var name, fsync, syncCommit, listen string
		if err := conn.QueryRow(ctx, "SELECT current_database(), current_setting('fsync'), current_setting('synchronous_commit'), current_setting('listen_addresses')").
			Scan(&name, &fsync, &syncCommit, &listen); err != nil {
			t.Fatal(err)
		}
		if fsync != "on" || syncCommit != "on" {
			t.Errorf("fsync=%s synchronous_commit=%s, want on, on", fsync, syncCommit)
		}
		if srv.dir != "" && listen != "127.0.0.1" {
			t.Errorf("listen_addresses=%q, want 127.0.0.1", listen)
		}
		var tables int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("new database %s has %d tables", name, tables)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if names[0] == names[1] {
		t.Fatalf("both callers got database %s", names[0])
	}
}
