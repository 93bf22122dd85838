package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// REST page answers are written from pooled buffers (pool.go). Readers at
// once, with different page sizes and with and without GDPR fields, each get
// exactly their own entries: a buffer given back too early, or shared by two
// answers, shows as another page's items or fields.
func TestREST_PooledPagesConcurrentReaders(t *testing.T) {
	e := newReportEnv(t, Limits{MaxLongPollsPerClient: 64})
	const n = 1500
	for _, day := range []string{"2024-01-01", "2024-01-02", "2024-01-03"} {
		e.add(ledgerA, ledger.TopicFunds, day, n/3)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			gdpr := g%2 == 0
			q := url.Values{}
			next := int64(1)
			for next <= n {
				q.Set("pageSize", strconv.Itoa(1+rng.IntN(700)))
				if gdpr {
					q.Set("includeGDPRSensitiveData", "true")
				}
				r, p := e.get(feedPath(ledgerA, "funds"), q)
				if r.code != 200 {
					errs <- fmt.Errorf("reader %d: %d %s", g, r.code, r.body)
					return
				}
				for _, it := range p.Items {
					if it["pspReference"] != fmt.Sprintf("psp%d", next) || it["amount"] != float64(next) {
						errs <- fmt.Errorf("reader %d: item %v, want psp%d", g, it, next)
						return
					}
					if _, has := it["name"]; has != (gdpr && next%2 == 0) {
						errs <- fmt.Errorf("reader %d (gdpr %v): entry %d name present %v", g, gdpr, next, has)
						return
					}
					next++
				}
				if p.Cursor == nil {
					errs <- fmt.Errorf("reader %d: no cursor", g)
					return
				}
				q = url.Values{"cursor": {*p.Cursor}}
				if len(p.Items) == 0 {
					break
				}
			}
			if next != n+1 {
				errs <- fmt.Errorf("reader %d ended at %d, want %d", g, next, n+1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// aliasWriter fails the test when, while the answer is being written, the
// JSON buffer pool hands out a buffer whose memory is the answer's: the
// buffer went back to the pool before the answer was written.
type aliasWriter struct {
	discardWriter
	t       *testing.T
	aliased bool
}

func (w *aliasWriter) Write(b []byte) (int, error) {
	if len(b) > 0 {
		var taken []*[]byte
		for range 8 {
			bp := jsonBufs.Get().(*[]byte)
			taken = append(taken, bp)
			if c := (*bp)[:cap(*bp)]; len(c) > 0 && &c[0] == &b[0] {
				w.aliased = true
			}
		}
		for _, bp := range taken {
			jsonBufs.Put(bp)
		}
	}
	return w.discardWriter.Write(b)
}

func TestREST_PooledBufferHeldUntilWritten(t *testing.T) {
	e := newReportEnv(t, Limits{})
	e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 300)
	h := e.srv.http.Handler
	for i := range 30 {
		r, _ := http.NewRequest("GET", feedPath(ledgerA, "funds")+"?pageSize=300", nil)
		r.Header.Set("Authorization", "Bearer "+e.partner)
		w := &aliasWriter{discardWriter: discardWriter{h: http.Header{}}, t: t}
		h.ServeHTTP(w, r)
		if w.n < 10_000 {
			t.Fatalf("request %d: answer of %d bytes", i, w.n)
		}
		if w.aliased {
			t.Fatalf("request %d: the answer's buffer was back in the pool while it was written", i)
		}
	}
}

// The same over gRPC: a page's messages come from a pooled block given back
// at the call's End event (answeredHandler), after grpc has encoded the
// answer; readers at once each get exactly their own entries.
func TestGRPC_PooledPagesConcurrentReaders(t *testing.T) {
	e := newReportEnv(t, Limits{})
	const n = 1500
	for _, day := range []string{"2024-01-01", "2024-01-02", "2024-01-03"} {
		e.add(ledgerA, ledger.TopicFunds, day, n/3)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			ctx := bearer(e.partner)
			req := &v1.GetFeedRequest{LedgerId: ledgerA, Topic: "funds", IncludeGdprSensitiveData: g%2 == 0}
			next := int64(1)
			for next <= n {
				req.PageSize = int32(1 + rng.IntN(700))
				resp, err := e.rep.GetFeed(ctx, req)
				if err != nil {
					errs <- fmt.Errorf("reader %d: %v", g, err)
					return
				}
				for _, it := range resp.GetItems() {
					if it.GetPspReference() != fmt.Sprintf("psp%d", next) || it.GetAmount() != next {
						errs <- fmt.Errorf("reader %d: item %v, want psp%d", g, it, next)
						return
					}
					if (it.Name != nil) != (g%2 == 0 && next%2 == 0) {
						errs <- fmt.Errorf("reader %d: entry %d name %v", g, next, it.Name)
						return
					}
					next++
				}
				if len(resp.GetItems()) == 0 {
					break
				}
				req.Cursor = resp.GetCursor()
			}
			if next != n+1 {
				errs <- fmt.Errorf("reader %d ended at %d, want %d", g, next, n+1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A REST page's message carries no items (page_json.go): preEncode answers
// it only with the JSON written for it, and refuses any other message of a
// call whose page was written, rather than answer a page without items.
func TestPreEncode_RESTPageOnlyForItsMessage(t *testing.T) {
	rc := &restCall{}
	ctx := context.WithValue(context.WithValue(context.Background(), restStateKey{}, &rc.state), restPageKey{}, &rc.page)
	page := &v1.GetFeedResponse{Cursor: "c"}
	rc.page.resp, rc.page.json = page, []byte(`{"items":[{}],"tryLater":false,"cursor":"c"}`)
	got, err := preEncode(ctx, page)
	if b, ok := got.(preEncoded); err != nil || !ok || string(b) != string(rc.page.json) {
		t.Fatalf("the page's message: %v %v", got, err)
	}
	if got, err := preEncode(ctx, &v1.GetFeedResponse{Cursor: "c"}); err == nil {
		t.Fatalf("another message answered: %v", got)
	}
}
