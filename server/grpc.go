package server

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// grpcServer builds the gRPC server with its interceptor chain, the API
// services, grpc.health.v1 and server reflection. Health answers SERVING for
// the empty service name until shutdown begins.
func (s *Server) grpcServer() (*grpc.Server, *health.Server) {
	g := grpc.NewServer(
		grpc.ChainUnaryInterceptor(s.unaryInterceptors()...),
		grpc.ChainStreamInterceptor(s.streamInterceptors()...),
		grpc.MaxRecvMsgSize(s.limits.MaxRecvMsgBytes),
		grpc.MaxHeaderListSize(uint32(s.limits.MaxHeaderBytes)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.StatsHandler(answeredHandler{}), // pooled answers go back at End (pool.go)
	)
	s.registerGRPCServices(g)

	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	return g, hs
}
