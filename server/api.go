package server

import (
	"net/http"

	"google.golang.org/grpc"
)

// This file is where the API is mounted. Later issues add:
//
//   - gRPC: the public report service (with SubscribeFeed) and the
//     admin/ingest service, registered in registerGRPCServices, behind the
//     interceptor chain built in grpcServer (auth, audit, rate limit, errors,
//     metrics);
//   - HTTP: the Vipps-compatible REST gateway, the admin REST mapping,
//     /openapi.json and /.well-known/jwks.json, mounted in registerHTTPAPI.
//     The gateway is to dial the gRPC listener so that REST calls pass the
//     same interceptor chain as gRPC calls.
//
// Until then, paths other than /healthz, /readyz and /metrics answer 404.

// registerGRPCServices registers the API services on g. grpc.health.v1 and
// server reflection are registered by grpcServer.
func (s *Server) registerGRPCServices(g *grpc.Server) {}

// registerHTTPAPI mounts the REST API on mux. Use s.handle so that each
// route is counted and timed under its own name.
func (s *Server) registerHTTPAPI(mux *http.ServeMux) {}
