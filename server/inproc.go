package server

import (
	"context"

	"google.golang.org/grpc"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// The REST gateway calls the services in process: grpc-gateway's
// Register…HandlerServer decodes the HTTP request into the request message
// and hands it to the local… types below, which run it through the same
// unary interceptor chain as a gRPC call (chain.go) and then the service
// method itself. So REST and gRPC share one chain (authentication, scope,
// rate limit, audit, errors, metrics) without a gRPC hop: no protobuf
// encoding of a 1000-entry page only to decode it again, no HTTP/2 framing
// over an in-memory pipe. The gateway's in-process handlers install a
// grpc.ServerTransportStream, so grpc.SetHeader and grpc.SetTrailer in the
// chain and the services reach the REST answer as with a real call.
// SubscribeFeed, the one server stream, has no REST route.

// unaryChain runs the unary interceptors in order around handler, as
// grpc.ChainUnaryInterceptor does for a gRPC call.
func unaryChain(ics []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		h := handler
		for i := len(ics) - 1; i >= 0; i-- {
			ic, next := ics[i], h
			h = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, next) }
		}
		return h(ctx, req)
	}
}

// invokeLocal runs one unary method in process: the chain runs around h.
// The REST state (request id, a body the marshaler could not decode) reaches
// the chain in ctx.
func invokeLocal[Req, Resp any](ctx context.Context, s *Server, srv any, method string, req Req, h func(context.Context, Req) (Resp, error)) (Resp, error) {
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: method}
	out, err := s.chain(ctx, req, info, func(ctx context.Context, r any) (any, error) {
		return h(ctx, r.(Req))
	})
	resp, _ := out.(Resp)
	if err != nil {
		var zero Resp
		return zero, err
	}
	return resp, nil
}

// localReport is ReportService for the gateway, in process.
type localReport struct {
	v1.UnimplementedReportServiceServer // SubscribeFeed: gRPC only
	s                                   *Server
	api                                 v1.ReportServiceServer
}

func (l localReport) ListLedgers(ctx context.Context, r *v1.ListLedgersRequest) (*v1.ListLedgersResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.ReportService_ListLedgers_FullMethodName, r, l.api.ListLedgers)
}

func (l localReport) GetDateReport(ctx context.Context, r *v1.GetDateReportRequest) (*v1.GetDateReportResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.ReportService_GetDateReport_FullMethodName, r, l.api.GetDateReport)
}

func (l localReport) GetFeed(ctx context.Context, r *v1.GetFeedRequest) (*v1.GetFeedResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.ReportService_GetFeed_FullMethodName, r, l.api.GetFeed)
}

func (l localReport) GetDateManifest(ctx context.Context, r *v1.GetDateManifestRequest) (*v1.GetDateManifestResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.ReportService_GetDateManifest_FullMethodName, r, l.api.GetDateManifest)
}

func (l localReport) SearchEntries(ctx context.Context, r *v1.SearchEntriesRequest) (*v1.SearchEntriesResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.ReportService_SearchEntries_FullMethodName, r, l.api.SearchEntries)
}

func (l localReport) RequestReportFile(ctx context.Context, r *v1.RequestReportFileRequest) (*v1.RequestReportFileResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.ReportService_RequestReportFile_FullMethodName, r, l.api.RequestReportFile)
}

func (l localReport) GetReportFile(ctx context.Context, r *v1.GetReportFileRequest) (*v1.GetReportFileResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.ReportService_GetReportFile_FullMethodName, r, l.api.GetReportFile)
}

func (l localReport) ListReportFiles(ctx context.Context, r *v1.ListReportFilesRequest) (*v1.ListReportFilesResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.ReportService_ListReportFiles_FullMethodName, r, l.api.ListReportFiles)
}

// localAdmin is AdminService for the gateway, in process.
type localAdmin struct {
	v1.UnimplementedAdminServiceServer
	s   *Server
	api v1.AdminServiceServer
}

func (l localAdmin) PutLedger(ctx context.Context, r *v1.PutLedgerRequest) (*v1.PutLedgerResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_PutLedger_FullMethodName, r, l.api.PutLedger)
}

func (l localAdmin) GetLedger(ctx context.Context, r *v1.GetLedgerRequest) (*v1.GetLedgerResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_GetLedger_FullMethodName, r, l.api.GetLedger)
}

func (l localAdmin) AppendEntries(ctx context.Context, r *v1.AppendEntriesRequest) (*v1.AppendEntriesResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_AppendEntries_FullMethodName, r, l.api.AppendEntries)
}

func (l localAdmin) CloseDate(ctx context.Context, r *v1.CloseDateRequest) (*v1.CloseDateResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_CloseDate_FullMethodName, r, l.api.CloseDate)
}

func (l localAdmin) CreateClient(ctx context.Context, r *v1.CreateClientRequest) (*v1.CreateClientResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_CreateClient_FullMethodName, r, l.api.CreateClient)
}

func (l localAdmin) GetClient(ctx context.Context, r *v1.GetClientRequest) (*v1.GetClientResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_GetClient_FullMethodName, r, l.api.GetClient)
}

func (l localAdmin) UpdateClient(ctx context.Context, r *v1.UpdateClientRequest) (*v1.UpdateClientResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_UpdateClient_FullMethodName, r, l.api.UpdateClient)
}

func (l localAdmin) DeleteClient(ctx context.Context, r *v1.DeleteClientRequest) (*v1.DeleteClientResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_DeleteClient_FullMethodName, r, l.api.DeleteClient)
}

func (l localAdmin) ListClients(ctx context.Context, r *v1.ListClientsRequest) (*v1.ListClientsResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_ListClients_FullMethodName, r, l.api.ListClients)
}

func (l localAdmin) RotateClientSecret(ctx context.Context, r *v1.RotateClientSecretRequest) (*v1.RotateClientSecretResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_RotateClientSecret_FullMethodName, r, l.api.RotateClientSecret)
}

func (l localAdmin) EraseGDPR(ctx context.Context, r *v1.EraseGDPRRequest) (*v1.EraseGDPRResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_EraseGDPR_FullMethodName, r, l.api.EraseGDPR)
}

func (l localAdmin) ListAudit(ctx context.Context, r *v1.ListAuditRequest) (*v1.ListAuditResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_ListAudit_FullMethodName, r, l.api.ListAudit)
}

func (l localAdmin) PutReportSchedule(ctx context.Context, r *v1.PutReportScheduleRequest) (*v1.PutReportScheduleResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_PutReportSchedule_FullMethodName, r, l.api.PutReportSchedule)
}

func (l localAdmin) ListReportSchedules(ctx context.Context, r *v1.ListReportSchedulesRequest) (*v1.ListReportSchedulesResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_ListReportSchedules_FullMethodName, r, l.api.ListReportSchedules)
}

func (l localAdmin) DeleteReportSchedule(ctx context.Context, r *v1.DeleteReportScheduleRequest) (*v1.DeleteReportScheduleResponse, error) {
	return invokeLocal(ctx, l.s, l.api, v1.AdminService_DeleteReportSchedule_FullMethodName, r, l.api.DeleteReportSchedule)
}
