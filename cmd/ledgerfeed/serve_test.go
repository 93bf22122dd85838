package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

func TestServe_HealthReadyMetricsGRPC_GracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)

	if code, body := s.get(t, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	if code, body := s.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz = %d %q, want 200", code, body)
	}
	if code, _ := s.get(t, "/no-such-path"); code != 404 {
		t.Errorf("/no-such-path = %d, want 404", code)
	}
	code, metrics := s.get(t, "/metrics")
	if code != 200 {
		t.Errorf("/metrics = %d, want 200", code)
	}
	for _, want := range []string{
		"go_goroutines ",
		"ledgerfeed_ready 1",
		`ledgerfeed_http_requests_total{code="200",handler="healthz",method="get"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("grpc health check: %v", err)
	}
	if hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("grpc health = %v, want SERVING", hr.GetStatus())
	}
	if services := listServices(ctx, t, conn); !slices.Contains(services, "grpc.health.v1.Health") {
		t.Errorf("reflection lists %v, want grpc.health.v1.Health among them", services)
	}

	sock := filepath.Join(dir, "ledgerfeed.sock")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("admin socket: %v", err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket mode = %v, want a socket with 0600", fi.Mode())
	}

	if err := s.stop(t); err != nil {
		t.Fatalf("serve returned %v after shutdown, want nil\nstderr:\n%s", err, s.stderr)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket still there after shutdown: %v", err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get("http://" + s.httpAddr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("HTTP still answers after shutdown")
	}
	for _, want := range []string{"shutting down", "store closed"} {
		if !strings.Contains(s.stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, s.stderr)
		}
	}
	// The store was closed: it opens again at once.
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatalf("reopen after shutdown: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

func listServices(ctx context.Context, t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("reflection: %v", err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatalf("reflection send: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection recv: %v", err)
	}
	stream.CloseSend()
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names
}

func TestServe_SecondServeFailsFast(t *testing.T) {
	dir := t.TempDir()
	startServe(t, dir)

	start := time.Now()
	_, _, err := runCmd(t, "serve", "--data", dir, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0")
	took := time.Since(start)
	if !errors.Is(err, ledger.ErrLocked) {
		t.Fatalf("second serve: err = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), dir) || strings.Contains(err.Error(), "\n") {
		t.Errorf("message %q: want one line naming the data directory", err)
	}
	if took > 5*time.Second {
		t.Errorf("second serve took %v to fail, want fast", took)
	}
}

func TestServe_RemovesStaleSocket(t *testing.T) {
	dir := t.TempDir()
	// A socket file left by a server that died without cleaning up.
	if err := os.WriteFile(filepath.Join(dir, "ledgerfeed.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, dir)
	if _, _, err := runCmd(t, "verify", "--data", dir); err != nil {
		t.Fatalf("verify through the new socket: %v", err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestServe_ListenErrorClosesStore(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, t.TempDir())
	// The HTTP port is taken: serve fails, and leaves the store closed.
	_, _, err := runCmd(t, "serve", "--data", dir, "--http-addr", s.httpAddr, "--grpc-addr", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "http listen") {
		t.Fatalf("serve on a taken port: err = %v, want an http listen error", err)
	}
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatalf("store not closed after a failed serve: %v", err)
	}
	st.Close()
}

// A data directory too deep for a unix socket path still serves, without
// the admin socket; verify then says why it cannot reach the server.
func TestServe_SocketPathTooLong(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 110))
	s := startServe(t, dir)
	if code, _ := s.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz = %d, want 200", code)
	}
	if !strings.Contains(s.stderr.String(), "admin socket disabled") {
		t.Errorf("no warning about the admin socket:\n%s", s.stderr)
	}
	_, _, err := runCmd(t, "verify", "--data", dir)
	if !errors.Is(err, ledger.ErrLocked) || !strings.Contains(err.Error(), "no server's admin socket") {
		t.Errorf("verify: err = %v, want locked with no admin socket", err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
}
