package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// Conversions between generated types and core types. Generated types stay
// here, at the edge.

func ledgerFromProto(id string, c *v1.LedgerConfig) ledger.Ledger {
	l := ledger.Ledger{
		ID:                         id,
		Currency:                   c.GetCurrency(),
		PayoutBankAccount:          ledger.Account{Scheme: c.GetPayoutBankAccount().GetScheme(), ID: c.GetPayoutBankAccount().GetId()},
		Owner:                      ledger.Account{Scheme: c.GetOwner().GetScheme(), ID: c.GetOwner().GetId()},
		SettlesForRecipientHandles: c.GetSettlesForRecipientHandles(),
		TimeZone:                   c.GetTimeZone(),
		Cutoff:                     c.GetCutoff(),
	}
	if l.TimeZone == "" {
		l.TimeZone = "UTC"
	}
	for _, u := range c.GetSalesUnits() {
		l.SalesUnits = append(l.SalesUnits, ledger.SalesUnit{
			Name:               u.GetName(),
			RecipientHandle:    u.GetRecipientHandle(),
			BusinessIdentifier: ledger.Account{Scheme: u.GetBusinessIdentifier().GetScheme(), ID: u.GetBusinessIdentifier().GetId()},
		})
	}
	return l
}

func ledgerToProto(l ledger.Ledger) *v1.LedgerConfig {
	c := &v1.LedgerConfig{
		LedgerId:                   l.ID,
		Currency:                   l.Currency,
		PayoutBankAccount:          &v1.BankAccount{Scheme: l.PayoutBankAccount.Scheme, Id: l.PayoutBankAccount.ID},
		Owner:                      &v1.Organization{Scheme: l.Owner.Scheme, Id: l.Owner.ID},
		SettlesForRecipientHandles: l.SettlesForRecipientHandles,
		TimeZone:                   l.TimeZone,
		Cutoff:                     l.Cutoff,
		SalesUnits:                 []*v1.SalesUnit{},
	}
	if c.SettlesForRecipientHandles == nil {
		c.SettlesForRecipientHandles = []string{}
	}
	for _, u := range l.SalesUnits {
		c.SalesUnits = append(c.SalesUnits, &v1.SalesUnit{
			Name:               u.Name,
			RecipientHandle:    u.RecipientHandle,
			BusinessIdentifier: &v1.BusinessIdentifier{Scheme: u.BusinessIdentifier.Scheme, Id: u.BusinessIdentifier.ID},
		})
	}
	if !l.OpenDate.IsZero() {
		c.OpenLedgerDate = l.OpenDate.String()
	}
	return c
}

// entriesFromProto converts a batch; a malformed ledgerDate is a field error
// naming the entry.
func entriesFromProto(in []*v1.NewEntry) ([]ledger.EntryInput, error) {
	out := make([]ledger.EntryInput, len(in))
	for i, e := range in {
		ei := ledger.EntryInput{
			EntryID:         e.GetEntryId(),
			PSPReference:    e.GetPspReference(),
			EntryType:       e.GetEntryType(),
			Reference:       e.GetReference(),
			Amount:          e.GetAmount(),
			RecipientHandle: e.RecipientHandle,
			Name:            e.GetName(),
			PhoneNumber:     e.GetPhoneNumber(),
			Message:         e.GetMessage(),
		}
		if e.GetTime() != nil {
			if err := e.GetTime().CheckValid(); err != nil {
				return nil, &ledger.FieldError{Field: fmt.Sprintf("entries[%d].time", i), Reason: "out of range"}
			}
			ei.Time = e.GetTime().AsTime()
		}
		if s := e.GetLedgerDate(); s != "" {
			d, err := ledger.ParseDate(s)
			if err != nil {
				return nil, &ledger.FieldError{Field: fmt.Sprintf("entries[%d].ledgerDate", i), Reason: fmt.Sprintf("%q is not a date YYYY-MM-DD", s)}
			}
			ei.LedgerDate = d
		}
		out[i] = ei
	}
	return out, nil
}

func grantsFromProto(in []*v1.ClientGrant) []ledger.Grant {
	out := make([]ledger.Grant, 0, len(in))
	for _, g := range in {
		out = append(out, ledger.Grant{LedgerID: g.GetLedgerId(), GDPRConsent: g.GetGdprConsent()})
	}
	return out
}

func grantsToProto(in []ledger.Grant) []*v1.ClientGrant {
	out := make([]*v1.ClientGrant, 0, len(in))
	for _, g := range in {
		out = append(out, &v1.ClientGrant{LedgerId: g.LedgerID, GdprConsent: g.GDPRConsent})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// clientToProto never carries the secret or its hash.
func clientToProto(c ledger.Client) *v1.Client {
	return &v1.Client{
		ClientId:  c.ID,
		Scopes:    nonNil(c.Scopes),
		Grants:    grantsToProto(c.Grants),
		CreatedAt: timestampOrNil(c.CreatedAt),
	}
}

func auditToProto(ev ledger.AuditEvent) *v1.AuditEvent {
	return &v1.AuditEvent{
		Time:      timestampOrNil(ev.Time),
		ClientId:  ev.ClientID,
		Action:    ev.Action,
		Resource:  ev.Resource,
		Result:    ev.Result,
		Status:    int32(ev.Status),
		ContextId: ev.ContextID,
	}
}

func timestampOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// pageSize checks a requested page size: 0 means def, more than max or
// negative is a field error.
func pageSize(n int32, def, max int) (int, error) {
	switch {
	case n == 0:
		return def, nil
	case n < 0 || int(n) > max:
		return 0, &ledger.FieldError{Field: "pageSize", Reason: fmt.Sprintf("must be 1–%d", max)}
	}
	return int(n), nil
}

// Cursors of the admin lists: opaque base64url, bound to their query.
// Forging one only pages what the admin may read anyway, so they carry a
// hash of the query (another query's cursor is refused), not a MAC.

// auditCursor encodes a position in the audit log for one filter.
func auditCursor(after uint64, f ledger.AuditFilter) string {
	b := make([]byte, 0, 13)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, after)
	b = append(b, filterHash(f)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseAuditCursor(s string, f ledger.AuditFilter) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 13 || b[0] != 1 {
		return 0, &ledger.FieldError{Field: "cursor", Reason: "not a cursor of the audit log"}
	}
	if string(b[9:]) != string(filterHash(f)) {
		return 0, &ledger.FieldError{Field: "cursor", Reason: "made for another clientId or action filter"}
	}
	return binary.BigEndian.Uint64(b[1:9]), nil
}

func filterHash(f ledger.AuditFilter) []byte {
	h := sha256.Sum256([]byte(f.ClientID + "\x00" + f.Action))
	return h[:4]
}

// clientsCursor encodes the last client id of a page.
func clientsCursor(lastID string) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{1}, lastID...))
}

func parseClientsCursor(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 1 {
		return "", &ledger.FieldError{Field: "cursor", Reason: "not a cursor of the client list"}
	}
	return string(b[1:]), nil
}
