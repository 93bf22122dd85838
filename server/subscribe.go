package server

import (
	"context"
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
	msg := func(p feed.Page) *v1.SubscribeFeedResponse {
		return &v1.SubscribeFeedResponse{Event: &v1.SubscribeFeedResponse_Page{Page: &v1.FeedPage{
			Items: entriesToProto(p.Entries), Cursor: a.cursors.Feed(id, topic, p.Next), TryLater: p.TryLater,
		}}}
	}
	wire, shareWire := streamWire(ctx)
	send := func(p feed.Page) error {
		if !p.Shared() || !shareWire {
			return stream.Send(msg(p))
		}
		// Every subscriber handed this page (same log, position, page
		// size and GDPR flag, so the same items, cursor and tryLater)
		// sends the one message encoded by the first of them with the
		// same codec and compression.
		pm, err := p.Memo(wire, func() (any, error) {
			pm := new(grpc.PreparedMsg)
			return pm, pm.Encode(stream, msg(p))
		})
		if err != nil {
			return err
		}
		return stream.SendMsg(pm)
	}
	beat := func(next uint64) error {
		return stream.Send(&v1.SubscribeFeedResponse{Event: &v1.SubscribeFeedResponse_Heartbeat{Heartbeat: &v1.FeedHeartbeat{
			Cursor: a.cursors.Feed(id, topic, next), Time: timestamppb.Now(),
		}}})
	}
	err = a.reader.Follow(ctx, id, topic, from, size, opt, heartbeat, a.srv.stopping, send, beat)
	return storeErr(id, err)
}

// wireKey names how a stream encodes its messages: what a message prepared
// on one stream (grpc.PreparedMsg) needs to be sent as it is on another.
type wireKey struct{ contentType, compress string }

// streamWire returns the wireKey of the server stream of ctx; ok false when
// it cannot be known (then each message is encoded on its own stream).
func streamWire(ctx context.Context) (k wireKey, ok bool) {
	sc, ok := grpc.ServerTransportStreamFromContext(ctx).(interface{ SendCompress() string })
	if !ok {
		return wireKey{}, false
	}
	md, _ := metadata.FromIncomingContext(ctx)
	ct := md.Get("content-type")
	if len(ct) != 1 {
		return wireKey{}, false
	}
	return wireKey{ct[0], sc.SendCompress()}, true
}
