package server

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/report"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// scheduleAdmin is the AdminService with the report schedule methods
// (PutReportSchedule, ListReportSchedules, DeleteReportSchedule) of the
// server's report service added to adminAPI.
type scheduleAdmin struct {
	*adminAPI
	srv *Server
}

// withSchedules adds the report schedule methods to a.
func (s *Server) withSchedules(a *adminAPI) v1.AdminServiceServer {
	return &scheduleAdmin{adminAPI: a, srv: s}
}

func (a *scheduleAdmin) reports() (*report.Service, error) {
	if a.srv.reports == nil {
		return nil, errNoReportFiles
	}
	return a.srv.reports, nil
}

func (a *scheduleAdmin) PutReportSchedule(ctx context.Context, req *v1.PutReportScheduleRequest) (*v1.PutReportScheduleResponse, error) {
	svc, err := a.reports()
	if err != nil {
		return nil, err
	}
	in := req.GetSchedule()
	sc := report.Schedule{
		ID: req.GetScheduleId(), LedgerID: req.GetLedgerId(), ClientID: in.GetClientId(),
		Frequency: in.GetFrequency(), Type: in.GetType(), Format: in.GetFormat(), Language: in.GetLanguage(),
		GDPR: in.GetIncludeGdprSensitiveData(),
	}
	for _, t := range in.GetTopics() {
		sc.Topics = append(sc.Topics, ledger.Topic(t))
	}
	out, created, err := svc.PutSchedule(ctx, sc)
	if err != nil {
		return nil, err
	}
	return &v1.PutReportScheduleResponse{Schedule: scheduleToProto(out), Created: created}, nil
}

func (a *scheduleAdmin) ListReportSchedules(ctx context.Context, req *v1.ListReportSchedulesRequest) (*v1.ListReportSchedulesResponse, error) {
	svc, err := a.reports()
	if err != nil {
		return nil, err
	}
	scs, err := svc.Schedules(req.GetLedgerId())
	if err != nil {
		return nil, err
	}
	out := &v1.ListReportSchedulesResponse{Items: make([]*v1.ReportSchedule, len(scs))}
	for i, sc := range scs {
		out.Items[i] = scheduleToProto(sc)
	}
	return out, nil
}

func (a *scheduleAdmin) DeleteReportSchedule(ctx context.Context, req *v1.DeleteReportScheduleRequest) (*v1.DeleteReportScheduleResponse, error) {
	svc, err := a.reports()
	if err != nil {
		return nil, err
	}
	if err := svc.DeleteSchedule(ctx, req.GetLedgerId(), req.GetScheduleId()); err != nil {
		return nil, err
	}
	return &v1.DeleteReportScheduleResponse{}, nil
}

func scheduleToProto(sc report.Schedule) *v1.ReportSchedule {
	out := &v1.ReportSchedule{
		ScheduleId: sc.ID, LedgerId: sc.LedgerID, ClientId: sc.ClientID, Frequency: sc.Frequency,
		Type: sc.Type, Format: sc.Format, Language: sc.Language, IncludeGdprSensitiveData: sc.GDPR,
		CreatedAt: timestamppb.New(sc.CreatedAt),
	}
	for _, t := range sc.Topics {
		out.Topics = append(out.Topics, string(t))
	}
	return out
}
