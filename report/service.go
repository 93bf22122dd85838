package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Defaults of Config.
const (
	DefaultWorkers          = 2
	DefaultRetention        = 30 * 24 * time.Hour
	DefaultTokenTTL         = 15 * time.Minute
	DefaultDownloadsPerHour = 25
	DefaultMaxActive        = 10
	DefaultSweepEvery       = 10 * time.Minute
	DefaultScheduleEvery    = time.Minute
	DefaultLease            = 30 * time.Second
	DefaultPollEvery        = 5 * time.Second
	// maxAttempts bounds how often a job is started: one that keeps dying
	// with the server is failed instead of run forever.
	maxAttempts = 3
)

// Store is what the report jobs use of the ledger store: the logs they read,
// the ledgers and clients they check, and their own records.
type Store interface {
	ledger.EntryReader
	ledger.Ledgers
	ledger.Clients
	ledger.Records
}

// Config configures a Service. Store and Dir are required.
type Config struct {
	// Store keeps the jobs. When it is also a ledger.Blobs (a store several
	// nodes share), finished files are kept there, so that any node serves
	// any file; else in Dir.
	Store Store
	// Dir holds the finished files (created if missing), e.g. <data>/reports,
	// or with a ledger.Blobs store only the files being written; and the
	// node id (file node-id). Each node has its own.
	Dir string
	// NodeID names this node in the jobs it claims; "" means the id kept in
	// Dir/node-id (made on first start). Two live nodes must not share one.
	NodeID string
	// Lease is how long a node's claim of a running job holds without
	// renewal (renewed every Lease/3 while it runs); a job whose node died
	// is taken over by another once it ran out (0: DefaultLease).
	Lease time.Duration
	// PollEvery is how often the node looks for jobs requested on other
	// nodes and for jobs whose lease ran out (0: DefaultPollEvery).
	PollEvery time.Duration
	// Workers is how many jobs run at once (0: DefaultWorkers).
	Workers int
	// Retention is how long a file is kept after it was requested; then the
	// file and its record are deleted (0: DefaultRetention).
	Retention time.Duration
	// TokenTTL is how long a download URL works (0: DefaultTokenTTL).
	TokenTTL time.Duration
	// DownloadsPerHour is each client's download limit, a token bucket of
	// that size refilled over an hour (0: DefaultDownloadsPerHour; < 0: none).
	DownloadsPerHour int
	// MaxActive is how many pending or running files one client may have
	// (0: DefaultMaxActive).
	MaxActive int
	// SweepEvery is how often expired files and tokens are deleted
	// (0: DefaultSweepEvery); ScheduleEvery how often schedules are checked
	// besides on every change of a scheduled ledger (0: DefaultScheduleEvery).
	SweepEvery, ScheduleEvery time.Duration
	// BaseURL is the scheme://host[:port] that download links start with,
	// as clients reach the server (e.g. behind a TLS proxy). Empty: the
	// server derives it from the request.
	BaseURL string
	Now     func() time.Time // nil: time.Now
	Logger  *slog.Logger     // nil: discard

	// beforeWrite, when set (tests), runs after a job is marked running and
	// before its file is written.
	beforeWrite func(ctx context.Context, f *File)
}

// Service runs report file jobs. Its methods are safe for concurrent use.
type Service struct {
	cfg Config
	st  Store
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	queue   []string // record keys of jobs to run, oldest first
	queued  map[string]bool
	wake    chan struct{} // a job was queued
	kick    chan struct{} // schedules changed
	lmu     sync.Mutex
	limits  map[string]*rate.Limiter
	running sync.Map // record key → true while a worker runs it

	node   string    // Config.NodeID or Dir/node-id
	files  fileStore // where finished files are kept
	shared bool      // files are a shared store's blobs
	polls  atomic.Int64
}

// New opens the service: it makes Dir, removes temp files a crash left, and
// queues every job it may claim (lease.go): pending ones, those this node
// was running when it stopped (run again from the start), and those whose
// lease ran out; never one another live node is running. Jobs run once Run
// is called.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Dir == "" {
		return nil, errors.New("report: Store and Dir are required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.DownloadsPerHour == 0 {
		cfg.DownloadsPerHour = DefaultDownloadsPerHour
	}
	if cfg.MaxActive <= 0 {
		cfg.MaxActive = DefaultMaxActive
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = DefaultSweepEvery
	}
	if cfg.ScheduleEvery <= 0 {
		cfg.ScheduleEvery = DefaultScheduleEvery
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = DefaultPollEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("report files directory: %w", err)
	}
	s := &Service{
		cfg: cfg, st: cfg.Store, log: cfg.Logger, now: cfg.Now,
		queued: map[string]bool{},
		wake:   make(chan struct{}, 1),
		kick:   make(chan struct{}, 1),
		limits: map[string]*rate.Limiter{},
		node:   cfg.NodeID,
		files:  dirFiles{cfg.Dir},
	}
	if b, ok := cfg.Store.(ledger.Blobs); ok {
		s.files, s.shared = blobFiles{b}, true
	}
	if s.node == "" {
		id, err := loadNodeID(cfg.Dir)
		if err != nil {
			return nil, err
		}
		s.node = id
	}
	// Temp files a crash left: ours, and the XLSX stream writer's.
	tmps, _ := filepath.Glob(filepath.Join(cfg.Dir, "*.tmp"))
	xtmps, _ := filepath.Glob(filepath.Join(cfg.Dir, "excelize-*"))
	for _, p := range append(tmps, xtmps...) {
		os.Remove(p)
	}
	if err := s.findWork(); err != nil {
		return nil, err
	}
	return s, nil
}

// Config returns the configuration in force, defaults filled in.
func (s *Service) Config() Config { return s.cfg }

// Run runs the workers, the scheduler, the retention sweeper and the poll
// for other nodes' jobs until ctx ends, then waits for them. A job cut
// short stays "running" in the store under this node's lease: the next New
// on this Dir runs it again, or another node once the lease ran out.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() { s.work(ctx) })
	}
	wg.Go(func() { s.scheduleLoop(ctx) })
	wg.Go(func() { s.sweepLoop(ctx) })
	wg.Go(func() { s.pollLoop(ctx) })
	wg.Wait()
}

func (s *Service) enqueue(key string) {
	s.mu.Lock()
	if !s.queued[key] {
		s.queued[key] = true
		s.queue = append(s.queue, key)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next takes the oldest queued job, waiting for one; "" when ctx ends.
func (s *Service) next(ctx context.Context) string {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			key := s.queue[0]
			s.queue = s.queue[1:]
			delete(s.queued, key)
			more := len(s.queue) > 0
			s.mu.Unlock()
			if more {
				select { // pass the wake-up on to another worker
				case s.wake <- struct{}{}:
				default:
				}
			}
			return key
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return ""
		case <-s.wake:
		}
	}
}

func (s *Service) work(ctx context.Context) {
	for {
		key := s.next(ctx)
		if key == "" {
			return
		}
		if _, busy := s.running.LoadOrStore(key, true); busy {
			continue // another worker here runs it
		}
		s.runJob(ctx, key)
		s.running.Delete(key)
	}
}

// update changes the file record of key with fn, atomically, and returns
// the record as stored. fn may run more than once.
func (s *Service) update(ctx context.Context, key string, fn func(f *File) error) (*File, error) {
	var out *File
	err := s.st.UpdateRecords(ctx, func(tx ledger.RecordTx) error {
		v, err := tx.Get(ledger.RecordReportFiles, key)
		if err != nil {
			return err
		}
		if v == nil {
			return fmt.Errorf("report file: %w", ledger.ErrNotFound)
		}
		f, err := unmarshalFile(v)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
		out = f
		return tx.Put(ledger.RecordReportFiles, key, f.marshal())
	})
	return out, err
}

var errSkip = errors.New("skip")

// runJob runs one job: claims it (lease.go), writes the file to a temp
// file and stores it (storage.go), and marks it successful; or failed, with
// the reason. A job cut short by ctx stays running (see Run); one this node
// lost meanwhile is left to its new owner.
func (s *Service) runJob(ctx context.Context, key string) {
	f, err := s.claim(ctx, key)
	switch {
	case errors.Is(err, errSkip) || errors.Is(err, ledger.ErrNotFound):
		return
	case err != nil:
		if ctx.Err() == nil {
			s.log.Error("report job: claim", "file", key, "err", err)
		}
		return
	case f.Status != StatusRunning:
		s.log.Error("report job failed", "file", f.ID, "err", f.Error)
		return
	}
	attempt := f.Attempts
	jctx, lose := context.WithCancelCause(ctx)
	var lease sync.WaitGroup
	lease.Go(func() { s.keepLease(jctx, key, attempt, f.LeaseUntil, lose) })
	if s.cfg.beforeWrite != nil {
		s.cfg.beforeWrite(jctx, f)
	}
	name := s.files.name(f)
	size, rows, werr := s.writeFile(jctx, f, name)
	lose(nil)
	lease.Wait()
	lost := errors.Is(context.Cause(jctx), errLost)
	if werr != nil && ctx.Err() != nil && !lost {
		return // cut short by a shutdown: run again later (see Run)
	}
	if !lost {
		_, err = s.update(context.WithoutCancel(ctx), key, func(g *File) error {
			if !s.owns(g, attempt) {
				return errLost
			}
			g.CompletedAt = s.now().UTC()
			if werr != nil {
				g.Status, g.Error = StatusFailed, reason(werr)
				return nil
			}
			g.Status, g.Size, g.Rows, g.Error, g.Object = StatusSuccessful, size, rows, "", name
			return nil
		})
		lost = errors.Is(err, errLost) || errors.Is(err, ledger.ErrNotFound)
	}
	switch {
	case lost:
		s.log.Warn("report job lost its lease to another node; its result is dropped", "file", f.ID, "attempt", attempt)
		if s.shared && werr == nil {
			if err := s.files.remove(context.WithoutCancel(ctx), name); err != nil {
				s.log.Error("report job: remove the file of a lost job", "file", f.ID, "name", name, "err", err)
			}
		}
		return
	case err != nil:
		s.log.Error("report job: mark finished", "file", f.ID, "err", err)
	}
	if werr != nil {
		s.log.Warn("report job failed", "file", f.ID, "client", f.ClientID, "ledger", f.LedgerID, "err", werr)
	}
}

// reason is the text a failed job shows its client: an input or lookup
// error's own text, else "internal error" (the error is logged).
func reason(err error) string {
	var fe *ledger.FieldError
	switch {
	case errors.As(err, &fe):
		return fe.Error()
	case errors.Is(err, ledger.ErrInvalid), errors.Is(err, ledger.ErrNotFound):
		return err.Error()
	}
	return "internal error"
}

// writeFile writes f's file to a temp file in Dir and stores it under name
// (storage.go: renamed in Dir, or put as a blob), so a stored file is
// always whole. It returns the size and the number of data rows.
func (s *Service) writeFile(ctx context.Context, f *File, name string) (int64, int64, error) {
	if err := s.authorize(f); err != nil {
		return 0, 0, err
	}
	l, err := s.st.GetLedger(f.LedgerID)
	if err != nil {
		return 0, 0, err
	}
	exp, ok := ledger.CurrencyExponent(l.Currency)
	if !ok {
		return 0, 0, fmt.Errorf("%w: currency %q of ledger %s has no ISO 4217 exponent", ledger.ErrInvalid, l.Currency, l.ID)
	}
	tmp, err := os.CreateTemp(s.cfg.Dir, f.ID+".*.tmp")
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // after a rename: nothing there
	}()
	rows, err := s.writeTo(ctx, f, l, exp, tmp)
	if err != nil {
		return 0, 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	size, err := s.files.put(ctx, tmp, name)
	if err != nil {
		return 0, 0, err
	}
	return size, rows, nil
}

func (s *Service) writeTo(ctx context.Context, f *File, l ledger.Ledger, exp int, w io.Writer) (int64, error) {
	tw, err := newTableWriter(f.Format, w, exp, s.cfg.Dir)
	if err != nil {
		return 0, err
	}
	var rows int64
	if f.Type == TypeBalances {
		rows, err = writeBalances(ctx, s.st, f, l.Currency, tw)
	} else {
		rows, err = writeEntries(ctx, s.st, f, tw)
	}
	if cerr := tw.close(); err == nil {
		err = cerr
	}
	return rows, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// authorize checks, when a job runs, that its client still exists and may
// read the ledger (and its GDPR fields, if asked): grants revoked since the
// request, or since a schedule was made, stop the file.
func (s *Service) authorize(f *File) error {
	c, err := s.st.GetClient(f.ClientID)
	if err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			return fmt.Errorf("%w: client %s no longer exists", ledger.ErrInvalid, f.ClientID)
		}
		return err
	}
	g, ok := c.Grant(f.LedgerID)
	if !ok || !c.HasScope(ledger.ScopeRead) {
		return fmt.Errorf("%w: client %s may not read ledger %s", ledger.ErrInvalid, f.ClientID, f.LedgerID)
	}
	if f.GDPR && !g.GDPRConsent {
		return fmt.Errorf("%w: client %s has no GDPR consent for ledger %s", ledger.ErrInvalid, f.ClientID, f.LedgerID)
	}
	return nil
}

// Request checks r, stores a new pending file of clientID and queues it.
// The caller has checked that the client may read the ledger (and its GDPR
// fields). The dates must be closed: a file never changes once made.
func (s *Service) Request(ctx context.Context, clientID string, r Request) (File, error) {
	r, err := r.normalize()
	if err != nil {
		return File{}, err
	}
	if err := s.checkLedgerDates(r); err != nil {
		return File{}, err
	}
	if r.Format == FormatXLSX && r.Type == TypeEntries {
		var n uint64
		for _, t := range r.Topics {
			first, last, ok, err := seqRange(s.st, r.LedgerID, t, r.From, r.To)
			if err != nil {
				return File{}, err
			}
			if ok {
				n += last - first + 1
			}
		}
		if n > MaxXLSXRows {
			return File{}, fieldErr("format", "%d entries do not fit an XLSX sheet (at most %d rows); ask for csv or fewer dates", n, MaxXLSXRows)
		}
	}
	f := s.newFile(clientID, r, SourceManual, "")
	err = s.st.UpdateRecords(ctx, func(tx ledger.RecordTx) error {
		active := 0
		err := tx.Scan(ledger.RecordReportFiles, clientID+"\x00", func(_ string, v []byte) error {
			g, err := unmarshalFile(v)
			if err == nil && !g.Finished() {
				active++
			}
			return err
		})
		if err != nil {
			return err
		}
		if active >= s.cfg.MaxActive {
			return fmt.Errorf("%w: %d report files of this client are pending or running already; wait for one to finish", ledger.ErrConflict, active)
		}
		return tx.Put(ledger.RecordReportFiles, f.key(), f.marshal())
	})
	if err != nil {
		return File{}, err
	}
	s.enqueue(f.key())
	return *f, nil
}

// checkLedgerDates answers NotFound for an unknown ledger and a field error
// for a date range that is not closed yet.
func (s *Service) checkLedgerDates(r Request) error {
	h, err := s.st.Head(r.LedgerID, ledger.TopicFunds)
	if err != nil {
		return err
	}
	if h.OpenDate == 0 {
		return fieldErr("toLedgerDate", "no date of ledger %s is closed yet", r.LedgerID)
	}
	if r.To >= h.OpenDate {
		return fieldErr("toLedgerDate", "%s is not closed yet; the ledger's open date is %s", r.To, h.OpenDate)
	}
	return nil
}

func (s *Service) newFile(clientID string, r Request, source, scheduleID string) *File {
	return &File{
		ID: newID(), ClientID: clientID, Status: StatusPending,
		Type: r.Type, LedgerID: r.LedgerID, Topics: r.Topics, From: r.From, To: r.To,
		Format: r.Format, Language: r.Language, GDPR: r.GDPR,
		Source: source, ScheduleID: scheduleID,
		CreatedAt: s.now().UTC(), FileName: fileName(r),
	}
}

// scanClient calls fn for each file of a client.
func (s *Service) scanClient(clientID string, fn func(f *File)) error {
	return s.st.ScanRecords(ledger.RecordReportFiles, clientID+"\x00", func(_ string, v []byte) error {
		f, err := unmarshalFile(v)
		if err != nil {
			return err
		}
		fn(f)
		return nil
	})
}

// Get returns a file of clientID; another client's file, or one that does
// not exist, is ErrNotFound alike.
func (s *Service) Get(clientID, id string) (File, error) {
	if !validID(id) {
		return File{}, fmt.Errorf("report file %s: %w", id, ledger.ErrNotFound)
	}
	v, err := s.st.GetRecord(ledger.RecordReportFiles, fileKey(clientID, id))
	if errors.Is(err, ledger.ErrNotFound) {
		return File{}, fmt.Errorf("report file %s: %w", id, ledger.ErrNotFound)
	}
	if err != nil {
		return File{}, err
	}
	f, err := unmarshalFile(v)
	if err != nil {
		return File{}, err
	}
	return *f, nil
}

// ListFilter selects and pages a client's files.
type ListFilter struct {
	CreatedAfter  time.Time // zero: 30 days ago
	CreatedBefore time.Time // zero: no bound
	Source        string    // "", SourceAuto or SourceManual
	Status        Status    // "" or a status
	LedgerID      string    // "" or a ledger
	Limit, Offset int       // Limit 0: 20; at most 100
	// Visible, when set, hides files of ledgers it answers false for (the
	// caller's grants as of now).
	Visible func(ledgerID string) bool
}

// Paging limits of List.
const (
	DefaultListLimit = 20
	MaxListLimit     = 100
	DefaultListAge   = 30 * 24 * time.Hour
)

// List returns the number of a client's files matching f and the page of
// them f.Offset and f.Limit select, newest first.
func (s *Service) List(clientID string, lf ListFilter) (int, []File, error) {
	switch {
	case lf.Limit < 0 || lf.Limit > MaxListLimit:
		return 0, nil, fieldErr("limit", "must be 1–%d", MaxListLimit)
	case lf.Limit == 0:
		lf.Limit = DefaultListLimit
	}
	if lf.Offset < 0 {
		return 0, nil, fieldErr("offset", "must not be negative")
	}
	switch lf.Source {
	case "", SourceAuto, SourceManual:
	default:
		return 0, nil, fieldErr("source", "%q is not a source (auto or manual)", lf.Source)
	}
	switch lf.Status {
	case "", StatusPending, StatusRunning, StatusSuccessful, StatusFailed:
	default:
		return 0, nil, fieldErr("status", "%q is not a status (pending, running, successful or failed)", lf.Status)
	}
	if lf.CreatedAfter.IsZero() {
		lf.CreatedAfter = s.now().Add(-DefaultListAge)
	}
	var all []File
	err := s.scanClient(clientID, func(f *File) {
		switch {
		case f.CreatedAt.Before(lf.CreatedAfter),
			!lf.CreatedBefore.IsZero() && !f.CreatedAt.Before(lf.CreatedBefore),
			lf.Source != "" && f.Source != lf.Source,
			lf.Status != "" && f.Status != lf.Status,
			lf.LedgerID != "" && f.LedgerID != lf.LedgerID,
			lf.Visible != nil && !lf.Visible(f.LedgerID):
			return
		}
		all = append(all, *f)
	})
	if err != nil {
		return 0, nil, err
	}
	slices.SortFunc(all, func(a, b File) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
	})
	if lf.Offset >= len(all) {
		return len(all), []File{}, nil
	}
	return len(all), all[lf.Offset:min(len(all), lf.Offset+lf.Limit)], nil
}
