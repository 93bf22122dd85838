package server

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// A page answer is ~250 KB of JSON (REST) or a block of 1000 entry
// messages (gRPC). Allocating (and zeroing, and collecting) them for every
// page costs more than reading the page, so requests reuse them: a REST
// request's restState keeps the JSON buffer its handler took from the pool
// (page_json.go writes pages straight from the store into it) and gives it
// back when the answer has been written (rest.go). A gRPC call does the
// same with the entry blocks, given back at the call's End event, after
// grpc has encoded and sent the answer (answeredHandler).

// maxPooled caps what goes back to a pool: one outsized page does not stay
// in memory for ever.
const (
	maxPooledJSON  = 4 << 20
	maxPooledItems = 4096
)

var jsonBufs = sync.Pool{New: func() any { return new([]byte) }}

// onDone registers fn to run once the REST answer has been written.
func (st *restState) onDone(fn func()) { st.done = append(st.done, fn) }

// finish runs what onDone registered.
func (st *restState) finish() {
	for _, fn := range st.done {
		fn()
	}
	st.done = nil
}

// preEncoded is an answer already written as JSON; wireJSON.Marshal returns
// it as it is.
type preEncoded []byte

// preEncode is the gateway's response rewriter: for a REST request it
// writes the answers the typed fast path knows (jsonwire_fast.go) into a
// pooled buffer, given back after the answer is written. Anything else goes
// to the marshaler unchanged.
func preEncode(ctx context.Context, resp proto.Message) (any, error) {
	st := restStateOf(ctx)
	if st == nil {
		return resp, nil
	}
	if st.sent { // sent already (page_json.go sendEarly): nothing more to write
		return preEncoded(nil), nil
	}
	if pg := restPageOf(ctx); pg != nil && pg.resp != nil { // page_json.go
		if pg.resp != resp {
			// The page's message carries no items: never answer it
			// without its JSON.
			return nil, errors.New("REST page answer is not the message its JSON was written for")
		}
		return preEncoded(pg.json), nil
	}
	bp := jsonBufs.Get().(*[]byte)
	b, ok := appendFast((*bp)[:0], resp)
	if !ok {
		jsonBufs.Put(bp)
		return resp, nil
	}
	*bp = b
	st.onDone(func() {
		if cap(*bp) <= maxPooledJSON {
			jsonBufs.Put(bp)
		}
	})
	return preEncoded(b), nil
}

// entryBlock is the messages of one page, allocated together.
type entryBlock struct {
	ptrs []*v1.Entry
	msgs []v1.Entry
	tss  []timestamppb.Timestamp
}

var entryBlocks = sync.Pool{New: func() any { return new(entryBlock) }}

// pageToProto is entriesToProto for a page answer: in a REST request the
// messages come from a pooled block, given back after the answer is
// written.
func pageToProto(ctx context.Context, es []ledger.Entry) []*v1.Entry {
	onDone := onAnswered(ctx)
	if onDone == nil || len(es) == 0 || len(es) > maxPooledItems {
		return entriesToProto(es)
	}
	blk := entryBlocks.Get().(*entryBlock)
	if cap(blk.msgs) < len(es) {
		n := max(len(es), 1000)
		blk.ptrs, blk.msgs, blk.tss = make([]*v1.Entry, n), make([]v1.Entry, n), make([]timestamppb.Timestamp, n)
	}
	out := fillEntries(blk.ptrs[:len(es)], blk.msgs[:len(es)], blk.tss[:len(es)], es)
	onDone(func() { entryBlocks.Put(blk) })
	return out
}

// onAnswered returns how to register a function to run once the call's
// answer has been written (REST) or encoded and sent (gRPC, see
// answeredHandler); nil when the call has no such moment.
func onAnswered(ctx context.Context) func(func()) {
	if st := restStateOf(ctx); st != nil {
		return st.onDone
	}
	if d, _ := ctx.Value(answeredKey{}).(*answered); d != nil {
		return d.add
	}
	return nil
}

// answered is what a gRPC call runs once it has ended.
type answered struct{ fns []func() }

type answeredKey struct{}

func (d *answered) add(fn func()) { d.fns = append(d.fns, fn) }

// answeredHandler is a stats.Handler that gives every gRPC call an answered
// record and runs it at the call's End event: grpc emits End after it has
// encoded and sent the answer (a unary call's handler, encoding and End run
// on one goroutine), so pooled messages can go back then.
type answeredHandler struct{}

func (answeredHandler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, answeredKey{}, &answered{})
}

func (answeredHandler) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.End); !ok {
		return
	}
	if d, _ := ctx.Value(answeredKey{}).(*answered); d != nil {
		for _, fn := range d.fns {
			fn()
		}
		d.fns = nil
	}
}

func (answeredHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

func (answeredHandler) HandleConn(context.Context, stats.ConnStats) {}

var entryBufs = sync.Pool{New: func() any { return new([]ledger.Entry) }}

// getEntryBuf is a buffer for a page read of up to size entries
// (ledger.ReadOptions.Buf), for REST and gRPC alike: the page's messages
// copy what they need of the entries (strings and pointers to data of their
// own), so the buffer goes back with putEntryBuf as soon as the page is
// converted. Its entries' strings stay reachable until the buffer is reused
// or the pool is emptied at a collection: bounded, and cheaper than
// clearing 200 KB per page.
func getEntryBuf(size int) *[]ledger.Entry {
	bp := entryBufs.Get().(*[]ledger.Entry)
	if cap(*bp) < size && size <= maxPooledItems {
		*bp = make([]ledger.Entry, 0, max(size, 1000))
	}
	return bp
}

func putEntryBuf(bp *[]ledger.Entry) {
	if cap(*bp) <= maxPooledItems {
		entryBufs.Put(bp)
	}
}
