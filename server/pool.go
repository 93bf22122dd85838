package server

import (
	"context"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// A REST page answer is ~250 KB of JSON made from a block of 1000 entry
// messages. Allocating (and zeroing, and collecting) both for every page
// costs more than reading the page, so REST requests reuse them: the
// request's restState keeps what it took from the pools and gives it back
// when the answer has been written (rest.go). gRPC answers are marshalled
// by grpc after the handler returns, with no such moment to hook, and keep
// allocating.

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
	st := restStateOf(ctx)
	if st == nil || len(es) == 0 || len(es) > maxPooledItems {
		return entriesToProto(es)
	}
	blk := entryBlocks.Get().(*entryBlock)
	if cap(blk.msgs) < len(es) {
		n := max(len(es), 1000)
		blk.ptrs, blk.msgs, blk.tss = make([]*v1.Entry, n), make([]v1.Entry, n), make([]timestamppb.Timestamp, n)
	}
	out := fillEntries(blk.ptrs[:len(es)], blk.msgs[:len(es)], blk.tss[:len(es)], es)
	st.onDone(func() { entryBlocks.Put(blk) })
	return out
}

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
