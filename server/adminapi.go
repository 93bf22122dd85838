package server

import (
	"context"
	"fmt"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// adminAPI is the AdminService: the admin and ingest API. The chain has
// authenticated the caller, checked scope admin and the rate limit, and
// audits each call. Report schedules are not served yet (UNIMPLEMENTED).
type adminAPI struct {
	v1.UnimplementedAdminServiceServer
	store ledger.Backend
	auth  *auth.Service
}

// Page sizes of the admin lists.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func (a *adminAPI) PutLedger(ctx context.Context, req *v1.PutLedgerRequest) (*v1.PutLedgerResponse, error) {
	cfg := req.GetLedger()
	if id := cfg.GetLedgerId(); id != "" && id != req.GetLedgerId() {
		return nil, &ledger.FieldError{Field: "ledgerId", Reason: fmt.Sprintf("%q in the body differs from %q in the path", id, req.GetLedgerId())}
	}
	l, created, err := a.store.PutLedger(ctx, ledgerFromProto(req.GetLedgerId(), cfg))
	if err != nil {
		return nil, err
	}
	return &v1.PutLedgerResponse{Ledger: ledgerToProto(l), Created: created}, nil
}

func (a *adminAPI) GetLedger(ctx context.Context, req *v1.GetLedgerRequest) (*v1.GetLedgerResponse, error) {
	l, err := a.store.GetLedger(req.GetLedgerId())
	if err != nil {
		return nil, err
	}
	return &v1.GetLedgerResponse{Ledger: ledgerToProto(l)}, nil
}

func (a *adminAPI) AppendEntries(ctx context.Context, req *v1.AppendEntriesRequest) (*v1.AppendEntriesResponse, error) {
	topic, err := ledger.ParseTopic(req.GetTopic())
	if err != nil {
		return nil, err
	}
	in, err := entriesFromProto(req.GetEntries())
	if err != nil {
		return nil, err
	}
	res, err := a.store.Append(ctx, req.GetLedgerId(), topic, in)
	if err != nil {
		return nil, err
	}
	return &v1.AppendEntriesResponse{
		Appended:      int32(res.Appended),
		Duplicates:    int32(res.Duplicates),
		FirstSequence: int64(res.FirstSequence),
		LastSequence:  int64(res.LastSequence),
	}, nil
}

func (a *adminAPI) CloseDate(ctx context.Context, req *v1.CloseDateRequest) (*v1.CloseDateResponse, error) {
	d, err := ledger.ParseDate(req.GetLedgerDate())
	if err != nil {
		return nil, &ledger.FieldError{Field: "ledgerDate", Reason: fmt.Sprintf("%q is not a date YYYY-MM-DD", req.GetLedgerDate())}
	}
	open, err := a.store.CloseDate(ctx, req.GetLedgerId(), d)
	if err != nil {
		return nil, err
	}
	return &v1.CloseDateResponse{ClosedThrough: (open - 1).String(), OpenLedgerDate: open.String()}, nil
}

func (a *adminAPI) CreateClient(ctx context.Context, req *v1.CreateClientRequest) (*v1.CreateClientResponse, error) {
	c, secret, err := a.auth.CreateClient(ctx, req.GetClientId(), req.GetScopes(), grantsFromProto(req.GetGrants()))
	if err != nil {
		return nil, alreadyExists(err)
	}
	return &v1.CreateClientResponse{
		ClientId:     c.ID,
		Scopes:       nonNil(c.Scopes),
		Grants:       grantsToProto(c.Grants),
		ClientSecret: secret,
	}, nil
}

func (a *adminAPI) GetClient(ctx context.Context, req *v1.GetClientRequest) (*v1.GetClientResponse, error) {
	c, err := a.store.GetClient(req.GetClientId())
	if err != nil {
		return nil, err
	}
	return &v1.GetClientResponse{Client: clientToProto(c)}, nil
}

func (a *adminAPI) UpdateClient(ctx context.Context, req *v1.UpdateClientRequest) (*v1.UpdateClientResponse, error) {
	c, err := a.auth.ReplaceClient(ctx, req.GetClientId(), req.GetScopes(), grantsFromProto(req.GetGrants()))
	if err != nil {
		return nil, err
	}
	return &v1.UpdateClientResponse{Client: clientToProto(c)}, nil
}

// DeleteClient refuses to delete the caller itself, so that the last admin
// client cannot lock every admin out by mistake.
func (a *adminAPI) DeleteClient(ctx context.Context, req *v1.DeleteClientRequest) (*v1.DeleteClientResponse, error) {
	if p := principalOf(ctx); p != nil && !p.External && p.ClientID == req.GetClientId() {
		return nil, fmt.Errorf("%w: client %s is the caller; delete it with another admin client", ledger.ErrConflict, req.GetClientId())
	}
	if err := a.store.DeleteClient(ctx, req.GetClientId()); err != nil {
		return nil, err
	}
	return &v1.DeleteClientResponse{}, nil
}

func (a *adminAPI) ListClients(ctx context.Context, req *v1.ListClientsRequest) (*v1.ListClientsResponse, error) {
	n, err := pageSize(req.GetPageSize(), defaultPageSize, maxPageSize)
	if err != nil {
		return nil, err
	}
	after, err := parseClientsCursor(req.GetCursor())
	if err != nil {
		return nil, err
	}
	cs, err := a.store.ListClients(after, n+1)
	if err != nil {
		return nil, err
	}
	out := &v1.ListClientsResponse{Items: []*v1.Client{}}
	if len(cs) > n {
		cs = cs[:n]
		out.Cursor = clientsCursor(cs[n-1].ID)
	}
	for _, c := range cs {
		out.Items = append(out.Items, clientToProto(c))
	}
	return out, nil
}

func (a *adminAPI) RotateClientSecret(ctx context.Context, req *v1.RotateClientSecretRequest) (*v1.RotateClientSecretResponse, error) {
	secret, err := a.auth.RotateSecret(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	return &v1.RotateClientSecretResponse{ClientId: req.GetClientId(), ClientSecret: secret}, nil
}

func (a *adminAPI) EraseGDPR(ctx context.Context, req *v1.EraseGDPRRequest) (*v1.EraseGDPRResponse, error) {
	n, err := a.store.EraseGDPR(ctx, req.GetLedgerId(), ledger.Erasure{Reference: req.GetReference(), PSPReference: req.GetPspReference()})
	if err != nil {
		return nil, err
	}
	return &v1.EraseGDPRResponse{Erased: int32(n)}, nil
}

func (a *adminAPI) ListAudit(ctx context.Context, req *v1.ListAuditRequest) (*v1.ListAuditResponse, error) {
	n, err := pageSize(req.GetPageSize(), defaultPageSize, maxPageSize)
	if err != nil {
		return nil, err
	}
	f := ledger.AuditFilter{ClientID: req.GetClientId(), Action: req.GetAction()}
	after, err := parseAuditCursor(req.GetCursor(), f)
	if err != nil {
		return nil, err
	}
	evs, next, err := a.store.ListAudit(f, after, n)
	if err != nil {
		return nil, err
	}
	out := &v1.ListAuditResponse{Items: make([]*v1.AuditEvent, 0, len(evs)), Cursor: auditCursor(next, f)}
	for _, ev := range evs {
		out.Items = append(out.Items, auditToProto(ev))
	}
	return out, nil
}
