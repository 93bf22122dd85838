package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Long polls parked at one position share the page the fan-out reads after
// a commit, and with it one JSON body (page_json.go sharedFeed). These
// tests check that every poll still gets its own right answer: GDPR and
// plain polls never share a body, the shared bytes are the same answer a
// lone poll gets, and they are never handed to a pool that later pages
// write into.

// TestReportAPI_LongPollShared parks plain and GDPR long polls at the end
// of a feed over HTTP, appends, and checks every answer.
func TestReportAPI_LongPollShared(t *testing.T) {
	e := newReportEnv(t, Limits{MaxLongPollsPerClient: 64})
	e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 3)
	_, end := e.get(feedPath(ledgerA, "funds"), url.Values{"from": {"now"}})
	const plain, gdpr = 8, 4
	bodies := make([][]byte, plain+gdpr)
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := url.Values{"cursor": {*end.Cursor}, "wait": {"30s"}}
			if i >= plain {
				q.Set("includeGDPRSensitiveData", "true")
			}
			req, _ := http.NewRequest("GET", e.base+feedPath(ledgerA, "funds")+"?"+q.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+e.partner)
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Body.Close()
			var b bytes.Buffer
			if _, err := b.ReadFrom(r.Body); err != nil || r.StatusCode != 200 {
				t.Errorf("long poll %d: %d %v %s", i, r.StatusCode, err, b.Bytes())
				return
			}
			// The answer is sent as soon as it is written (rest.go), still
			// whole with its length: not chunked.
			if r.ContentLength != int64(b.Len()) || len(r.TransferEncoding) != 0 {
				t.Errorf("long poll %d: Content-Length %d, Transfer-Encoding %v, body %d bytes", i, r.ContentLength, r.TransferEncoding, b.Len())
			}
			bodies[i] = b.Bytes()
		}()
	}
	waitPolls(t, e.srv, "acme", plain+gdpr)
	// Enough entries for the polls to share one body (minSharedBody);
	// psp4 has GDPR data, psp5 not.
	e.add(ledgerA, ledger.TopicFunds, "2024-01-01", minSharedBody+1)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, b := range bodies {
		var p page
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("long poll %d: %v\n%s", i, err, b)
		}
		withGDPR := i >= plain
		if len(p.Items) != minSharedBody+1 || p.Items[0]["pspReference"] != "psp4" || p.Items[1]["pspReference"] != "psp5" || *p.TryLater {
			t.Fatalf("long poll %d (GDPR %v): %s", i, withGDPR, b)
		}
		for _, it := range p.Items {
			checkItem(t, it, withGDPR)
		}
		if _, has := p.Items[0]["name"]; has != withGDPR {
			t.Fatalf("long poll %d (GDPR %v) has name: %v\n%s", i, withGDPR, has, b)
		}
		// The same answer as a lone read of the same page.
		q := url.Values{"cursor": {*end.Cursor}}
		if withGDPR {
			q.Set("includeGDPRSensitiveData", "true")
		}
		if r := e.do("GET", feedPath(ledgerA, "funds")+"?"+q.Encode(), e.partner, nil); !bytes.Equal(r.body, b) {
			t.Fatalf("long poll %d answered\n%s\na read of the same page answers\n%s", i, b, r.body)
		}
		// Its cursor goes on from there.
		_, next := e.get(feedPath(ledgerA, "funds"), url.Values{"cursor": {*p.Cursor}})
		if len(next.Items) != 0 || !*next.TryLater {
			t.Fatalf("after long poll %d: %+v", i, next)
		}
		// A long poll there now (where the fan-out has just read the
		// end) that runs out: no items, the same cursor.
		if i == 0 || i == plain {
			q := url.Values{"cursor": {*p.Cursor}, "wait": {"200ms"}}
			if withGDPR {
				q.Set("includeGDPRSensitiveData", "true")
			}
			r, again := e.get(feedPath(ledgerA, "funds"), q)
			if r.code != 200 || len(again.Items) != 0 || !*again.TryLater || *again.Cursor != *p.Cursor {
				t.Fatalf("expired long poll after %d: %d %s", i, r.code, r.body)
			}
		}
	}
}

// waitPolls waits until clientID holds n long polls of srv.
func waitPolls(t *testing.T, srv *Server, clientID string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		srv.polls.mu.Lock()
		got := srv.polls.n[clientID]
		srv.polls.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d long polls of %s, want %d", got, clientID, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRestFeed_SharedBody calls the REST long poll's handler path directly,
// as the chain does, to see the bytes each answer is written from: polls
// that shared a page share one body only with polls read the same way, the
// body is immutable (capped at its length), each poll has its own message,
// and the body stays as it was while later pages are written into pooled
// buffers after the polls' answers have finished.
func TestRestFeed_SharedBody(t *testing.T) {
	e := newReportEnv(t, Limits{MaxLongPollsPerClient: 64})
	e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 3)
	a := e.srv.reportSrv.(*reportAPI)
	ctx := context.WithValue(context.Background(), callKey{}, &call{principal: &auth.Principal{ClientID: "acme"}})
	type answer struct {
		st   *restState
		pg   *restPage
		gdpr bool
	}
	// Rounds can split when a poll joins after the commit; try a few
	// times for one where every poll of a kind waited.
	for attempt := 0; ; attempt++ {
		from := uint64(e.n.Load()) + 1
		const n = 12
		answers := make([]answer, n)
		var wg sync.WaitGroup
		for i := range answers {
			ans := &answers[i]
			ans.st, ans.pg, ans.gdpr = &restState{}, &restPage{}, i%3 == 0
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := a.restFeed(ctx, ans.st, ans.pg, ledgerA, ledger.TopicFunds, from, "", 1000,
					ledger.ReadOptions{GDPR: ans.gdpr}, 30*time.Second); err != nil {
					t.Error(err)
				}
			}()
		}
		waitPolls(t, e.srv, "acme", n)
		time.Sleep(20 * time.Millisecond) // from acquired to parked in the round
		e.add(ledgerA, ledger.TopicFunds, "2024-01-01", minSharedBody)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		// Bodies by backing array.
		shared := map[*byte][]int{}
		for i, ans := range answers {
			b := ans.pg.json
			if len(b) == 0 || ans.pg.resp == nil {
				t.Fatalf("poll %d: no answer", i)
			}
			shared[&b[0]] = append(shared[&b[0]], i)
		}
		kinds := 0
		for _, idx := range shared {
			first := answers[idx[0]]
			for _, i := range idx {
				if answers[i].gdpr != first.gdpr {
					t.Fatalf("polls %v share a body across GDPR and plain reads:\n%s", idx, first.pg.json)
				}
				if i != idx[0] && answers[i].pg.resp == first.pg.resp {
					t.Fatalf("polls %d and %d share one message", idx[0], i)
				}
			}
			if len(idx) > 1 {
				if b := first.pg.json; cap(b) != len(b) {
					t.Fatalf("a shared body has room to append into: len %d cap %d", len(b), cap(b))
				}
				kinds++
			}
		}
		if kinds != 2 {
			if attempt < 3 {
				for _, ans := range answers {
					ans.st.finish()
				}
				continue
			}
			t.Fatalf("after %d tries the polls' bodies split into %d groups: %v", attempt+1, len(shared), shared)
		}
		// Every answer is right for its kind, and a copy is kept.
		saved := make([][]byte, n)
		for i, ans := range answers {
			var p page
			if err := json.Unmarshal(ans.pg.json, &p); err != nil || len(p.Items) != minSharedBody {
				t.Fatalf("poll %d: %v %s", i, err, ans.pg.json)
			}
			if _, has := p.Items[0]["name"]; has != ans.gdpr || !bytes.Contains(ans.pg.json, []byte(`"cursor":"`+ans.pg.resp.(interface{ GetCursor() string }).GetCursor()+`"`)) {
				t.Fatalf("poll %d (GDPR %v): %s", i, ans.gdpr, ans.pg.json)
			}
			saved[i] = bytes.Clone(ans.pg.json)
		}
		// The answers are written; their pooled buffers go back. Later
		// pages, written into pooled buffers, must not touch the bodies.
		for _, ans := range answers {
			ans.st.finish()
		}
		e.add(ledgerA, ledger.TopicFunds, "2024-01-01", 50)
		for range 4 * n {
			st, pg := &restState{}, &restPage{}
			if _, err := a.restFeed(ctx, st, pg, ledgerA, ledger.TopicFunds, 1, "", 1000, ledger.ReadOptions{GDPR: true}, 0); err != nil {
				t.Fatal(err)
			}
			st.finish()
		}
		for i, ans := range answers {
			if !bytes.Equal(ans.pg.json, saved[i]) {
				t.Fatalf("poll %d's body changed after its answer:\n%s\nwas\n%s", i, ans.pg.json, saved[i])
			}
		}
		return
	}
}

// TestReportAPI_LongPollAnswerLength: a long poll's answer is sent as soon
// as it is written (rest.go) and still carries its length, small (one
// entry) or large: never chunked.
func TestReportAPI_LongPollAnswerLength(t *testing.T) {
	e := newReportEnv(t, Limits{MaxLongPollsPerClient: 4})
	_, end := e.get(feedPath(ledgerA, "funds"), url.Values{"from": {"now"}})
	cursor := *end.Cursor
	for _, n := range []int{1, 200} {
		type answer struct {
			r    *http.Response
			body []byte
			err  error
		}
		got := make(chan answer, 1)
		go func() {
			q := url.Values{"cursor": {cursor}, "wait": {"30s"}}
			req, _ := http.NewRequest("GET", e.base+feedPath(ledgerA, "funds")+"?"+q.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+e.partner)
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				got <- answer{err: err}
				return
			}
			defer r.Body.Close()
			var b bytes.Buffer
			_, err = b.ReadFrom(r.Body)
			got <- answer{r, b.Bytes(), err}
		}()
		waitPolls(t, e.srv, "acme", 1)
		e.add(ledgerA, ledger.TopicFunds, "2024-01-01", n)
		a := <-got
		if a.err != nil || a.r.StatusCode != 200 {
			t.Fatalf("%d entries: %v %v %s", n, a.err, a.r, a.body)
		}
		if a.r.ContentLength != int64(len(a.body)) || len(a.r.TransferEncoding) != 0 {
			t.Fatalf("%d entries: Content-Length %d, Transfer-Encoding %v, body %d bytes", n, a.r.ContentLength, a.r.TransferEncoding, len(a.body))
		}
		var p page
		if err := json.Unmarshal(a.body, &p); err != nil || len(p.Items) != n || *p.TryLater {
			t.Fatalf("%d entries: %v\n%.300s", n, err, a.body)
		}
		cursor = *p.Cursor
	}
}

// TestReportAPI_LongPollEarlyAnswer: a long poll woken by a commit sends
// its answer itself (page_json.go sendEarly), ahead of the gateway; it must
// be the answer the gateway gives: the same status, headers and bytes as a
// plain read of the same page afterwards, for a page of its own and for a
// shared one (minSharedBody).
func TestReportAPI_LongPollEarlyAnswer(t *testing.T) {
	e := newReportEnv(t, Limits{MaxLongPollsPerClient: 8})
	_, end := e.get(feedPath(ledgerA, "funds"), url.Values{"from": {"now"}})
	cursor := *end.Cursor
	do := func(q url.Values) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", e.base+feedPath(ledgerA, "funds")+"?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+e.partner)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return nil, nil
		}
		defer r.Body.Close()
		var b bytes.Buffer
		if _, err := b.ReadFrom(r.Body); err != nil {
			t.Error(err)
		}
		return r, b.Bytes()
	}
	for _, tc := range []struct {
		polls, entries int
	}{{1, 1}, {3, minSharedBody + 2}} {
		q := url.Values{"cursor": {cursor}, "wait": {"30s"}, "pageSize": {"500"}}
		type answer struct {
			r    *http.Response
			body []byte
		}
		got := make(chan answer, tc.polls)
		for range tc.polls {
			go func() {
				r, b := do(q)
				got <- answer{r, b}
			}()
		}
		waitPolls(t, e.srv, "acme", tc.polls)
		e.add(ledgerA, ledger.TopicFunds, "2024-01-01", tc.entries)
		q.Del("wait")
		plain, plainBody := do(q)
		if t.Failed() {
			t.FailNow()
		}
		for range tc.polls {
			a := <-got
			if a.r == nil {
				t.FailNow()
			}
			if a.r.StatusCode != plain.StatusCode || !bytes.Equal(a.body, plainBody) {
				t.Fatalf("%d entries: long poll %d %s\nplain read %d %s", tc.entries, a.r.StatusCode, a.body, plain.StatusCode, plainBody)
			}
			for _, h := range []http.Header{a.r.Header, plain.Header} {
				h.Del("Date")
				h.Del(headerRequestID)
			}
			if fmt.Sprint(a.r.Header) != fmt.Sprint(plain.Header) {
				t.Fatalf("%d entries: long poll headers %v\nplain read headers %v", tc.entries, a.r.Header, plain.Header)
			}
		}
		var p page
		if err := json.Unmarshal(plainBody, &p); err != nil || len(p.Items) != tc.entries {
			t.Fatalf("%d entries: %v %s", tc.entries, err, plainBody)
		}
		cursor = *p.Cursor
	}
}
