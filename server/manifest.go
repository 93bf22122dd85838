package server

import (
	"context"
	"errors"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// GetDateManifest answers the date manifest of a ledger (docs/seals.md).
// Closed dates not sealed yet by the background sealer are sealed first,
// so every closed date from the ledger's first entry on carries its seal.
// The manifest holds no GDPR data: a grant for the ledger is enough.
func (a *reportAPI) GetDateManifest(ctx context.Context, req *v1.GetDateManifestRequest) (*v1.GetDateManifestResponse, error) {
	id := req.GetLedgerId()
	if err := requireLedger(ctx, id); err != nil {
		return nil, err
	}
	from, err := optionalDate("fromLedgerDate", req.GetFromLedgerDate())
	if err != nil {
		return nil, err
	}
	to, err := optionalDate("toLedgerDate", req.GetToLedgerDate())
	if err != nil {
		return nil, err
	}
	if z := a.srv.sealer; z != nil {
		if err := z.sealLedger(ctx, id); err != nil {
			if errors.Is(err, ledger.ErrNotFound) || ctx.Err() != nil {
				return nil, storeErr(id, err)
			}
			// The manifest is still right without the newest seals.
			a.srv.log.Error("seal ledger dates for a manifest", "ledger", id, "err", err)
		}
	}
	days, err := a.store.Manifest(id, from, to)
	if err != nil {
		return nil, storeErr(id, err)
	}
	out := &v1.GetDateManifestResponse{Items: make([]*v1.DateManifest, 0, len(days))}
	for i := range days {
		out.Items = append(out.Items, manifestToProto(&days[i]))
	}
	return out, nil
}

// optionalDate parses an optional "YYYY-MM-DD" query field (zero when empty).
func optionalDate(field, s string) (ledger.Date, error) {
	if s == "" {
		return 0, nil
	}
	d, err := ledger.ParseDate(s)
	if err != nil {
		return 0, &ledger.FieldError{Field: field, Reason: err.Error()}
	}
	return d, nil
}

func manifestToProto(d *ledger.DateSummary) *v1.DateManifest {
	state := "open"
	if d.Closed {
		state = "closed"
	}
	m := &v1.DateManifest{
		LedgerDate: d.Date.String(),
		State:      state,
		StartTime:  timestamppb.New(d.Start),
		EndTime:    timestamppb.New(d.End),
		Topics: map[string]*v1.DateTopicSummary{
			string(ledger.TopicFunds): topicSummaryToProto(&d.Funds),
			string(ledger.TopicFees):  topicSummaryToProto(&d.Fees),
		},
		Seal: d.Seal,
	}
	if !d.ClosedAt.IsZero() {
		m.ClosedTime = timestamppb.New(d.ClosedAt)
	}
	return m
}

func topicSummaryToProto(t *ledger.TopicSummary) *v1.DateTopicSummary {
	out := &v1.DateTopicSummary{
		EntryCount:     t.EntryCount,
		EntryTypes:     make([]*v1.EntryTypeSum, 0, len(t.EntryTypes)),
		OpeningBalance: t.OpeningBalance,
		ClosingBalance: t.ClosingBalance,
		FirstSequence:  int64(t.FirstSequence),
		LastSequence:   int64(t.LastSequence),
		Digest:         t.Digest,
	}
	for _, s := range t.EntryTypes {
		out.EntryTypes = append(out.EntryTypes, &v1.EntryTypeSum{EntryType: s.EntryType, Count: s.Count, Amount: s.Amount})
	}
	return out
}
