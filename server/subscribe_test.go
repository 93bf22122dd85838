package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// seen is what a follower received of one entry.
type seen struct {
	psp  string
	gdpr bool // name, maskedPhoneNo and message were there
}

// followSpec says what a follower of a test follows and how.
type followSpec struct {
	name   string
	ledger string
	topic  ledger.Topic
	gdpr   bool
	size   int    // page size asked (0: the default)
	cursor string // start: a cursor, or "" with from
	from   string // "now" or ""
	rest   bool   // a long poller, else a stream
	start  uint64 // the first sequence it must get
}

// follower is one SubscribeFeed stream or REST long poller of a test, and
// what it received.
type follower struct {
	followSpec
	started  atomic.Bool // a long poller has its first answer
	mu       sync.Mutex
	got      []seen
	want     atomic.Int64 // entries to receive before it stops; -1 until known
	finished chan struct{}
}

func newFollower(sp followSpec, want int64) *follower {
	f := &follower{followSpec: sp, finished: make(chan struct{})}
	f.want.Store(want)
	return f
}

func (f *follower) note(s seen) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, s)
	return len(f.got)
}

func (f *follower) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// done reports whether f holds all it must receive.
func (f *follower) done(n int) bool { w := f.want.Load(); return w >= 0 && int64(n) >= w }

// subscribe starts f as a stream on conn and returns once the server has
// taken its start position (the header is sent after it).
func (f *follower) subscribe(t *testing.T, ctx context.Context, conn *grpc.ClientConn, token string) {
	t.Helper()
	st, err := v1.NewReportServiceClient(conn).SubscribeFeed(authCtx(ctx, token), &v1.SubscribeFeedRequest{
		LedgerId: f.ledger, Topic: string(f.topic), Cursor: f.cursor, From: f.from, PageSize: int32(f.size),
		IncludeGdprSensitiveData: f.gdpr,
	})
	if err != nil {
		t.Fatalf("%s: subscribe: %v", f.name, err)
	}
	if _, err := st.Header(); err != nil {
		t.Fatalf("%s: header: %v", f.name, err)
	}
	go func() {
		defer close(f.finished)
		for {
			m, err := st.Recv()
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("%s: Recv: %v", f.name, err)
				}
				return
			}
			p := m.GetPage()
			if p == nil {
				continue // a heartbeat
			}
			if len(p.GetItems()) == 0 || p.GetCursor() == "" || (f.size > 0 && len(p.GetItems()) > f.size) {
				t.Errorf("%s: page of %d items, cursor %q", f.name, len(p.GetItems()), p.GetCursor())
				return
			}
			n := 0
			for _, it := range p.GetItems() {
				g := it.Name != nil && it.MaskedPhoneNo != nil && it.Message != nil
				if !g && (it.Name != nil || it.MaskedPhoneNo != nil || it.Message != nil) {
					t.Errorf("%s: %s carries part of the GDPR fields", f.name, it.GetPspReference())
				}
				n = f.note(seen{it.GetPspReference(), g})
			}
			if f.done(n) {
				return
			}
		}
	}()
}

// poll starts f as a REST long poller (wait=2s) through the env's checked
// client (each answer is validated against the OpenAPI documents). A
// poller from now first asks without wait, for its start position.
func (f *follower) poll(t *testing.T, e *reportEnv, token string) {
	q := url.Values{"wait": {"2s"}}
	if f.gdpr {
		q.Set("includeGDPRSensitiveData", "true")
	}
	if f.size > 0 {
		q.Set("pageSize", strconv.Itoa(f.size))
	}
	if f.cursor != "" {
		q.Set("cursor", f.cursor)
	}
	if f.from != "" {
		q.Set("from", f.from)
		q.Del("wait")
	}
	go func() {
		defer close(f.finished)
		for !f.done(f.count()) {
			r := e.do("GET", feedPath(f.ledger, string(f.topic))+"?"+q.Encode(), token, nil)
			var pg struct {
				Items  []map[string]any `json:"items"`
				Cursor string           `json:"cursor"`
			}
			if r.code != http.StatusOK || json.Unmarshal(r.body, &pg) != nil || pg.Cursor == "" {
				t.Errorf("%s: %d %s", f.name, r.code, r.body)
				return
			}
			n := f.count()
			for _, it := range pg.Items {
				_, g := it["name"]
				n = f.note(seen{it["pspReference"].(string), g})
			}
			f.started.Store(true)
			if f.done(n) {
				return
			}
			q.Set("cursor", pg.Cursor)
			q.Del("from")
			q.Set("wait", "2s")
		}
	}()
}

// authCtx is ctx whose gRPC calls carry the bearer token.
func authCtx(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// TestSubscribeFeed_ManyFollowers: streams and long polls at equal and
// different positions, with and without GDPR data, with different page
// sizes, on two ledgers and both topics, follow while three writers append
// concurrently. Each gets exactly its log's entries from its start, once
// and in order, GDPR fields exactly where it asked for them and the entry
// has them, nothing of another log.
func TestSubscribeFeed_ManyFollowers(t *testing.T) {
	e := newReportEnv(t, Limits{MaxLongPollsPerClient: 64})
	e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 6)
	e.add(ledgerA, ledger.TopicFees, "2024-01-01", 2)
	e.add(ledgerA2, ledger.TopicFunds, "2024-01-01", 3)
	r, mid := e.get(feedPath(ledgerA, "funds"), url.Values{"pageSize": {"3"}}) // a cursor at sequence 4
	if r.code != 200 || mid.Cursor == nil {
		t.Fatalf("first page: %d %s", r.code, r.body)
	}

	var fs []*follower
	add := func(n int, sp followSpec) {
		name := sp.name
		for i := range n {
			sp.name = fmt.Sprintf("%s#%d", name, i)
			fs = append(fs, newFollower(sp, -1))
		}
	}
	add(4, followSpec{name: "stream start", ledger: ledgerA, topic: ledger.TopicFunds, start: 1})
	add(3, followSpec{name: "stream start gdpr", ledger: ledgerA, topic: ledger.TopicFunds, gdpr: true, start: 1})
	add(2, followSpec{name: "stream mid gdpr size 2", ledger: ledgerA, topic: ledger.TopicFunds, gdpr: true, size: 2, cursor: *mid.Cursor, start: 4})
	add(3, followSpec{name: "stream now", ledger: ledgerA, topic: ledger.TopicFunds, from: "now", start: 7})
	add(2, followSpec{name: "stream now gdpr size 3", ledger: ledgerA, topic: ledger.TopicFunds, gdpr: true, size: 3, from: "now", start: 7})
	add(2, followSpec{name: "stream fees", ledger: ledgerA, topic: ledger.TopicFees, start: 1})
	add(2, followSpec{name: "stream A2", ledger: ledgerA2, topic: ledger.TopicFunds, start: 1})
	add(3, followSpec{name: "poll start gdpr", ledger: ledgerA, topic: ledger.TopicFunds, gdpr: true, rest: true, start: 1})
	add(2, followSpec{name: "poll now", ledger: ledgerA, topic: ledger.TopicFunds, from: "now", rest: true, start: 7})
	add(1, followSpec{name: "poll mid size 2", ledger: ledgerA, topic: ledger.TopicFunds, size: 2, cursor: *mid.Cursor, rest: true, start: 4})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, f := range fs {
		if f.rest {
			f.poll(t, e, e.partner)
		} else {
			f.subscribe(t, ctx, e.conn, e.partner)
		}
	}
	// Long pollers from now take their start with a first answer before
	// the writers begin.
	for _, f := range fs {
		for deadline := time.Now().Add(10 * time.Second); f.rest && !f.started.Load(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no first answer", f.name)
			}
		}
	}

	// Three writers, interleaving the three logs.
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 12 {
				switch (w + i) % 4 {
				case 0, 1:
					e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 1+(w+i)%4)
				case 2:
					e.add(ledgerA, ledger.TopicFees, "2024-01-01", 1+i%2)
				default:
					e.add(ledgerA2, ledger.TopicFunds, "2024-01-01", 1+i%3)
				}
			}
		})
	}
	wg.Wait()

	want := map[string][]seen{} // per (ledger, topic, gdpr) from sequence 1
	for _, f := range fs {
		k := fmt.Sprint(f.ledger, f.topic, f.gdpr)
		if _, ok := want[k]; !ok {
			es, err := e.store.Entries(f.ledger, f.topic, 1, 100000, ledger.ReadOptions{GDPR: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, en := range es {
				want[k] = append(want[k], seen{en.PSPReference, f.gdpr && en.GDPR != nil})
			}
		}
		f.want.Store(int64(len(want[k])) - int64(f.start) + 1)
	}
	for _, f := range fs {
		for deadline := time.Now().Add(20 * time.Second); !f.done(f.count()); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d entries after 20 s", f.name, f.count(), f.want.Load())
			}
		}
	}
	cancel() // the streams end; a long poller ends after its current wait
	for _, f := range fs {
		<-f.finished
	}
	for _, f := range fs {
		w := want[fmt.Sprint(f.ledger, f.topic, f.gdpr)][f.start-1:]
		if !slices.Equal(f.got, w) {
			t.Errorf("%s received %d entries, want %d:\n got %v\nwant %v", f.name, len(f.got), len(w), f.got, w)
		}
	}
}

// TestSubscribeFeed_SlowSubscriber: a subscriber that stops reading, at the
// same position as fast ones (so sharing their pages), holds none of them
// back; once it reads again it gets every entry once, in order.
func TestSubscribeFeed_SlowSubscriber(t *testing.T) {
	e := newReportEnv(t, Limits{MaxLongPollsPerClient: 16})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Fixed 64 KiB windows: the server can have at most 64 KiB in flight
	// and 64 KiB queued (grpc's write quota) for the slow stream, far less
	// than the pages below (checked), so its sends block until it reads.
	slowConn, err := grpc.NewClient(e.srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer slowConn.Close()
	slowCtx, slowCancel := context.WithCancel(ctx)
	defer slowCancel()
	slow, err := v1.NewReportServiceClient(slowConn).SubscribeFeed(authCtx(slowCtx, e.partner), &v1.SubscribeFeedRequest{LedgerId: ledgerA, Topic: "funds"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Header(); err != nil {
		t.Fatal(err)
	}
	const batches, batch = 6, 600
	fast := make([]*follower, 4)
	for i := range fast {
		fast[i] = newFollower(followSpec{name: fmt.Sprintf("fast#%d", i), ledger: ledgerA, topic: ledger.TopicFunds, start: 1}, batches*batch)
		fast[i].subscribe(t, ctx, e.conn, e.partner)
	}
	for range batches {
		e.add(ledgerA, ledger.TopicFunds, "2024-01-01", batch)
	}
	var want []seen
	es, _ := e.store.Entries(ledgerA, ledger.TopicFunds, 1, batches*batch, ledger.ReadOptions{})
	for _, en := range es {
		want = append(want, seen{psp: en.PSPReference})
	}
	if n := proto.Size(&v1.FeedPage{Items: entriesToProto(es)}); n < 2*(128<<10) {
		t.Fatalf("the log is %d bytes on the wire: too little to block the slow stream", n)
	}
	for _, f := range fast {
		select {
		case <-f.finished:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: %d of %d entries while the slow subscriber does not read", f.name, f.count(), len(want))
		}
		if !slices.Equal(f.got, want) {
			t.Fatalf("%s received %d entries, want the %d of the log in order", f.name, len(f.got), len(want))
		}
	}
	// The slow one now reads: everything, once, in order.
	var got []seen
	for len(got) < len(want) {
		m, err := slow.Recv()
		if err != nil {
			t.Fatalf("slow Recv after %d entries: %v", len(got), err)
		}
		for _, it := range m.GetPage().GetItems() {
			got = append(got, seen{psp: it.GetPspReference()})
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("slow subscriber received %d entries, want the %d of the log in order", len(got), len(want))
	}
}
