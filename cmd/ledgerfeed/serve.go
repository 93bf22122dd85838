package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/report"
	"github.com/ledgerfeed/ledgerfeed/server"
)

// closeDueEvery is how often serve closes the ledger dates whose end plus
// grace has passed.
const closeDueEvery = time.Minute

// runServe opens the store and serves it until ctx ends. Once listening it
// writes to stdout one line per listener, with the bound address (so port 0
// works):
//
//	http listening on 127.0.0.1:8080
//	grpc listening on 127.0.0.1:9090
//	admin socket data/ledgerfeed.sock
//
// (the last only when the admin socket could be made). Before them, on the
// first start of a store, it says that the admin client was made and, when
// its secret is random, prints the secret (once; it is also in
// DATA/admin-credentials).
// Logs go to stderr.
func runServe(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "[flags]", "Serves the store in --store (default: the bbolt store in --data): the REST API,\n/metrics, /healthz and /readyz on --http-addr; the gRPC API, grpc.health.v1 and\nreflection on --grpc-addr; for a bbolt store, the admin socket for verify and\nbackup in the data directory. SIGINT or SIGTERM shut it down gracefully.", stderr)
	cfg.serveFlags(fs)
	rs, err := bindReportFlags(fs, os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "ledgerfeed:", err)
		return usageError{err}
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(fs, "unexpected argument %q", pos[0])
	}
	if err := cfg.validateServe(); err != nil {
		return usagef(fs, "%v", err)
	}
	if err := rs.check(); err != nil {
		return usagef(fs, "%v", err)
	}

	dsn, err := cfg.resolveStore()
	if err != nil {
		return usagef(fs, "%v", err)
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	st, err := openBackend(ctx, cfg.DataDir, dsn, log.With("component", "ledger"))
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close store", "err", err)
		} else {
			log.Info("store closed")
		}
	}()

	externals, err := cfg.externalIssuers()
	if err != nil {
		return usagef(fs, "%v", err)
	}
	// Nodes sharing a PostgreSQL store share the signing keys and the
	// cursor key, kept in the store; a bbolt node keeps them in --data.
	var keyRecords ledger.Records
	var cursorKey []byte
	if dsn != "" {
		keyRecords = st
		if cursorKey, err = sharedCursorKey(ctx, st); err != nil {
			return err
		}
	}
	a, err := auth.New(st, auth.Config{
		DataDir:            cfg.DataDir,
		KeyRecords:         keyRecords,
		KeyPoll:            cfg.KeyPoll,
		Issuer:             cfg.Issuer,
		Audience:           cfg.Audience,
		TokenTTL:           cfg.TokenTTL,
		ExternalIssuers:    externals,
		RatePerSecond:      cfg.RateLimit,
		Burst:              cfg.RateBurst,
		TokenRatePerMinute: cfg.TokenRateLimit,
		TokenBurst:         cfg.TokenRateBurst,
		Nodes:              cfg.Nodes,
		Logger:             log.With("component", "auth"),
	})
	if err != nil {
		return err
	}
	// Runs before the store closes: the audit events still queued are
	// written first.
	defer func() {
		if err := a.Close(); err != nil {
			log.Error("close auth (audit events may be lost)", "err", err)
		}
	}()
	created, secret, err := a.Bootstrap(ctx, cfg.AdminSecret)
	if err != nil {
		return err
	}
	if created {
		if cfg.AdminSecret == "" {
			fmt.Fprintf(stdout, "admin client created: client_id=%s client_secret=%s\n", auth.AdminClientID, secret)
			fmt.Fprintf(stdout, "  (shown once; also in %s, mode 0600)\n", filepath.Join(cfg.DataDir, auth.AdminCredentialsFile))
		} else {
			fmt.Fprintf(stdout, "admin client created: client_id=%s, secret from --admin-secret\n", auth.AdminClientID)
		}
	}

	audience := cfg.Audience
	if audience == "" {
		audience = "ledgerfeed"
	}
	// Report jobs, schedules and tokens live in the store; files in
	// DATA/reports with bbolt, in the store with PostgreSQL.
	reports, err := report.New(rs.config(st, cfg.DataDir, max(cfg.Nodes, 1), log))
	if err != nil {
		return err
	}
	sock := "" // the admin socket's backup and verify are the bbolt file's
	if dsn == "" {
		sock = socketPath(cfg.DataDir)
	}
	srv, err := server.New(server.Config{
		Store:      st,
		DataDir:    cfg.DataDir,
		CursorKey:  cursorKey,
		Logger:     log,
		HTTPAddr:   cfg.HTTPAddr,
		GRPCAddr:   cfg.GRPCAddr,
		SocketPath: sock,
		Auth:       a,
		Audience:   audience,
		Limits:     server.Limits{MaxBodyBytes: cfg.MaxBodyBytes},
		Reports:    reports,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "http listening on %s\n", srv.HTTPAddr())
	fmt.Fprintf(stdout, "grpc listening on %s\n", srv.GRPCAddr())
	if p := srv.SocketPath(); p != "" {
		fmt.Fprintf(stdout, "admin socket %s\n", p)
	}
	if cfg.Demo {
		if err := serveDemo(ctx, cfg, st, a, srv.HTTPAddr(), stdout, stderr); err != nil {
			srv.Close()
			return err
		}
	}

	closerCtx, stopCloser := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { closeDueLoop(closerCtx, st, log) })
	wg.Go(func() { reports.Run(closerCtx) }) // a job cut short runs again at the next start
	err = srv.Serve(ctx)
	stopCloser()
	wg.Wait()
	return err
}

// closeDueLoop calls CloseDue now and then every closeDueEvery until ctx
// ends. Failures are logged; the next tick tries again.
func closeDueLoop(ctx context.Context, st ledger.Ledgers, log *slog.Logger) {
	t := time.NewTicker(closeDueEvery)
	defer t.Stop()
	for {
		if err := st.CloseDue(ctx); err != nil && ctx.Err() == nil {
			log.Error("close due ledger dates", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
