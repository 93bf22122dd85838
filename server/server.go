package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/feed"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/report"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// DefaultShutdownTimeout is how long Serve lets in-flight requests finish
// after its context ends before it cuts the remaining connections.
const DefaultShutdownTimeout = 10 * time.Second

// Config is what New needs. Store is required; the rest have defaults.
type Config struct {
	Store ledger.Backend
	// DataDir holds the server's local files (cursor.key). "" means the
	// store's directory when it is kept in local files (ledger.Files);
	// another store needs it set when Auth is.
	DataDir string
	// CursorKey, when set, is the key of the cursors' MACs (at least 16
	// bytes) instead of DataDir/cursor.key: nodes sharing a store share it,
	// so a cursor from one works on all.
	CursorKey []byte
	Logger    *slog.Logger // nil = discard

	HTTPAddr string // host:port; port 0 picks a free one
	GRPCAddr string // host:port; port 0 picks a free one

	// SocketPath is the admin socket ("" = none). New removes any file
	// already there, so the caller must hold the store's lock: with the
	// lock held, no other server can be listening on it. A path too long
	// for a unix socket is logged and served without.
	SocketPath string

	ShutdownTimeout time.Duration // 0 = DefaultShutdownTimeout

	// Auth authenticates API calls, issues tokens and writes the audit
	// log. Without it only health, readiness, metrics and reflection are
	// served. The caller closes it after Serve has returned.
	Auth *auth.Service
	// Audience is the "resource" answered by POST /accesstoken/get: the
	// audience of the tokens (auth.Config.Audience; "" = "ledgerfeed").
	Audience string
	// Limits bound requests and clients; zero fields take defaults.
	Limits Limits
	// Reports runs the report file jobs (report files and schedules, the
	// download route). Without it those methods answer UNIMPLEMENTED. The
	// caller runs and closes it.
	Reports *report.Service
}

// Server serves one store on its HTTP, gRPC and admin listeners.
type Server struct {
	store           ledger.Backend
	log             *slog.Logger
	shutdownTimeout time.Duration
	metrics         *metrics

	httpLn, grpcLn, adminLn net.Listener
	socketPath              string

	http   *http.Server
	grpc   *grpc.Server
	health *health.Server
	admin  *http.Server

	auth     *auth.Service
	audience string
	limits   Limits
	polls    *pollSlots
	// cursors makes and checks the report API's cursors, keyed with
	// <data>/cursor.key.
	cursors *feed.Cursors
	reports *report.Service
	// sealer seals closed ledger dates (sealer.go); nil without Auth.
	sealer *sealer
	// stopping is closed when shutdown begins: long polls answer at once
	// and SubscribeFeed streams end, so graceful stop does not wait on them.
	stopping     chan struct{}
	stoppingOnce sync.Once

	// The API services, registered on s.grpc and called in process by the
	// REST gateway (inproc.go) through chain, the unary interceptors.
	adminSrv  v1.AdminServiceServer
	reportSrv v1.ReportServiceServer
	chain     grpc.UnaryServerInterceptor
	gateway   http.Handler

	// draining is set when shutdown begins; /readyz then answers 503.
	draining atomic.Bool
	// baseCtx is the parent of every HTTP request context; it is cancelled
	// when the shutdown timeout cuts the remaining requests.
	baseCtx    context.Context
	cancelBase context.CancelFunc

	closeOnce sync.Once
}

// New binds every listener and builds the servers; nothing is served until
// Serve. On error every listener already bound is closed. A Server that is
// never served must be closed with Close.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: no store")
	}
	s := &Server{
		store:           cfg.Store,
		log:             cfg.Logger,
		shutdownTimeout: cfg.ShutdownTimeout,
		socketPath:      cfg.SocketPath,
		auth:            cfg.Auth,
		audience:        cfg.Audience,
		limits:          cfg.Limits.withDefaults(),
		reports:         cfg.Reports,
	}
	if s.audience == "" {
		s.audience = "ledgerfeed"
	}
	s.polls = newPollSlots(s.limits.MaxLongPollsPerClient)
	s.stopping = make(chan struct{})
	if s.auth != nil {
		key := cfg.CursorKey
		if key == nil {
			dir := cfg.DataDir
			if f, ok := cfg.Store.(ledger.Files); ok && dir == "" {
				dir = f.Dir()
			}
			if dir == "" {
				return nil, errors.New("server: no data directory for the cursor key (Config.DataDir)")
			}
			var err error
			if key, err = feed.LoadKey(dir); err != nil {
				return nil, err
			}
		}
		var err error
		if s.cursors, err = feed.NewCursors(key); err != nil {
			return nil, err
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.auth != nil {
		s.sealer = newSealer(cfg.Store, s.auth, s.log)
	}
	if s.shutdownTimeout <= 0 {
		s.shutdownTimeout = DefaultShutdownTimeout
	}
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.metrics = newMetrics(s.ready)

	var err error
	if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		s.Close()
		return nil, fmt.Errorf("http listen: %w", err)
	}
	if s.grpcLn, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		s.Close()
		return nil, fmt.Errorf("grpc listen: %w", err)
	}
	switch {
	case cfg.SocketPath == "":
	case len(cfg.SocketPath) > maxSocketPath:
		// Serving matters more than the socket: verify and backup can
		// still run with the server stopped.
		s.log.Warn("admin socket disabled: its path is too long for a unix socket; use a shorter data directory path to run verify and backup while serving",
			"path", cfg.SocketPath, "max_bytes", maxSocketPath)
		s.socketPath = ""
	default:
		if s.adminLn, err = listenAdmin(cfg.SocketPath); err != nil {
			s.Close()
			return nil, err
		}
	}

	baseContext := func(net.Listener) context.Context { return s.baseCtx }
	s.grpc, s.health = s.grpcServer()
	if s.auth != nil {
		s.chain = unaryChain(s.unaryInterceptors())
		mux, err := s.newGateway()
		if err != nil {
			s.Close()
			return nil, err
		}
		s.gateway = mux
	}
	s.http = &http.Server{
		Handler:           s.httpHandler(),
		ReadHeaderTimeout: s.limits.ReadHeaderTimeout,
		ReadTimeout:       s.limits.ReadTimeout,
		WriteTimeout:      s.limits.WriteTimeout,
		IdleTimeout:       s.limits.IdleTimeout,
		MaxHeaderBytes:    s.limits.MaxHeaderBytes,
		BaseContext:       baseContext,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.adminLn != nil {
		s.admin = &http.Server{
			Handler:           s.adminHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			BaseContext:       baseContext,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
	}
	return s, nil
}

// HTTPAddr is the address the HTTP listener is bound to.
func (s *Server) HTTPAddr() net.Addr { return s.httpLn.Addr() }

// GRPCAddr is the address the gRPC listener is bound to.
func (s *Server) GRPCAddr() net.Addr { return s.grpcLn.Addr() }

// SocketPath is the path of the admin socket, or "" when there is none.
func (s *Server) SocketPath() string { return s.socketPath }

// ready reports whether the server should take traffic: the store is open
// and no shutdown has begun.
func (s *Server) ready() bool { return !s.draining.Load() && s.store.Ready() }

// Serve serves until ctx ends or a listener fails, then shuts down
// gracefully: /readyz and gRPC health turn to not serving, the listeners stop
// accepting, in-flight HTTP requests and gRPC calls get up to the shutdown
// timeout to finish, and whatever is left is then cut. The admin socket is
// removed. Serve returns nil after a shutdown asked for through ctx, or the
// error of the listener that failed. It does not close the store.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 4)
	n := 0
	serve := func(name string, f func() error) {
		n++
		go func() {
			err := f()
			if errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
				// Stopped by shutdown, possibly before it began serving.
				err = nil
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", name, err)
			}
			errc <- err
		}()
	}
	serve("http", func() error { return s.http.Serve(s.httpLn) })
	serve("grpc", func() error { return s.grpc.Serve(s.grpcLn) })
	if s.admin != nil {
		serve("admin socket", func() error { return s.admin.Serve(s.adminLn) })
	}
	if s.sealer != nil {
		defer s.sealer.start()() // after shutdown: stop sealing
	}
	s.log.Info("serving", "http", s.HTTPAddr().String(), "grpc", s.GRPCAddr().String(), "admin_socket", s.socketPath)

	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
		n--
		if first != nil {
			s.log.Error("listener failed; shutting down", "err", first)
		}
	}
	s.shutdown()
	for ; n > 0; n-- {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Server) shutdown() {
	s.log.Info("shutting down", "timeout", s.shutdownTimeout.String())
	s.draining.Store(true)
	s.health.Shutdown()
	s.stoppingOnce.Do(func() { close(s.stopping) })

	ctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	stopHTTP := func(name string, srv *http.Server) {
		if err := srv.Shutdown(ctx); err != nil {
			s.log.Warn(name+": requests still running after shutdown timeout; closing", "err", err)
			srv.Close()
		}
	}
	if s.admin != nil {
		wg.Go(func() { stopHTTP("admin socket", s.admin) })
	}
	// REST first, then gRPC: a REST request in flight still needs the
	// gateway's connection to the gRPC server. gRPC callers are served
	// meanwhile; both share the one deadline.
	wg.Go(func() {
		stopHTTP("http", s.http)
		done := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.log.Warn("grpc: calls still running after shutdown timeout; stopping")
			s.grpc.Stop()
			<-done
		}
	})
	wg.Wait()
	s.Close()
}

// Close closes every listener, cancels what requests remain and removes the
// admin socket. Serve calls it; call it only for a Server never served.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.cancelBase()
		for _, ln := range []net.Listener{s.httpLn, s.grpcLn, s.adminLn} {
			if ln != nil {
				ln.Close() // already closed by a shutdown: error ignored
			}
		}
		if s.adminLn != nil {
			if err := os.Remove(s.socketPath); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("remove admin socket", "path", s.socketPath, "err", err)
			}
		}
	})
}
