package server

import (
	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// methodPolicies says, for each API method, the scope it needs and how it is
// audited. Admin scope reads and changes everything through AdminService;
// scope read is the report API, limited further by per-ledger grants
// (requireLedger). Neither scope stands in for the other. Every admin call,
// read or change, is audited, and so is every report read; reading the
// audit log itself is not (a tailing reader would otherwise feed the log it
// reads, one event per poll).
var methodPolicies = map[string]policy{
	v1.AdminService_PutLedger_FullMethodName:            {ledger.ScopeAdmin, "ledger.put", "ledger"},
	v1.AdminService_GetLedger_FullMethodName:            {ledger.ScopeAdmin, "ledger.get", "ledger"},
	v1.AdminService_AppendEntries_FullMethodName:        {ledger.ScopeAdmin, "entries.append", "ledger"},
	v1.AdminService_CloseDate_FullMethodName:            {ledger.ScopeAdmin, "date.close", "ledger"},
	v1.AdminService_CreateClient_FullMethodName:         {ledger.ScopeAdmin, "client.create", "client"},
	v1.AdminService_GetClient_FullMethodName:            {ledger.ScopeAdmin, "client.get", "client"},
	v1.AdminService_UpdateClient_FullMethodName:         {ledger.ScopeAdmin, "client.update", "client"},
	v1.AdminService_DeleteClient_FullMethodName:         {ledger.ScopeAdmin, "client.delete", "client"},
	v1.AdminService_ListClients_FullMethodName:          {ledger.ScopeAdmin, "client.list", "clients"},
	v1.AdminService_RotateClientSecret_FullMethodName:   {ledger.ScopeAdmin, "client.rotate-secret", "client"},
	v1.AdminService_EraseGDPR_FullMethodName:            {ledger.ScopeAdmin, "gdpr.erase", "ledger"},
	v1.AdminService_ListAudit_FullMethodName:            {ledger.ScopeAdmin, "", "audit"},
	v1.AdminService_PutReportSchedule_FullMethodName:    {ledger.ScopeAdmin, "schedule.put", "ledger"},
	v1.AdminService_ListReportSchedules_FullMethodName:  {ledger.ScopeAdmin, "schedule.list", "ledger"},
	v1.AdminService_DeleteReportSchedule_FullMethodName: {ledger.ScopeAdmin, "schedule.delete", "ledger"},

	v1.ReportService_ListLedgers_FullMethodName:       {ledger.ScopeRead, "ledger.list", "ledgers"},
	v1.ReportService_GetDateReport_FullMethodName:     {ledger.ScopeRead, "report.read", "ledger"},
	v1.ReportService_GetFeed_FullMethodName:           {ledger.ScopeRead, "feed.read", "ledger"},
	v1.ReportService_SubscribeFeed_FullMethodName:     {ledger.ScopeRead, "feed.subscribe", "ledger"},
	v1.ReportService_GetDateManifest_FullMethodName:   {ledger.ScopeRead, "manifest.read", "ledger"},
	v1.ReportService_SearchEntries_FullMethodName:     {ledger.ScopeRead, "entries.search", "ledger"},
	v1.ReportService_RequestReportFile_FullMethodName: {ledger.ScopeRead, "file.request", "ledger"},
	v1.ReportService_GetReportFile_FullMethodName:     {ledger.ScopeRead, "file.get", "files"},
	v1.ReportService_ListReportFiles_FullMethodName:   {ledger.ScopeRead, "file.list", "files"},
}
