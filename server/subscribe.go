package server

import (
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgerfeed/ledgerfeed/feed"
	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// SubscribeFeed is the gRPC push stream: pages from a cursor, sent as
// entries commit, with heartbeats while nothing does.
func (a *reportAPI) SubscribeFeed(req *v1.SubscribeFeedRequest, stream grpc.ServerStreamingServer[v1.SubscribeFeedResponse]) error {
	ctx := stream.Context()
	id := req.GetLedgerId()
	topic, opt, err := readTarget(ctx, id, req.GetTopic(), req.GetIncludeGdprSensitiveData())
	if err != nil {
		return err
	}
	size, err := pageSize(req.GetPageSize(), feed.MaxPageSize, feed.MaxPageSize)
	if err != nil {
		return err
	}
	heartbeat := defaultHeartbeat
	if h := req.GetHeartbeatInterval(); h != nil {
		if err := h.CheckValid(); err != nil {
			return &ledger.FieldError{Field: "heartbeatInterval", Reason: "not a duration"}
		}
		heartbeat = min(max(h.AsDuration(), minHeartbeat), maxHeartbeat)
	}
	from, _, err := a.feedStart(id, topic, req.GetCursor(), req.GetFrom(), req.GetFromLedgerDate())
	if err != nil {
		return err
	}
	release, err := a.srv.polls.acquire(principalOf(ctx).ClientID)
	if err != nil {
		return err
	}
	defer release()
	if err := stream.SendHeader(metadata.Pairs(mdFeedPageSize, strconv.Itoa(size))); err != nil {
		return err
	}
	send := func(p feed.Page) error {
		return stream.Send(&v1.SubscribeFeedResponse{Event: &v1.SubscribeFeedResponse_Page{Page: &v1.FeedPage{
			Items: entriesToProto(p.Entries), Cursor: a.cursors.Feed(id, topic, p.Next), TryLater: p.TryLater,
		}}})
	}
	beat := func(next uint64) error {
		return stream.Send(&v1.SubscribeFeedResponse{Event: &v1.SubscribeFeedResponse_Heartbeat{Heartbeat: &v1.FeedHeartbeat{
			Cursor: a.cursors.Feed(id, topic, next), Time: timestamppb.Now(),
		}}})
	}
	err = a.reader.Follow(ctx, id, topic, from, size, opt, heartbeat, a.srv.stopping, send, beat)
	return storeErr(id, err)
}
