package server

import (
	"net/http"

	"google.golang.org/grpc"

	"github.com/ledgerfeed/ledgerfeed/feed"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// This file is where the API is mounted: without Config.Auth there is none
// (only /healthz, /readyz, /metrics, gRPC health and reflection).
//
// gRPC: AdminService (adminapi.go, schedules.go) and ReportService
// (reportapi.go; manifest.go, search.go, files.go for the extensions),
// behind the chain of chain.go.
//
// HTTP: the gateway (gateway.go), calling the same services in process
// through the same chain (inproc.go), on /admin/, /settlement/ and /report/;
// report file downloads (files.go); the
// token endpoints and the JWKS (token.go); the removed
// /report/v1/ledgertransactions (410). All behind the REST middleware
// (rest.go).

// registerGRPCServices registers the API services on g. grpc.health.v1 and
// server reflection are registered by grpcServer.
func (s *Server) registerGRPCServices(g *grpc.Server) {
	if s.auth == nil {
		return
	}
	s.adminSrv = s.withSchedules(&adminAPI{store: s.store, auth: s.auth})
	s.reportSrv = &reportAPI{srv: s, store: s.store, reader: feed.NewReader(s.store), cursors: s.cursors}
	v1.RegisterAdminServiceServer(g, s.adminSrv)
	v1.RegisterReportServiceServer(g, s.reportSrv)
}

// registerHTTPAPI mounts the REST API on mux. Use s.handle so that each
// route is counted and timed under its own name.
func (s *Server) registerHTTPAPI(mux *http.ServeMux) {
	if s.auth == nil || s.gateway == nil {
		return
	}
	body := s.limits.MaxBodyBytes
	s.handle(mux, "/admin/", "admin", s.rest(body, s.gateway))
	s.handle(mux, "/settlement/", "report", s.rest(body, reportQuery(s.gateway)))
	s.handle(mux, "/report/", "report", s.rest(body, reportQuery(s.gateway)))
	s.handle(mux, feedPattern, "report", s.rest(body, reportQuery(s.feedREST(s.gateway))))
	s.handle(mux, "GET "+downloadPath+"{token}", "download", s.rest(body, http.HandlerFunc(s.handleDownload)))
	s.handle(mux, "GET /report/v1/ledgertransactions", "ledgertransactions", s.rest(body, http.HandlerFunc(s.handleLedgerTransactions)))
	s.handle(mux, "POST /accesstoken/get", "token", s.rest(tokenMaxBodyBytes, http.HandlerFunc(s.handleAccessTokenGet)))
	s.handle(mux, "POST /oauth/token", "token", s.rest(tokenMaxBodyBytes, http.HandlerFunc(s.handleOAuthToken)))
	s.handle(mux, "POST /miami/v1/token", "token", s.rest(tokenMaxBodyBytes, http.HandlerFunc(s.handleOAuthToken)))
	s.handle(mux, "GET /.well-known/jwks.json", "jwks", http.HandlerFunc(s.handleJWKS))
}
