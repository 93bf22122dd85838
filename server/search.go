package server

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// Search limits.
const (
	defaultSearchLimit = 100
	maxSearchLimit     = 1000
	maxSearchTypes     = 50
	maxSearchText      = 256 // as the store's longest reference
)

// SearchEntries finds entries of a (ledger, topic) in append order, paged
// both ways with object ids. An object id is a MAC'd token of an entry's
// sequence bound to the ledger and topic (not to the filters: an entry has
// one id), so an id from another ledger or topic, or an edited one, is
// INVALID_ARGUMENT naming the field. Grants and the GDPR flag are checked as
// for the other report reads.
func (a *reportAPI) SearchEntries(ctx context.Context, req *v1.SearchEntriesRequest) (*v1.SearchEntriesResponse, error) {
	id := req.GetLedgerId()
	topic, opt, err := readTarget(ctx, id, req.GetTopic(), req.GetIncludeGdprSensitiveData())
	if err != nil {
		return nil, err
	}
	q := ledger.SearchQuery{GDPR: opt.GDPR, Limit: defaultSearchLimit}
	switch n := req.GetLimit(); {
	case n < 0 || n > maxSearchLimit:
		return nil, &ledger.FieldError{Field: "limit", Reason: fmt.Sprintf("must be 1–%d", maxSearchLimit)}
	case n > 0:
		q.Limit = int(n)
	}
	if t := req.GetFromTime(); t != nil {
		if err := t.CheckValid(); err != nil {
			return nil, &ledger.FieldError{Field: "fromTime", Reason: "not a time"}
		}
		q.FromTime = t.AsTime()
	}
	if t := req.GetToTime(); t != nil {
		if err := t.CheckValid(); err != nil {
			return nil, &ledger.FieldError{Field: "toTime", Reason: "not a time"}
		}
		q.ToTime = t.AsTime()
	}
	if !q.FromTime.IsZero() && !q.ToTime.IsZero() && !q.FromTime.Before(q.ToTime) {
		return nil, &ledger.FieldError{Field: "toTime", Reason: "must be after fromTime"}
	}
	if len(req.GetEntryType()) > maxSearchTypes {
		return nil, &ledger.FieldError{Field: "entryType", Reason: fmt.Sprintf("at most %d entry types", maxSearchTypes)}
	}
	for _, t := range req.GetEntryType() {
		if !ledger.ValidEntryType(t) {
			return nil, &ledger.FieldError{Field: "entryType", Reason: fmt.Sprintf("%q is not an entry type (1–64 characters of a–z 0–9 -)", t)}
		}
	}
	q.EntryTypes = req.GetEntryType()
	if q.Reference = req.GetReference(); len(q.Reference) > maxSearchText {
		return nil, &ledger.FieldError{Field: "reference", Reason: fmt.Sprintf("longer than %d bytes", maxSearchText)}
	}
	if q.PSPReference = req.GetPspReference(); len(q.PSPReference) > maxSearchText {
		return nil, &ledger.FieldError{Field: "pspReference", Reason: fmt.Sprintf("longer than %d bytes", maxSearchText)}
	}
	after, before := req.GetStartingAfter(), req.GetEndingBefore()
	switch {
	case after != "" && before != "":
		return nil, &ledger.FieldError{Field: "endingBefore", Reason: "startingAfter and endingBefore exclude each other"}
	case after != "":
		if q.After, err = a.parseObjectID("startingAfter", after, id, topic); err != nil {
			return nil, err
		}
	case before != "":
		if q.Before, err = a.parseObjectID("endingBefore", before, id, topic); err != nil {
			return nil, err
		}
		q.Backward = true
	}
	page, err := a.store.Search(id, topic, q)
	if err != nil {
		return nil, storeErr(id, err)
	}
	out := &v1.SearchEntriesResponse{Items: entriesToProto(page.Entries), HasMore: page.HasMore}
	if n := len(page.Entries); n > 0 {
		out.FirstObjectId = a.objectID(id, topic, page.Entries[0].Sequence)
		out.LastObjectId = a.objectID(id, topic, page.Entries[n-1].Sequence)
	}
	return out, nil
}

// objectID is the search object id of entry seq of (ledgerID, topic): a
// list cursor of the cursor key whose scope names the search, the ledger
// and the topic.
func (a *reportAPI) objectID(ledgerID string, topic ledger.Topic, seq uint64) string {
	return a.cursors.List(objectScope(ledgerID, topic), strconv.FormatUint(seq, 10))
}

func (a *reportAPI) parseObjectID(field, s, ledgerID string, topic ledger.Topic) (uint64, error) {
	bad := &ledger.FieldError{Field: field, Reason: "not an object id of this ledger and topic (use firstObjectId or lastObjectId of a search answer)"}
	p, err := a.cursors.ParseList(s, objectScope(ledgerID, topic))
	if err != nil {
		return 0, bad
	}
	seq, err := strconv.ParseUint(p, 10, 64)
	if err != nil || seq == 0 {
		return 0, bad
	}
	return seq, nil
}

func objectScope(ledgerID string, topic ledger.Topic) []string {
	return []string{"search-object", ledgerID, string(topic)}
}
