package client

import (
	"context"
	"errors"
	"iter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// SubscribeFeed follows a feed over gRPC (ReportService.SubscribeFeed on
// conn, the server's gRPC port) from r.Cursor: first the backlog, then each
// page as the server pushes it. Heartbeats are not yielded. When the stream
// breaks (Unavailable, the server restarting, a token expiring) it
// reconnects with backoff and resumes from the last page's cursor, so every
// entry comes exactly once, in order. It ends with ctx (yielding ctx's
// error) or with an error that retrying cannot mend (InvalidArgument,
// NotFound, PermissionDenied, …). r.Wait and r.Follow are ignored.
func (c *Client) SubscribeFeed(ctx context.Context, conn grpc.ClientConnInterface, r FeedRequest) iter.Seq2[*FeedPage, error] {
	return func(yield func(*FeedPage, error) bool) {
		rc := v1.NewReportServiceClient(conn)
		cursor := r.Cursor
		failures := 0
		for {
			err := c.subscribeOnce(ctx, rc, r, &cursor, &failures, yield)
			if err == errStop {
				return
			}
			if ctx.Err() != nil {
				yield(nil, ctx.Err())
				return
			}
			switch status.Code(err) {
			case codes.Unauthenticated:
				c.mu.Lock()
				c.token = "" // fetch afresh
				c.mu.Unlock()
			case codes.Unavailable, codes.ResourceExhausted, codes.Internal, codes.Unknown, codes.Aborted, codes.OK:
			default:
				if !retryable(err) {
					yield(nil, err)
					return
				}
			}
			if c.cfg.MaxRetries >= 0 && failures > c.cfg.MaxRetries {
				yield(nil, err)
				return
			}
			// failures is 0 when the stream broke after delivering something.
			t := time.NewTimer(c.backoff(max(failures-1, 0)))
			select {
			case <-ctx.Done():
				t.Stop()
				yield(nil, ctx.Err())
				return
			case <-t.C:
			}
		}
	}
}

var errStop = errors.New("stop")

// subscribeOnce runs one stream until it fails; it returns errStop when the
// caller stopped iterating.
func (c *Client) subscribeOnce(ctx context.Context, rc v1.ReportServiceClient, r FeedRequest, cursor *string, failures *int, yield func(*FeedPage, error) bool) error {
	*failures++
	tok, err := c.Token(ctx)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok))
	defer cancel()
	req := &v1.SubscribeFeedRequest{
		LedgerId:                 r.LedgerID,
		Topic:                    r.Topic,
		Cursor:                   *cursor,
		IncludeGdprSensitiveData: r.GDPR,
		PageSize:                 int32(r.PageSize),
		HeartbeatInterval:        durationpb.New(15 * time.Second),
	}
	if *cursor == "" {
		req.From, req.FromLedgerDate = r.From, r.FromLedgerDate
	}
	stream, err := rc.SubscribeFeed(sctx, req)
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		*failures = 0
		switch ev := msg.Event.(type) {
		case *v1.SubscribeFeedResponse_Page:
			p := &FeedPage{Cursor: ev.Page.GetCursor(), TryLater: ev.Page.GetTryLater(), Items: make([]Entry, len(ev.Page.GetItems()))}
			for i, e := range ev.Page.GetItems() {
				p.Items[i] = entryFromProto(e)
			}
			if p.Cursor != "" {
				*cursor = p.Cursor
			}
			if !yield(p, nil) {
				return errStop
			}
		case *v1.SubscribeFeedResponse_Heartbeat:
			if cur := ev.Heartbeat.GetCursor(); cur != "" {
				*cursor = cur
			}
		}
	}
}

func entryFromProto(e *v1.Entry) Entry {
	return Entry{
		PSPReference:    e.GetPspReference(),
		Time:            e.GetTime().AsTime().UTC(),
		LedgerDate:      e.GetLedgerDate(),
		EntryType:       e.GetEntryType(),
		Reference:       e.GetReference(),
		Currency:        e.GetCurrency(),
		Amount:          e.GetAmount(),
		BalanceBefore:   e.GetBalanceBefore(),
		BalanceAfter:    e.GetBalanceAfter(),
		RecipientHandle: e.RecipientHandle,
		Name:            e.Name,
		MaskedPhoneNo:   e.MaskedPhoneNo,
		Message:         e.Message,
	}
}
