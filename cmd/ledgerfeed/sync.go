package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ledgerfeed/ledgerfeed/client"
)

const syncAbout = `Mirror every ledger the client may read into DIR: one CSV file per ledger,
topic and ledger date, DIR/<ledgerId>/<funds|fees>/<YYYY-MM-DD>.csv, each with a
header and one row per entry in append order (amounts in minor units; the
sequence column numbers a topic's entries 1, 2, 3 …). Files are replaced
atomically; the feed cursors are kept in DIR/.sync/state.json, written only
after the rows they cover are on disk, so a sync that is killed resumes
without losing or repeating a row.

Every entry's balanceBefore is checked against the previous balanceAfter,
and each closed date's seal (the server's signed date manifest) against the
entries written, with the server's JWKS. A date's file is complete once its
date is closed; "sealed … verified" lines say which dates are proven so.

With --once the sync stops when every feed is at its end; without, it keeps
following the feeds (long poll) and the ledger list until interrupted.
Progress goes to stderr. The client secret is best passed in the
environment (LEDGERFEED_CLIENT_SECRET): flags show in ps.`

// syncConfig is what the sync command is given.
type syncConfig struct {
	url, clientID, secret string
	grpcAddr              string
	grpcTLS               bool
	dir                   string
	once, gdpr            bool
	ledgers               []string
	pageSize, parallel    int
	flushRows             int
	wait, refresh         time.Duration
}

func runSync(ctx context.Context, _ config, args []string, stdout, stderr io.Writer) error {
	sc := syncConfig{
		url:      firstNonEmpty(os.Getenv("LEDGERFEED_URL"), os.Getenv("LEDGERFEED_SERVER"), "http://localhost:8080"),
		clientID: os.Getenv("LEDGERFEED_CLIENT_ID"),
		secret:   os.Getenv("LEDGERFEED_CLIENT_SECRET"),
		dir:      firstNonEmpty(os.Getenv("LEDGERFEED_SYNC_DIR"), "./ledgerfeed-sync"),
		pageSize: 1000, parallel: 4, flushRows: 50000, wait: 30 * time.Second, refresh: time.Minute,
	}
	fs := newFlagSet("sync", "--client-id ID [flags]", syncAbout, stderr)
	fs.StringVar(&sc.url, "url", sc.url, "`URL` of the ledgerfeed REST API (env LEDGERFEED_URL or LEDGERFEED_SERVER)")
	fs.StringVar(&sc.grpcAddr, "grpc", "", "`HOST:PORT` of the server's gRPC port: read the feeds over gRPC, several times cheaper to decode than JSON (tokens still come from --url)")
	fs.BoolVar(&sc.grpcTLS, "grpc-tls", false, "use TLS (the system's CAs) on the --grpc connection")
	fs.StringVar(&sc.clientID, "client-id", sc.clientID, "`ID` of the API client (env LEDGERFEED_CLIENT_ID)")
	fs.Func("client-secret", "`SECRET` of the API client; prefer the env LEDGERFEED_CLIENT_SECRET", func(s string) error {
		sc.secret = s
		return nil
	})
	fs.StringVar(&sc.dir, "dir", sc.dir, "`DIR` to mirror into (env LEDGERFEED_SYNC_DIR)")
	fs.BoolVar(&sc.once, "once", false, "stop when every feed is at its end (default: follow until interrupted)")
	fs.Func("ledger", "sync only this `ID` (repeatable, or comma-separated; default: every ledger the client may read)", func(s string) error {
		for _, id := range strings.Split(s, ",") {
			if id = strings.TrimSpace(id); id != "" {
				sc.ledgers = append(sc.ledgers, id)
			}
		}
		return nil
	})
	fs.BoolVar(&sc.gdpr, "gdpr", false, "include the GDPR-sensitive fields (needs the client's consent on every ledger synced)")
	fs.IntVar(&sc.pageSize, "page-size", sc.pageSize, "entries per feed request, 1–1000")
	fs.IntVar(&sc.parallel, "parallel", sc.parallel, "with --once: ledgers synced at once (when following, every ledger has its own long polls)")
	fs.IntVar(&sc.flushRows, "flush-rows", sc.flushRows, "rows a feed buffers before writing them (they are also written at the end of the log)")
	fs.DurationVar(&sc.wait, "wait", sc.wait, "long poll: how long the server may hold a feed request at the end of the log (at most 60s)")
	fs.DurationVar(&sc.refresh, "refresh", sc.refresh, "how often to re-read the ledger list and check newly closed dates when following")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef(fs, "unexpected argument %q", pos[0])
	case sc.clientID == "" || sc.secret == "":
		return usagef(fs, "--client-id and the client secret (LEDGERFEED_CLIENT_SECRET or --client-secret) are required")
	case sc.pageSize < 1 || sc.pageSize > 1000:
		return usagef(fs, "--page-size %d: want 1–1000", sc.pageSize)
	case sc.flushRows < 1:
		return usagef(fs, "--flush-rows %d: want at least 1", sc.flushRows)
	case sc.parallel < 1:
		return usagef(fs, "--parallel %d: want at least 1", sc.parallel)
	case sc.wait < time.Second || sc.wait > time.Minute:
		return usagef(fs, "--wait %s: want 1s–60s", sc.wait)
	case sc.refresh < time.Second:
		return usagef(fs, "--refresh %s: want at least 1s", sc.refresh)
	case sc.dir == "":
		return usagef(fs, "--dir is empty")
	}
	ccfg := client.Config{BaseURL: sc.url, ClientID: sc.clientID, ClientSecret: sc.secret, UserAgent: "ledgerfeed-sync"}
	if sc.grpcAddr != "" {
		creds := insecure.NewCredentials()
		if sc.grpcTLS {
			creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
		}
		conn, err := grpc.NewClient(sc.grpcAddr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return usagef(fs, "--grpc %s: %v", sc.grpcAddr, err)
		}
		defer conn.Close()
		ccfg.FeedConn = conn
	}
	c, err := client.New(ccfg)
	if err != nil {
		return usagef(fs, "%v", err)
	}
	if err := mkdirDurable(sc.dir); err != nil {
		return err
	}
	unlock, err := lockSyncDir(sc.dir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := removeTemps(sc.dir); err != nil {
		return err
	}
	st, err := loadState(sc.dir)
	if err != nil {
		return err
	}
	s := &syncer{c: c, v: c.NewVerifier(), cfg: sc, out: &lockedWriter{w: stderr}, state: st,
		vmu: map[string]*sync.Mutex{}, noSeals: map[string]bool{}}
	if sc.once {
		return s.runOnce(ctx)
	}
	return s.follow(ctx)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// syncer is one sync run.
type syncer struct {
	c   *client.Client
	v   *client.Verifier
	cfg syncConfig
	out *lockedWriter

	mu    sync.Mutex // guards state and its file
	state *syncState

	vmuMu   sync.Mutex
	vmu     map[string]*sync.Mutex // per ledger: one seal check at a time
	noSeals map[string]bool        // ledgers whose server has no manifest (warned)

	bg sync.WaitGroup // seal checks started by commits

	written atomic.Int64
	sealed  atomic.Int64

	fatalOnce sync.Once
	fatalErr  error
	cancel    context.CancelFunc
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "sync: "+format+"\n", args...)
}

// ledgerIDs lists the ledgers to sync: those the client may read, or of
// them those of --ledger (one it may not read is an error).
func (s *syncer) ledgerIDs(ctx context.Context) ([]string, error) {
	var ids []string
	for l, err := range s.c.Ledgers(ctx) {
		if err != nil {
			return nil, fmt.Errorf("list ledgers: %w", err)
		}
		if len(s.cfg.ledgers) == 0 || slices.Contains(s.cfg.ledgers, l.LedgerID) {
			ids = append(ids, l.LedgerID)
		}
	}
	for _, id := range s.cfg.ledgers {
		if !slices.Contains(ids, id) {
			return nil, fmt.Errorf("ledger %s: not among the ledgers client %s may read", id, s.cfg.clientID)
		}
	}
	return ids, nil
}

// topic returns a topicSync for (id, topic) from the committed state.
func (s *syncer) topic(id, topic string) *topicSync {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state.ledger(id).Topics[topic].clone()
	return &topicSync{s: s, id: id, topic: topic, st: st, committed: st.Cursor}
}

// commit makes ts's working state the committed one and saves the state
// file. The rows it covers are on disk already.
func (s *syncer) commit(ctx context.Context, ts *topicSync, written int) error {
	s.mu.Lock()
	l := s.state.ledger(ts.id)
	old := l.Topics[ts.topic]
	newDate := len(ts.st.Dates) > 0 && (len(old.Dates) == 0 || old.Dates[len(old.Dates)-1].Date != ts.st.Dates[len(ts.st.Dates)-1].Date)
	if l.Sealed != nil {
		ts.st.Dates = slices.DeleteFunc(ts.st.Dates, func(d dateSum) bool { return d.Date <= l.Sealed.LedgerDate })
	}
	cp := ts.st.clone()
	cp.Verified = old.Verified // the seal check's, not the worker's copy
	l.Topics[ts.topic] = cp
	err := saveState(s.cfg.dir, s.state)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if written > 0 {
		s.written.Add(int64(written))
		last := ""
		if n := len(ts.st.Dates); n > 0 {
			last = ts.st.Dates[n-1].Date
		}
		s.out.printf("%s/%s: %d new entries, through sequence %d (ledger date %s)", ts.id, ts.topic, written, ts.st.Chain.Sequence, last)
	}
	if newDate && !s.cfg.once {
		// A new date began: the previous one may be sealed by now.
		s.bg.Go(func() { s.followSeals(ctx, ts.id) })
	}
	return nil
}

// fail records the first fatal error and stops the run.
func (s *syncer) fail(err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	s.fatalOnce.Do(func() {
		s.fatalErr = err
		if s.cancel != nil {
			s.cancel()
		}
	})
}

// runOnce syncs every ledger's feeds to their end, checks the seals, and
// stops.
func (s *syncer) runOnce(ctx context.Context) error {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.cancel = cancel
	ids, err := s.ledgerIDs(ctx)
	if err != nil {
		return err
	}
	s.out.printf("%d ledgers to sync into %s", len(ids), s.cfg.dir)
	sem := make(chan struct{}, s.cfg.parallel)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			var twg sync.WaitGroup
			errs := make([]error, len(client.Topics))
			for i, topic := range client.Topics {
				twg.Go(func() { errs[i] = s.topic(id, topic).run(ctx, true) })
			}
			twg.Wait()
			if err := errors.Join(errs...); err != nil {
				s.fail(fmt.Errorf("ledger %s: %w", id, err))
				return
			}
			s.fail(s.verifyLedger(ctx, id))
		})
	}
	wg.Wait()
	if s.fatalErr != nil {
		return s.fatalErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	d := time.Since(start)
	s.out.printf("done: %d ledgers, %d new entries written, %d dates sealed and verified, in %s (%.0f entries/s)",
		len(ids), s.written.Load(), s.sealed.Load(), d.Round(time.Millisecond), float64(s.written.Load())/d.Seconds())
	return nil
}

// follow syncs until ctx ends: a worker per (ledger, topic) long-polls its
// feed; every --refresh the ledger list is read again (new ledgers start)
// and every ledger's newly closed dates are checked.
func (s *syncer) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.cancel = cancel
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	running := map[string]bool{}
	start := func(id string) {
		mu.Lock()
		defer mu.Unlock()
		if running[id] {
			return
		}
		running[id] = true
		s.out.printf("%s: following", id)
		var left atomic.Int32
		left.Store(int32(len(client.Topics)))
		for _, topic := range client.Topics {
			wg.Go(func() {
				defer func() {
					if left.Add(-1) == 0 {
						mu.Lock()
						delete(running, id)
						mu.Unlock()
					}
				}()
				s.followTopic(ctx, id, topic)
			})
		}
	}
	for {
		ids, err := s.ledgerIDs(ctx)
		if err != nil && ctx.Err() == nil {
			s.out.printf("%v (retrying in %s)", err, s.cfg.refresh)
		}
		for _, id := range ids {
			start(id)
		}
		for _, id := range ids {
			s.followSeals(ctx, id)
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			s.bg.Wait()
			if s.fatalErr != nil {
				return s.fatalErr
			}
			s.out.printf("stopped: %d new entries written, %d dates sealed and verified", s.written.Load(), s.sealed.Load())
			return nil
		case <-time.After(s.cfg.refresh):
		}
	}
}

// followSeals checks ledger id's newly closed dates while following: a
// seal that does not match stops the sync; other errors (the server away)
// are reported and the check is tried again at the next refresh.
func (s *syncer) followSeals(ctx context.Context, id string) {
	err := s.verifyLedger(ctx, id)
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.Is(err, client.ErrSeal):
		s.fail(err)
	default:
		s.out.printf("%s: seal check: %v (trying again in %s)", id, err, s.cfg.refresh)
	}
}

// followTopic runs one feed's worker until ctx ends, restarting it from the
// committed state after errors that may pass.
func (s *syncer) followTopic(ctx context.Context, id, topic string) {
	for {
		err := s.topic(id, topic).run(ctx, false)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			continue
		case errors.Is(err, client.ErrSeal):
			s.fail(err)
			return
		case client.IsNotFound(err):
			s.out.printf("%s/%s: %v; no longer following it", id, topic, err)
			return
		}
		s.out.printf("%s/%s: %v (retrying in 10s)", id, topic, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}
