package reference

import (
	"context"
	"net"

	"google.golang.org/grpc"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// GRPC is the bare gRPC reference the report API's gRPC benchmarks are
// measured against: a grpc.Server with the ReportService registered, whose
// GetFeed returns the same prebuilt message to every call, with no
// interceptors, auth, store read or conversion.
type GRPC struct {
	srv *grpc.Server
	ln  net.Listener
}

type grpcFeed struct {
	v1.UnimplementedReportServiceServer
	page *v1.GetFeedResponse
}

func (g *grpcFeed) GetFeed(context.Context, *v1.GetFeedRequest) (*v1.GetFeedResponse, error) {
	return g.page, nil
}

// ServeGRPC starts a bare gRPC server on addr (e.g. "127.0.0.1:0") whose
// GetFeed answers page to every call. page must not be changed afterwards.
func ServeGRPC(addr string, page *v1.GetFeedResponse) (*GRPC, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &GRPC{srv: grpc.NewServer(), ln: ln}
	v1.RegisterReportServiceServer(s.srv, &grpcFeed{page: page})
	go s.srv.Serve(ln)
	return s, nil
}

// Addr is the listening address (host:port).
func (s *GRPC) Addr() string { return s.ln.Addr().String() }

// Close stops the server at once.
func (s *GRPC) Close() { s.srv.Stop() }
