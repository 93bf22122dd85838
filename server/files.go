package server

import (
	"context"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/report"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// Report files (DESIGN.md "Extensions"): RequestReportFile, GetReportFile
// and ListReportFiles of the ReportService, and the plain HTTP download
// GET /report/v2/downloads/{token}. The jobs, tokens and limits are package
// report's; this file checks the caller's grants, converts and serves.
//
// A client sees only its own files, and only of ledgers it may still read:
// another client's file, or one of a ledger whose grant was taken away,
// answers as an unknown one (404).

// downloadPath is the path of the download route; the token follows.
const downloadPath = "/report/v2/downloads/"

// errNoReportFiles answers the file methods of a server without a report
// service.
var errNoReportFiles = status.Error(codes.Unimplemented, "report files are not enabled on this server")

func (a *reportAPI) reports() (*report.Service, error) {
	if a.srv.reports == nil {
		return nil, errNoReportFiles
	}
	return a.srv.reports, nil
}

func parseFileDate(field, s string) (ledger.Date, error) {
	if s == "" {
		return 0, nil // report names it as required
	}
	d, err := ledger.ParseDate(s)
	if err != nil {
		return 0, &ledger.FieldError{Field: field, Reason: err.Error()}
	}
	return d, nil
}

func (a *reportAPI) RequestReportFile(ctx context.Context, req *v1.RequestReportFileRequest) (*v1.RequestReportFileResponse, error) {
	svc, err := a.reports()
	if err != nil {
		return nil, err
	}
	id := req.GetLedgerId()
	if id == "" {
		return nil, &ledger.FieldError{Field: "ledgerId", Reason: "required"}
	}
	if err := requireLedger(ctx, id); err != nil {
		return nil, err
	}
	if req.GetIncludeGdprSensitiveData() {
		if err := requireGDPR(ctx, id); err != nil {
			return nil, err
		}
	}
	from, err := parseFileDate("fromLedgerDate", req.GetFromLedgerDate())
	if err != nil {
		return nil, err
	}
	to, err := parseFileDate("toLedgerDate", req.GetToLedgerDate())
	if err != nil {
		return nil, err
	}
	topics := make([]ledger.Topic, len(req.GetTopics()))
	for i, t := range req.GetTopics() {
		topics[i] = ledger.Topic(t)
	}
	f, err := svc.Request(ctx, principalOf(ctx).ClientID, report.Request{
		Type: req.GetType(), LedgerID: id, Topics: topics, From: from, To: to,
		Format: req.GetFormat(), Language: req.GetLanguage(), GDPR: req.GetIncludeGdprSensitiveData(),
	})
	if err != nil {
		return nil, storeErr(id, err)
	}
	return &v1.RequestReportFileResponse{File: a.fileToProto(ctx, svc, f)}, nil
}

func (a *reportAPI) GetReportFile(ctx context.Context, req *v1.GetReportFileRequest) (*v1.GetReportFileResponse, error) {
	svc, err := a.reports()
	if err != nil {
		return nil, err
	}
	p := principalOf(ctx)
	f, err := svc.Get(p.ClientID, req.GetId())
	if err == nil && !p.CanRead(f.LedgerID) {
		err = fmt.Errorf("report file %s: %w", req.GetId(), ledger.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	files := []report.File{f}
	if err := svc.WithDownloads(ctx, files); err != nil {
		return nil, err
	}
	return &v1.GetReportFileResponse{File: a.fileToProto(ctx, svc, files[0])}, nil
}

func (a *reportAPI) ListReportFiles(ctx context.Context, req *v1.ListReportFilesRequest) (*v1.ListReportFilesResponse, error) {
	svc, err := a.reports()
	if err != nil {
		return nil, err
	}
	p := principalOf(ctx)
	lf := report.ListFilter{
		Limit: int(req.GetLimit()), Offset: int(req.GetOffset()),
		Source: req.GetSource(), Status: report.Status(req.GetStatus()), LedgerID: req.GetLedgerId(),
		Visible: p.CanRead,
	}
	if ts := req.GetCreatedAfter(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return nil, &ledger.FieldError{Field: "createdAfter", Reason: "not an RFC 3339 time"}
		}
		lf.CreatedAfter = ts.AsTime()
	}
	if ts := req.GetCreatedBefore(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return nil, &ledger.FieldError{Field: "createdBefore", Reason: "not an RFC 3339 time"}
		}
		lf.CreatedBefore = ts.AsTime()
	}
	n, page, err := svc.List(p.ClientID, lf)
	if err != nil {
		return nil, err
	}
	if err := svc.WithDownloads(ctx, page); err != nil {
		return nil, err
	}
	out := &v1.ListReportFilesResponse{Count: int32(n), Results: make([]*v1.ReportFile, len(page))}
	for i, f := range page {
		out.Results[i] = a.fileToProto(ctx, svc, f)
	}
	limit := lf.Limit
	if limit == 0 {
		limit = report.DefaultListLimit
	}
	if off := lf.Offset + limit; off < n {
		out.Next = proto.String(a.listURL(ctx, svc, req, limit, off))
	}
	if lf.Offset > 0 {
		out.Previous = proto.String(a.listURL(ctx, svc, req, limit, max(0, lf.Offset-limit)))
	}
	return out, nil
}

// listURL is the URL of another page of the same list.
func (a *reportAPI) listURL(ctx context.Context, svc *report.Service, req *v1.ListReportFilesRequest, limit, offset int) string {
	q := url.Values{}
	q.Set("limit", strconv.Itoa(limit))
	q.Set("offset", strconv.Itoa(offset))
	if ts := req.GetCreatedAfter(); ts != nil {
		q.Set("createdAfter", ts.AsTime().UTC().Format(time.RFC3339Nano))
	}
	if ts := req.GetCreatedBefore(); ts != nil {
		q.Set("createdBefore", ts.AsTime().UTC().Format(time.RFC3339Nano))
	}
	for k, v := range map[string]string{"source": req.GetSource(), "status": req.GetStatus(), "ledgerId": req.GetLedgerId()} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return a.baseURL(ctx, svc) + "/report/v2/files?" + q.Encode()
}

// baseURL is how callers reach the REST API: the report service's BaseURL
// when configured; else, for a REST call, the Host it was sent to; else
// the HTTP listener's address.
func (a *reportAPI) baseURL(ctx context.Context, svc *report.Service) string {
	if b := svc.Config().BaseURL; b != "" {
		return b
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok && restStateOf(ctx) != nil {
		if h := md.Get("x-forwarded-host"); len(h) > 0 && h[0] != "" {
			return "http://" + h[0]
		}
	}
	host, port, err := net.SplitHostPort(a.srv.HTTPAddr().String())
	if err != nil {
		return "http://" + a.srv.HTTPAddr().String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func (a *reportAPI) fileToProto(ctx context.Context, svc *report.Service, f report.File) *v1.ReportFile {
	out := &v1.ReportFile{
		Id: f.ID, Status: string(f.Status), Type: f.Type, LedgerId: f.LedgerID,
		FromLedgerDate: f.From.String(), ToLedgerDate: f.To.String(),
		Format: f.Format, Language: f.Language, Source: f.Source, ScheduleId: f.ScheduleID,
		CreatedAt: timestamppb.New(f.CreatedAt), FileName: f.FileName, Error: f.Error,
	}
	for _, t := range f.Topics {
		out.Topics = append(out.Topics, string(t))
	}
	if !f.CompletedAt.IsZero() {
		out.CompletedAt = timestamppb.New(f.CompletedAt)
	}
	if f.Status == report.StatusSuccessful {
		out.SizeBytes = f.Size
		if f.Token != "" {
			out.DownloadAction = &v1.DownloadAction{
				Url:       a.baseURL(ctx, svc) + downloadPath + f.Token,
				Method:    http.MethodGet,
				ExpiresAt: timestamppb.New(f.TokenExpires),
			}
		}
	}
	return out
}

// handleDownload serves GET /report/v2/downloads/{token}: the caller's
// bearer token must be that of the client the download token was given to.
// An unknown, expired or another client's token answers 404 like a missing
// file; each client has an hourly download allowance (429 + Retry-After
// when spent). Every attempt is audit-logged, whatever its answer; the
// download token itself is never logged. Range requests, conditional
// requests and HEAD are served by http.ServeContent.
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	ev := ledger.AuditEvent{Action: "file.download", Resource: "downloads"}
	defer func() {
		ev.Status = rec.status()
		if ev.ClientID == "" && ev.Status == http.StatusTooManyRequests {
			return // a flood of attempts without a token: refused, not logged
		}
		ev.Result = auditResult(ev.Status)
		ev.ContextID = contextIDOf(r, w)
		s.auth.Audit(ev)
	}()
	if err := s.serveDownload(rec, r, &ev); err != nil {
		s.httpError(rec, r, err)
	}
}

func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request, ev *ledger.AuditEvent) error {
	raw, err := bearerToken(r.Header.Values("Authorization"))
	var p *auth.Principal
	if err == nil {
		p, err = s.auth.Verify(r.Context(), raw)
	}
	if err != nil {
		if lerr := s.auth.AllowUnauthenticated(r.RemoteAddr); lerr != nil {
			return lerr
		}
		return err
	}
	ev.ClientID = p.ClientID
	if err := p.RequireScope(ledger.ScopeRead); err != nil {
		return err
	}
	if s.reports == nil {
		return fmt.Errorf("report file download: %w", ledger.ErrNotFound)
	}
	if ok, wait := s.reports.AllowDownload(p.ClientID); !ok {
		return &auth.RateLimitError{RetryAfter: retrySeconds(wait)}
	}
	d, err := s.reports.OpenDownload(r.Context(), p.ClientID, r.PathValue("token"))
	if err != nil {
		return err
	}
	defer d.Close()
	ev.Resource = "files/" + d.Info.ID
	if !p.CanRead(d.Info.LedgerID) {
		return fmt.Errorf("report file download: %w", ledger.ErrNotFound)
	}
	h := w.Header()
	h.Set("Content-Type", d.Info.ContentType())
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": d.Info.FileName}))
	h.Set("ETag", `"`+d.Info.ID+`"`) // a file never changes: If-Range works
	http.ServeContent(w, r, "", d.Info.CompletedAt, d)
	return nil
}

// statusRecorder remembers the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
