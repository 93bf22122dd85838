//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ledgerfeed/ledgerfeed/client"
	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// The tests in this file run ledgerfeed nodes as separate OS processes, so
// that SIGKILL is a real crash: no deferred Close, no graceful drain, open
// transactions cut by the database. The process is this test binary run
// again with asMainEnv set: init below hands it to main, so no go build is
// needed and the nodes are built with the test's flags (-race included).

// asMainEnv makes the test binary run as the ledgerfeed command.
const asMainEnv = "LEDGERFEED_TEST_AS_MAIN"

func init() {
	if os.Getenv(asMainEnv) == "1" {
		main() // exits
	}
}

// mpNode is one ledgerfeed serve process.
type mpNode struct {
	name     string
	dataDir  string
	cmd      *exec.Cmd
	out      *addrWatcher
	stderr   *syncBuffer
	httpAddr string
	exited   chan struct{} // closed once cmd.Wait returned
}

// mpSpawn starts "ledgerfeed serve" as a process on dataDir and the store
// dsn, ports chosen by the kernel. The process gets SIGKILL if the test
// process dies (Pdeathsig) and at the end of the test if still running;
// when the test failed, the end of its stderr is logged.
func mpSpawn(t *testing.T, name, dataDir, dsn string, extra ...string) *mpNode {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--data", dataDir, "--store", dsn, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}, extra...)
	n := &mpNode{name: name, dataDir: dataDir, out: newAddrWatcher(), stderr: &syncBuffer{}, exited: make(chan struct{})}
	n.cmd = exec.Command(exe, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LEDGERFEED_") { // flags alone configure the node
			env = append(env, kv)
		}
	}
	n.cmd.Env = append(env, asMainEnv+"=1")
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.stderr
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-n.exited:
		default:
			n.cmd.Process.Kill()
			select {
			case <-n.exited:
			case <-time.After(10 * time.Second):
				t.Errorf("%s (pid %d) did not die within 10s of SIGKILL", name, n.cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("%s stderr, last 4000 bytes:\n%s", name, mpTail(n.stderr.String(), 4000))
		}
	})
	return n
}

// mpAwait waits until every node printed its listening addresses.
func mpAwait(t *testing.T, nodes ...*mpNode) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for _, n := range nodes {
		select {
		case <-n.out.ready:
			n.httpAddr, _ = n.out.addrs()
		case <-n.exited:
			t.Fatalf("%s ended before listening: %v\nstderr:\n%s", n.name, n.cmd.ProcessState, mpTail(n.stderr.String(), 4000))
		case <-deadline:
			t.Fatalf("%s did not listen within 60s\nstderr:\n%s", n.name, mpTail(n.stderr.String(), 4000))
		}
	}
}

func (n *mpNode) url(path string) string { return "http://" + n.httpAddr + path }

// kill sends SIGKILL and waits until the process is gone.
func (n *mpNode) kill(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", n.name, err)
	}
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not die within 10s of SIGKILL", n.name)
	}
	if ws, ok := n.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s ended with %v, not by SIGKILL", n.name, n.cmd.ProcessState)
	}
}

// stop sends SIGTERM and requires a clean exit (status 0) within 20 s, and
// no data race reported on the node's stderr.
func (n *mpNode) stop(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", n.name, err)
	}
	select {
	case <-n.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop within 20s of SIGTERM", n.name)
	}
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("%s exited with %v after SIGTERM, want status 0", n.name, n.cmd.ProcessState)
	}
	n.checkNoRace(t)
}

func (n *mpNode) checkNoRace(t *testing.T) {
	t.Helper()
	if s := n.stderr.String(); strings.Contains(s, "WARNING: DATA RACE") {
		i := strings.Index(s, "WARNING: DATA RACE")
		t.Errorf("%s reported a data race:\n%s", n.name, mpTail(s[i:], 6000))
	}
}

// mpTail is the last n bytes of s.
func mpTail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// mpHTTP is the test's HTTP client: an answer-less call fails within 30 s
// (a long poll waits at most a few seconds).
var mpHTTP = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true},
}

// mpDo makes one call; err is a transport failure (no answer).
func mpDo(method, url, token string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := mpHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// mpMust makes a call that must answer want.
func mpMust(t *testing.T, want int, method, url, token string, body any) []byte {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	code, ans, err := mpDo(method, url, token, b)
	if err != nil || code != want {
		t.Fatalf("%s %s: %d %v %s, want %d", method, url, code, err, ans, want)
	}
	return ans
}

// mpToken gets an access token for a client on a node.
func mpToken(t *testing.T, n *mpNode, id, secret string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", n.url("/accesstoken/get"), nil)
	req.Header.Set("client_id", id)
	req.Header.Set("client_secret", secret)
	resp, err := mpHTTP.Do(req)
	if err != nil {
		t.Fatalf("token of %s on %s: %v", id, n.name, err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 || tr.AccessToken == "" {
		t.Fatalf("token of %s on %s: %d %v", id, n.name, resp.StatusCode, err)
	}
	return tr.AccessToken
}

// mpSetup creates ledgers (id → PUT body) and read clients granted all of
// them, and returns the admin token and the read clients' secrets by id.
func mpSetup(t *testing.T, n *mpNode, adminSecret string, ledgers map[string]string, readers ...string) (admin string, secrets map[string]string) {
	t.Helper()
	admin = mpToken(t, n, "admin", adminSecret)
	var grants []map[string]string
	for _, id := range slices.Sorted(mapKeys(ledgers)) {
		mpMust(t, 201, "PUT", n.url("/admin/v1/ledgers/"+id), admin, ledgers[id])
		grants = append(grants, map[string]string{"ledgerId": id})
	}
	secrets = map[string]string{}
	for _, r := range readers {
		ans := mpMust(t, 201, "POST", n.url("/admin/v1/clients"), admin, map[string]any{"clientId": r, "scopes": []string{"read"}, "grants": grants})
		var cc struct {
			ClientSecret string `json:"clientSecret"`
		}
		if err := json.Unmarshal(ans, &cc); err != nil || cc.ClientSecret == "" {
			t.Fatalf("create client %s: %s", r, ans)
		}
		secrets[r] = cc.ClientSecret
	}
	return admin, secrets
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// mpBatch is one batch of entries for one (ledger, topic); body is what is
// posted, the same bytes on every retry.
type mpBatch struct {
	ledger, topic string
	entries       []importEntry
	body          []byte
}

func newMPBatch(ledgerID, topic string, entries []importEntry) *mpBatch {
	b, err := json.Marshal(map[string]any{"entries": entries})
	if err != nil {
		panic(err)
	}
	return &mpBatch{ledger: ledgerID, topic: topic, entries: entries, body: b}
}

// mpAck is the answer to an append.
type mpAck struct {
	Appended      int   `json:"appended"`
	Duplicates    int   `json:"duplicates"`
	FirstSequence int64 `json:"firstSequence"`
	LastSequence  int64 `json:"lastSequence"`
}

// mpEntries makes n entries for topic with ids prefix-0, prefix-1, …
func mpEntries(rng *rand.Rand, topic, prefix, date string, n int) []importEntry {
	shop := "shop-1"
	at := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)
	out := make([]importEntry, n)
	for i := range out {
		id := fmt.Sprintf("%s-%02d", prefix, i)
		e := importEntry{EntryID: id, PSPReference: "psp-" + id, Time: at, LedgerDate: date, Reference: id}
		switch {
		case topic == "fees":
			e.EntryType, e.Amount = "capture-fee", -1-rng.Int64N(3000)
		case rng.IntN(5) == 0:
			e.EntryType, e.Amount, e.RecipientHandle = "refund", -1-rng.Int64N(20000), &shop
		default:
			e.EntryType, e.Amount, e.RecipientHandle = "capture", 1+rng.Int64N(100000), &shop
		}
		out[i] = e
	}
	return out
}

// mpStream names one feed.
type mpStream struct{ ledger, topic string }

func (s mpStream) String() string { return s.ledger + "/" + s.topic }

// mpIngest is the state of the ingest test shared by writers and readers.
type mpIngest struct {
	t     *testing.T
	nodes []*mpNode
	admin string
	seed  uint64
	dead  atomic.Int32 // index+1 of the killed node, 0 while all live
	quit  atomic.Bool  // the test is ending: writers and readers return

	mu      sync.Mutex
	posted  map[mpStream][]*mpBatch             // every batch built, in build order
	bySeq   map[mpStream]map[int64]*importEntry // acknowledged sequence → entry
	seqOf   map[string]int64                    // stream/entryId → acknowledged sequence
	cut     int                                 // batches whose first try got no answer
	cutDone int                                 // … of which the retry found committed
	reposts int                                 // acknowledged batches posted again on purpose
}

// post posts b, starting on node start and moving on to the next node after
// every call without an answer (or 5xx), until one answers. It returns the
// answer, the node that gave it and how many tries failed.
func (g *mpIngest) post(b *mpBatch, start int) (mpAck, int, int, error) {
	deadline := time.Now().Add(45 * time.Second)
	node, failed := start, 0
	for {
		if g.quit.Load() {
			return mpAck{}, node, failed, errMPQuit
		}
		n := g.nodes[node]
		code, body, err := mpDo("POST", n.url("/admin/v1/ledgers/"+b.ledger+"/"+b.topic+"/entries"), g.admin, b.body)
		switch {
		case err == nil && code == 200:
			var a mpAck
			if err := json.Unmarshal(body, &a); err != nil {
				return a, node, failed, fmt.Errorf("append answer %s: %v", body, err)
			}
			return a, node, failed, nil
		case err == nil && code < 500:
			return mpAck{}, node, failed, fmt.Errorf("append %s on %s: %d %s", b.entries[0].EntryID, n.name, code, body)
		}
		if int(g.dead.Load()) != node+1 {
			g.t.Errorf("append %s on live %s: %d %v %s", b.entries[0].EntryID, n.name, code, err, body)
		}
		failed++
		if time.Now().After(deadline) {
			return mpAck{}, node, failed, fmt.Errorf("append %s: no node answered within 45s (last: %d %v)", b.entries[0].EntryID, code, err)
		}
		node = (node + 1) % len(g.nodes)
		time.Sleep(5 * time.Millisecond)
	}
}

// write runs writer w: batches of 1–20 entries to random streams, through
// its node, each retried until acknowledged; afterAck is called after each
// acknowledged batch.
func (g *mpIngest) write(w, batches int, streams []mpStream, afterAck func()) {
	rng := rand.New(rand.NewPCG(g.seed, uint64(w)))
	node := w % len(g.nodes)
	for i := range batches {
		s := streams[rng.IntN(len(streams))]
		b := newMPBatch(s.ledger, s.topic, mpEntries(rng, s.topic, fmt.Sprintf("w%d-b%03d", w, i), "", 1+rng.IntN(20)))
		g.mu.Lock()
		g.posted[s] = append(g.posted[s], b)
		g.mu.Unlock()
		a, answered, failed, err := g.post(b, node)
		if errors.Is(err, errMPQuit) {
			return
		}
		if err != nil {
			g.t.Errorf("writer %d: %v", w, err)
			return
		}
		node = answered // a node that failed is left for the rest of the run
		n := len(b.entries)
		if a.FirstSequence < 1 || a.LastSequence-a.FirstSequence+1 != int64(n) || a.Appended+a.Duplicates != n {
			g.t.Errorf("writer %d: batch %s of %d entries answered %+v: not one run of %d sequences", w, b.entries[0].EntryID, n, a, n)
			return
		}
		g.mu.Lock()
		switch {
		case failed == 0 && a.Appended != n:
			g.t.Errorf("writer %d: new batch %s answered %+v: fresh ids acknowledged as duplicates", w, b.entries[0].EntryID, a)
		case failed > 0 && a.Appended != n && a.Duplicates != n:
			g.t.Errorf("writer %d: batch %s retried after %d failed tries answered %+v: part of it was committed (a batch is atomic)", w, b.entries[0].EntryID, failed, a)
		case failed > 0:
			g.cut++
			if a.Duplicates == n {
				g.cutDone++
			}
		}
		for j := range b.entries {
			g.record(s, &b.entries[j], a.FirstSequence+int64(j))
		}
		g.mu.Unlock()

		// Now and then the answer is "lost": the same batch goes again to
		// another node and must answer the same sequences, appending nothing.
		if rng.IntN(6) == 0 {
			r, _, _, err := g.post(b, (node+1)%len(g.nodes))
			if errors.Is(err, errMPQuit) {
				return
			}
			if err != nil {
				g.t.Errorf("writer %d: repost: %v", w, err)
				return
			}
			if r != (mpAck{Duplicates: n, FirstSequence: a.FirstSequence, LastSequence: a.LastSequence}) {
				g.t.Errorf("writer %d: batch %s posted again answered %+v, want %d duplicates at %d–%d", w, b.entries[0].EntryID, r, n, a.FirstSequence, a.LastSequence)
			}
			g.mu.Lock()
			g.reposts++
			g.mu.Unlock()
		}
		afterAck()
	}
}

// record notes entry e of stream s acknowledged at seq; g.mu is held.
func (g *mpIngest) record(s mpStream, e *importEntry, seq int64) {
	key := s.String() + "/" + e.EntryID
	if old, ok := g.seqOf[key]; ok && old != seq {
		g.t.Errorf("%s %s acknowledged at sequence %d and %d", s, e.EntryID, old, seq)
	}
	g.seqOf[key] = seq
	if other, ok := g.bySeq[s][seq]; ok && other.EntryID != e.EntryID {
		g.t.Errorf("%s sequence %d acknowledged for both %s and %s", s, seq, other.EntryID, e.EntryID)
	}
	g.bySeq[s][seq] = e
}

// errMPQuit ends a writer or reader of a test that is ending.
var errMPQuit = errors.New("test ending")

// mpWalk is what one reader saw of one feed.
type mpWalk struct {
	entries   []client.Entry
	chain     client.TopicChain // balances and hash chain recomputed
	cursor    string
	failovers int
	err       error
}

// read walks stream s with long polls from no cursor, as the client whose
// token it holds, starting on node start and moving to the next node, with
// its last cursor, after a call without an answer. Once done is closed and
// target (set before) entries were seen, one more call must answer no
// items, tryLater and the same cursor.
func (g *mpIngest) read(token string, start int, s mpStream, seed uint64, done <-chan struct{}, target *map[mpStream]int64) *mpWalk {
	w := &mpWalk{chain: client.TopicChain{LedgerID: s.ledger, Topic: s.topic}}
	rng := rand.New(rand.NewPCG(g.seed, seed))
	node := start
	deadline := time.Now().Add(90 * time.Second)
	want := int64(-1)
	for {
		if g.quit.Load() {
			w.err = errMPQuit
			return w
		}
		if want < 0 {
			select {
			case <-done:
				want = (*target)[s]
			default:
			}
		}
		final := want >= 0 && int64(len(w.entries)) >= want
		if time.Now().After(deadline) {
			w.err = fmt.Errorf("reader saw %d entries of %d after 90s", len(w.entries), want)
			return w
		}
		q := fmt.Sprintf("pageSize=%d", 1+rng.IntN(300))
		if !final {
			q += "&wait=1s"
		}
		if w.cursor != "" {
			q += "&cursor=" + w.cursor
		}
		n := g.nodes[node]
		code, body, err := mpDo("GET", n.url("/report/v2/ledgers/"+s.ledger+"/"+s.topic+"/feed?"+q), token, nil)
		if err != nil || code >= 500 {
			if int(g.dead.Load()) != node+1 {
				w.err = fmt.Errorf("feed on live %s: %d %v %s", n.name, code, err, body)
				return w
			}
			w.failovers++
			node = (node + 1) % len(g.nodes)
			time.Sleep(5 * time.Millisecond)
			continue
		}
		var p client.FeedPage
		if code != 200 || json.Unmarshal(body, &p) != nil || p.Cursor == "" {
			w.err = fmt.Errorf("feed on %s: %d %s", n.name, code, body)
			return w
		}
		if final {
			if len(p.Items) != 0 || !p.TryLater || p.Cursor != w.cursor {
				w.err = fmt.Errorf("after all %d acknowledged entries the feed on %s answered %d more items, tryLater %v, cursor changed %v",
					want, n.name, len(p.Items), p.TryLater, p.Cursor != w.cursor)
			}
			return w
		}
		for i := range p.Items {
			if err := w.chain.Add(&p.Items[i]); err != nil {
				w.err = fmt.Errorf("entry %d (%s) on %s: %v", len(w.entries)+1, p.Items[i].Reference, n.name, err)
				return w
			}
			w.entries = append(w.entries, p.Items[i])
		}
		w.cursor = p.Cursor
	}
}

// Three ledgerfeed processes on one PostgreSQL database; 8 writers post
// batches through all three, a reader on each node walks every feed with
// long polls, and one node is killed with SIGKILL after a third of the
// batches. Writers retry every batch without an answer, unchanged, on the
// next node; readers continue on the next node from their last cursor.
// Every reader must see every acknowledged entry exactly once, at the
// sequence its batch was acknowledged with (so in order and gapless),
// balances and the hash chain chained; the ids seen are exactly the ids
// posted; a batch retried after the kill
// is appended once, whether or not its first try had committed (then the
// retry answers duplicates at the stored sequences). The killed node,
// started again, serves the same feeds.
func TestMultiProcess_ThreeNodesKillOneMidIngest(t *testing.T) {
	began := time.Now()
	dsn := pgtest.Start(t)
	const (
		adminSecret = "multi-process-admin-secret"
		writers     = 8
		batches     = 40 // per writer: about 3,400 entries in all
		victim      = 1
	)
	flags := []string{"--admin-secret", adminSecret, "--nodes", "3", "--rate-limit=-1", "--token-rate-limit=-1"}
	var nodes []*mpNode
	for i := range 3 {
		nodes = append(nodes, mpSpawn(t, fmt.Sprintf("node%d", i), t.TempDir(), dsn, flags...))
	}
	mpAwait(t, nodes...)
	t.Logf("3 nodes listening after %v", time.Since(began).Round(time.Millisecond))

	// Two read clients: a client may hold 4 long polls at once per node,
	// and each reader holds 4; the readers of node0 and node1 share one,
	// node2's (where node1's moves) has the other. Tokens come from node2:
	// every node's token works on all.
	admin, secrets := mpSetup(t, nodes[0], adminSecret, map[string]string{
		"302321": `{"currency":"NOK","timeZone":"Europe/Oslo"}`,
		"302322": `{"currency":"DKK","timeZone":"UTC","cutoff":"04:00"}`,
	}, "erp-a", "erp-b")
	tokA, tokB := mpToken(t, nodes[2], "erp-a", secrets["erp-a"]), mpToken(t, nodes[2], "erp-b", secrets["erp-b"])
	tokens := []string{tokA, tokA, tokB}
	g := &mpIngest{
		t: t, nodes: nodes, admin: admin, seed: uint64(time.Now().UnixNano()),
		posted: map[mpStream][]*mpBatch{}, bySeq: map[mpStream]map[int64]*importEntry{}, seqOf: map[string]int64{},
	}
	t.Logf("seed %d", g.seed)
	// A test ending early (Fatal) stops its writers and readers first.
	var readers, wg sync.WaitGroup
	t.Cleanup(func() {
		g.quit.Store(true)
		readers.Wait()
		wg.Wait()
	})
	t.Logf("ledgers, clients and tokens made after %v", time.Since(began).Round(time.Millisecond))
	var streams []mpStream
	for _, l := range []string{"302321", "302322"} {
		for _, topic := range []string{"funds", "fees"} {
			s := mpStream{l, topic}
			streams = append(streams, s)
			g.bySeq[s] = map[int64]*importEntry{}
		}
	}

	// Readers first: one per node, each walking all four feeds.
	done := make(chan struct{})
	target := map[mpStream]int64{}
	walks := map[[2]int]*mpWalk{}
	var rmu sync.Mutex
	for r := range nodes {
		for si, s := range streams {
			readers.Go(func() {
				w := g.read(tokens[r], r, s, uint64(10+r*10+si), done, &target)
				rmu.Lock()
				walks[[2]int{r, si}] = w
				rmu.Unlock()
			})
		}
	}

	// Writers; the node is killed once a third of the batches is acknowledged.
	var acked atomic.Int32
	killNow := make(chan struct{})
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			g.write(w, batches, streams, func() {
				if acked.Add(1) == writers*batches/3 {
					close(killNow)
				}
			})
		})
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()
	select {
	case <-killNow:
		g.dead.Store(victim + 1)
		nodes[victim].kill(t)
		t.Logf("%s killed with SIGKILL after %d acknowledged batches, %v in", nodes[victim].name, acked.Load(), time.Since(start).Round(time.Millisecond))
	case <-writersDone:
		t.Fatal("the writers ended before a third of their batches was acknowledged")
	}
	<-writersDone
	ingest := time.Since(start)

	// What the writers were told: per stream, sequences 1..N, each once.
	total := 0
	for _, s := range streams {
		n := int64(len(g.bySeq[s]))
		for seq := int64(1); seq <= n; seq++ {
			if g.bySeq[s][seq] == nil {
				t.Errorf("%s: sequences acknowledged up to %d, but not %d", s, n, seq)
			}
		}
		ids := 0
		for _, b := range g.posted[s] {
			ids += len(b.entries)
		}
		if int64(ids) != n {
			t.Errorf("%s: %d entries posted, %d sequences acknowledged", s, ids, n)
		}
		target[s] = n
		total += int(n)
	}
	close(done)
	wrote := time.Since(began)
	readers.Wait()
	t.Logf("writers done after %v, readers %v later", wrote.Round(time.Millisecond), (time.Since(began) - wrote).Round(time.Millisecond))
	t.Logf("%d writers: %d entries in %d batches in %v; %d batches cut by the kill and retried (%d of them had committed), %d posted again on purpose",
		writers, total, writers*batches, ingest.Round(time.Millisecond), g.cut, g.cutDone, g.reposts)
	if g.cut == 0 {
		t.Logf("no batch was in flight on %s when it was killed", nodes[victim].name)
	}

	failovers := 0
	for r := range nodes {
		for si, s := range streams {
			w := walks[[2]int{r, si}]
			failovers += w.failovers
			if w.err != nil {
				t.Errorf("reader on %s, %s: %v", nodes[r].name, s, w.err)
				continue
			}
			checkWalk(t, fmt.Sprintf("reader on %s, %s", nodes[r].name, s), w, g.bySeq[s], g.posted[s])
			if r == victim && w.failovers == 0 {
				t.Errorf("reader on %s, %s: never moved to another node", nodes[r].name, s)
			}
		}
	}
	t.Logf("readers moved to another node %d times; all done after %v", failovers, time.Since(began).Round(time.Millisecond))
	if t.Failed() {
		return
	}

	// The hash chain the readers recomputed is the server's: its manifest's
	// digest of the open date (the last entry's hash) and last sequence.
	for si, s := range streams {
		w := walks[[2]int{0, si}]
		var m struct {
			Items []client.DateManifest `json:"items"`
		}
		if err := json.Unmarshal(mpMust(t, 200, "GET", nodes[2].url("/report/v2/ledgers/"+s.ledger+"/dates"), tokens[0], nil), &m); err != nil || len(m.Items) == 0 {
			t.Fatalf("manifest of %s: %v %+v", s.ledger, err, m)
		}
		last := m.Items[len(m.Items)-1].Topics[s.topic]
		if last.Digest != w.chain.Digest || int64(last.LastSequence) != w.chain.Sequence && last.EntryCount > 0 {
			t.Errorf("%s: manifest's open date ends at sequence %d digest %s; the readers recomputed %d %s",
				s, last.LastSequence, last.Digest, w.chain.Sequence, w.chain.Digest)
		}
	}

	// The killed node, started again on its directory, serves the same
	// feeds, and continues a cursor of another node at the end.
	killed := nodes[victim]
	again := mpSpawn(t, killed.name+"-restarted", killed.dataDir, dsn, flags...)
	mpAwait(t, again)
	nodes[victim] = again // g.nodes too
	g.dead.Store(0)
	for si, s := range streams {
		w := g.read(tokens[victim], victim, s, uint64(100+si), closedChan(), &target)
		if w.err != nil {
			t.Errorf("restarted %s, %s: %v", again.name, s, w.err)
			continue
		}
		if w.failovers != 0 {
			t.Errorf("restarted %s, %s: %d calls without an answer", again.name, s, w.failovers)
		}
		ref := walks[[2]int{0, si}]
		if !slices.EqualFunc(w.entries, ref.entries, func(a, b client.Entry) bool { return mpSameEntry(&a, &b) }) || w.chain != ref.chain {
			t.Errorf("restarted %s, %s: a walk differs from node0's before the kill", again.name, s)
		}
		var p client.FeedPage
		if err := json.Unmarshal(mpMust(t, 200, "GET", again.url("/report/v2/ledgers/"+s.ledger+"/"+s.topic+"/feed?cursor="+walks[[2]int{2, si}].cursor), tokens[2], nil), &p); err != nil ||
			len(p.Items) != 0 || !p.TryLater {
			t.Errorf("restarted %s, %s: node2's last cursor answered %d items, tryLater %v (%v)", again.name, s, len(p.Items), p.TryLater, err)
		}
	}

	t.Logf("restarted node checked after %v", time.Since(began).Round(time.Millisecond))
	killed.checkNoRace(t)
	for _, n := range nodes {
		n.stop(t)
	}
}

func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func mpSameEntry(a, b *client.Entry) bool {
	return a.PSPReference == b.PSPReference && a.Time.Equal(b.Time) && a.LedgerDate == b.LedgerDate && a.EntryType == b.EntryType &&
		a.Reference == b.Reference && a.Currency == b.Currency && a.Amount == b.Amount &&
		a.BalanceBefore == b.BalanceBefore && a.BalanceAfter == b.BalanceAfter
}

// checkWalk compares what a reader saw with what the writers were told:
// entry k of the walk is the one acknowledged at sequence k+1, with its
// amount; every posted id is there; the last balance is the sum.
func checkWalk(t *testing.T, who string, w *mpWalk, bySeq map[int64]*importEntry, posted []*mpBatch) {
	t.Helper()
	if len(w.entries) != len(bySeq) {
		t.Errorf("%s: %d entries, %d acknowledged", who, len(w.entries), len(bySeq))
	}
	seen := map[string]int{}
	var sum int64
	for k := range w.entries {
		e := &w.entries[k]
		seen[e.Reference]++
		if seen[e.Reference] == 2 {
			t.Errorf("%s: %s seen twice (again at sequence %d)", who, e.Reference, k+1)
		}
		want := bySeq[int64(k+1)]
		if want == nil || e.Reference != want.Reference || e.PSPReference != want.PSPReference || e.Amount != want.Amount || e.EntryType != want.EntryType {
			t.Errorf("%s: sequence %d is %s %s %d, acknowledged %+v", who, k+1, e.Reference, e.EntryType, e.Amount, want)
			return
		}
		sum += e.Amount
	}
	for _, b := range posted {
		for _, e := range b.entries {
			if seen[e.Reference] == 0 {
				t.Errorf("%s: posted entry %s never seen", who, e.EntryID)
			}
		}
	}
	if w.chain.Balance != sum {
		t.Errorf("%s: last balance %d, sum of the amounts posted %d", who, w.chain.Balance, sum)
	}
}

// mpSealedLog matches the sealer's log line for the dates it stored.
var mpSealedLog = regexp.MustCompile(`msg="sealed ledger dates".* ledger=(\S+) from=(\S+) to=(\S+) dates=(\d+)`)

// Two ledgerfeed processes on one PostgreSQL database close the same dates
// at the same moment, in every way the API offers: both by the admin close
// call, one by the close call and one by an append naming the next date,
// and both by appends naming the next date. Each closed date must end up
// with exactly one closing in the database, exactly one seal (stored by
// one of the two sealers, the other refused), and both nodes answer the
// same manifest, seal and date reports; the seals verify from the date
// reports and the JWKS alone, as a partner checks them.
func TestMultiProcess_TwoNodesCloseOneDate(t *testing.T) {
	dsn := pgtest.Start(t)
	const adminSecret = "two-process-admin-secret"
	flags := []string{"--admin-secret", adminSecret, "--nodes", "2", "--rate-limit=-1", "--token-rate-limit=-1"}
	a := mpSpawn(t, "nodeA", t.TempDir(), dsn, flags...)
	b := mpSpawn(t, "nodeB", t.TempDir(), dsn, flags...)
	mpAwait(t, a, b)
	nodes := []*mpNode{a, b}

	// Dates in UTC with a cutoff 20 minutes ago: date D began then, and
	// D-1 ended then, so both may be named and neither closes by itself
	// (end + 1 h) while the test runs.
	cut := time.Now().UTC().Add(-20 * time.Minute).Truncate(time.Minute)
	dayD, err := ledger.ParseDate(cut.Format(time.DateOnly))
	if err != nil {
		t.Fatal(err)
	}
	prev, today, next := (dayD - 1).String(), dayD.String(), (dayD + 1).String()
	ledgerJSON := fmt.Sprintf(`{"currency":"NOK","timeZone":"UTC","cutoff":%q}`, cut.Format("15:04"))
	// How each ledger's D-1 closes: by node A, by node B.
	modes := map[string][2]string{"302331": {"close", "close"}, "302332": {"close", "append"}, "302333": {"append", "append"}}
	ledgers := map[string]string{}
	for id := range modes {
		ledgers[id] = ledgerJSON
	}
	admin, secrets := mpSetup(t, a, adminSecret, ledgers, "erp")
	readSecret := secrets["erp"]
	reader := mpToken(t, b, "erp", readSecret)
	ids := slices.Sorted(mapKeys(modes))
	// The manifest of a ledger: its only dates, D-1 to D+1.
	manifestPath := func(id string) string {
		return "/report/v2/ledgers/" + id + "/dates?fromLedgerDate=" + prev + "&toLedgerDate=" + next
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	// posted[ledger/topic/date] = references in sequence order.
	posted := map[string][]string{}
	appendOn := func(n *mpNode, id, topic, date, prefix string, count int) (int, []byte) {
		es := mpEntries(rng, topic, prefix, date, count)
		code, body, err := mpDo("POST", n.url("/admin/v1/ledgers/"+id+"/"+topic+"/entries"), admin, newMPBatch(id, topic, es).body)
		if err != nil {
			t.Errorf("append on %s: %v", n.name, err)
			return 0, nil
		}
		if code == 200 {
			d := date
			if d == "" {
				d = today
			}
			for _, e := range es {
				posted[id+"/"+topic+"/"+d] = append(posted[id+"/"+topic+"/"+d], e.Reference)
			}
		}
		return code, body
	}
	for _, id := range ids {
		for i, topic := range []string{"funds", "fees", "funds"} {
			if code, body := appendOn(nodes[i%2], id, topic, prev, fmt.Sprintf("pre-%s-%d", topic, i), 3+i); code != 200 {
				t.Fatalf("append on %s: %d %s", prev, code, body)
			}
		}
	}

	// race releases every call at once, one goroutine each, and returns
	// the answers in order.
	type call struct {
		n    *mpNode
		do   func(n *mpNode) (int, []byte)
		code int
		body []byte
	}
	race := func(calls []*call) {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, c := range calls {
			wg.Go(func() {
				<-start
				c.code, c.body = c.do(c.n)
			})
		}
		close(start)
		wg.Wait()
	}
	closeCall := func(id, date string) func(n *mpNode) (int, []byte) {
		return func(n *mpNode) (int, []byte) {
			code, body, err := mpDo("POST", n.url("/admin/v1/ledgers/"+id+"/dates/"+date+"/close"), admin, nil)
			if err != nil {
				t.Errorf("close on %s: %v", n.name, err)
			}
			return code, body
		}
	}
	// The racing appends of round 1, by ledger: first sequence, references.
	type racedBatch struct {
		first int64
		refs  []string
	}
	var mu sync.Mutex
	raced := map[string][]racedBatch{}

	// Round 1: D-1 closes, as modes say, all six calls at once.
	var calls []*call
	for _, id := range ids {
		for i, how := range modes[id] {
			c := &call{n: nodes[i]}
			if how == "close" {
				c.do = closeCall(id, prev)
			} else {
				es := mpEntries(rng, "funds", fmt.Sprintf("next-%s", nodes[i].name), today, 2)
				body := newMPBatch(id, "funds", es).body
				c.do = func(n *mpNode) (int, []byte) {
					code, ans, err := mpDo("POST", n.url("/admin/v1/ledgers/"+id+"/funds/entries"), admin, body)
					if err != nil {
						t.Errorf("append on %s: %v", n.name, err)
					}
					if code == 200 {
						var ack mpAck
						if err := json.Unmarshal(ans, &ack); err != nil {
							t.Errorf("append answer %s: %v", ans, err)
						}
						mu.Lock()
						raced[id] = append(raced[id], racedBatch{ack.FirstSequence, []string{es[0].Reference, es[1].Reference}})
						mu.Unlock()
					}
					return code, ans
				}
			}
			calls = append(calls, c)
		}
	}
	race(calls)
	for i, c := range calls {
		id := ids[i/2]
		switch modes[id][i%2] {
		case "close":
			if c.code != 200 || !bytes.Contains(c.body, []byte(`"closedThrough":"`+prev+`"`)) || !bytes.Contains(c.body, []byte(`"openLedgerDate":"`+today+`"`)) {
				t.Errorf("%s: close %s on %s: %d %s, want closedThrough %s, openLedgerDate %s", id, prev, c.n.name, c.code, c.body, prev, today)
			}
		default:
			if c.code != 200 || !bytes.Contains(c.body, []byte(`"appended":2`)) {
				t.Errorf("%s: append naming %s on %s: %d %s, want 2 appended", id, today, c.n.name, c.code, c.body)
			}
		}
	}
	// The racing appends' entries, in sequence order, begin date D's funds.
	for _, id := range ids {
		slices.SortFunc(raced[id], func(x, y racedBatch) int { return int(x.first - y.first) })
		for _, r := range raced[id] {
			posted[id+"/funds/"+today] = append(posted[id+"/funds/"+today], r.refs...)
		}
	}

	// Round 2: entries on D (by their time), then both nodes close D at once.
	for _, id := range ids {
		for i, topic := range []string{"fees", "funds"} {
			if code, body := appendOn(nodes[i%2], id, topic, "", fmt.Sprintf("day-%s-%d", topic, i), 4); code != 200 {
				t.Fatalf("append on %s: %d %s", today, code, body)
			}
		}
	}
	calls = nil
	for _, id := range ids {
		for _, n := range nodes {
			calls = append(calls, &call{n: n, do: closeCall(id, today)})
		}
	}
	race(calls)
	for i, c := range calls {
		if c.code != 200 || !bytes.Contains(c.body, []byte(`"closedThrough":"`+today+`"`)) || !bytes.Contains(c.body, []byte(`"openLedgerDate":"`+next+`"`)) {
			t.Errorf("%s: close %s on %s: %d %s", ids[i/2], today, c.n.name, c.code, c.body)
		}
	}
	if t.Failed() {
		return
	}

	// Right away both nodes are asked for every manifest at once: a manifest
	// seals the closed dates not sealed yet, so the two nodes' manifest
	// calls race each other and both nodes' background sealers. Both must
	// answer the same, with a seal on every closed date.
	first := map[string][2][]byte{}
	calls = nil
	for _, id := range ids {
		for _, n := range nodes {
			calls = append(calls, &call{n: n, do: func(n *mpNode) (int, []byte) {
				code, body, err := mpDo("GET", n.url(manifestPath(id)), reader, nil)
				if err != nil {
					t.Errorf("manifest on %s: %v", n.name, err)
				}
				return code, body
			}})
		}
	}
	race(calls)
	for i, id := range ids {
		ca, cb := calls[2*i], calls[2*i+1]
		if ca.code != 200 || cb.code != 200 || !bytes.Equal(ca.body, cb.body) {
			t.Errorf("%s: manifests right after the closes differ:\n%s: %d %s\n%s: %d %s", id, a.name, ca.code, ca.body, b.name, cb.code, cb.body)
			continue
		}
		first[id] = [2][]byte{ca.body, cb.body}
		var m struct {
			Items []client.DateManifest `json:"items"`
		}
		if err := json.Unmarshal(ca.body, &m); err != nil || len(m.Items) != 3 {
			t.Errorf("%s: manifest %s: %v", id, ca.body, err)
			continue
		}
		for _, item := range m.Items[:2] {
			if item.State != "closed" || item.Seal == "" {
				t.Errorf("%s %s: right after the closes the manifest says %s, seal %q", id, item.LedgerDate, item.State, item.Seal)
			}
		}
	}
	if t.Failed() {
		return
	}

	// The database: one closing per date, and (once the sealers ran) one
	// seal per date.
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	closedAt := map[string]time.Time{} // ledger/date → when it closed
	for _, id := range ids {
		rows, err := db.Query(ctx, "SELECT c.open_date, c.closed_us FROM closes c JOIN ledgers l ON l.num = c.num WHERE l.id = $1 ORDER BY c.open_date", id)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var open int32
			var us int64
			if err := rows.Scan(&open, &us); err != nil {
				t.Fatal(err)
			}
			got = append(got, ledger.Date(open).String())
			closedAt[id+"/"+(ledger.Date(open)-1).String()] = time.UnixMicro(us).UTC()
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, []string{today, next}) {
			t.Errorf("%s: closings in the database moved the open date to %v, want exactly [%s %s]", id, got, today, next)
		}
	}
	sealOf := map[string]string{} // ledger/date → the stored seal
	deadline := time.Now().Add(30 * time.Second)
	for len(sealOf) < 2*len(ids) {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the database holds seals for %v only; want %s and %s of %v", slices.Sorted(mapKeys(sealOf)), prev, today, ids)
		}
		time.Sleep(50 * time.Millisecond)
		rows, err := db.Query(ctx, "SELECT l.id, s.ledger_date, s.body->>'seal' FROM seals s JOIN ledgers l ON l.num = s.num")
		if err != nil {
			t.Fatal(err)
		}
		clear(sealOf)
		for rows.Next() {
			var id, seal string
			var d int32
			if err := rows.Scan(&id, &d, &seal); err != nil {
				t.Fatal(err)
			}
			key := id + "/" + ledger.Date(d).String()
			if _, dup := sealOf[key]; dup {
				t.Fatalf("two seals for %s", key)
			}
			sealOf[key] = seal
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}

	// Each date was sealed by exactly one of the two sealers (the other's
	// PutSeals is refused): the nodes' logs name each date once.
	sealedBy := map[string][]string{}
	for _, n := range nodes {
		for _, m := range mpSealedLog.FindAllStringSubmatch(n.stderr.String(), -1) {
			from, err1 := ledger.ParseDate(m[2])
			to, err2 := ledger.ParseDate(m[3])
			if err1 != nil || err2 != nil {
				t.Fatalf("sealer log line %q", m[0])
			}
			for d := from; d <= to; d++ {
				sealedBy[m[1]+"/"+d.String()] = append(sealedBy[m[1]+"/"+d.String()], n.name)
			}
		}
	}
	var conflicts []string
	for _, n := range nodes {
		conflicts = append(conflicts, fmt.Sprintf("%s %d", n.name, strings.Count(n.stderr.String(), "seal ledger dates")))
	}
	t.Logf("dates sealed by: %v; sealing refused (logged errors) per node: %v", sealedBy, conflicts)
	for key := range sealOf {
		if len(sealedBy[key]) != 1 {
			t.Errorf("%s sealed by %v, want exactly one node (log lines %q)", key, sealedBy[key], mpSealedLog.String())
		}
	}
	if len(sealedBy) != len(sealOf) {
		t.Errorf("the sealers logged %v, the database holds %v", slices.Sorted(mapKeys(sealedBy)), slices.Sorted(mapKeys(sealOf)))
	}

	// Both nodes answer the same manifest, with the stored seals and close
	// times, and the same date reports; a partner on either verifies the
	// seals from the reports and the JWKS.
	for _, id := range ids {
		q := manifestPath(id)
		bodies := [2][]byte{mpMust(t, 200, "GET", a.url(q), reader, nil), mpMust(t, 200, "GET", b.url(q), reader, nil)}
		for i, n := range nodes {
			if !bytes.Equal(bodies[i], first[id][0]) {
				t.Errorf("%s: the manifest on %s now differs from %s's first:\n%s\n%s", id, n.name, a.name, bodies[i], first[id][0])
			}
		}
		var m struct {
			Items []client.DateManifest `json:"items"`
		}
		if err := json.Unmarshal(bodies[0], &m); err != nil || len(m.Items) != 3 {
			t.Fatalf("%s: manifest %s: %v", id, bodies[0], err)
		}
		for _, item := range m.Items[:2] {
			key := id + "/" + item.LedgerDate
			if item.State != "closed" || item.Seal != sealOf[key] || item.ClosedTime == nil || !item.ClosedTime.Equal(closedAt[key]) {
				t.Errorf("%s: manifest says %s, seal %.20s…, closed %v; stored seal %.20s…, closed %v",
					key, item.State, item.Seal, item.ClosedTime, sealOf[key], closedAt[key])
			}
		}
		if m.Items[2].LedgerDate != next || m.Items[2].State != "open" {
			t.Errorf("%s: last manifest item %s %s, want %s open", id, m.Items[2].LedgerDate, m.Items[2].State, next)
		}
		for _, date := range []string{prev, today} {
			for _, topic := range []string{"funds", "fees"} {
				path := "/report/v2/ledgers/" + id + "/" + topic + "/dates/" + date + "?pageSize=1000"
				ra, rb := mpMust(t, 200, "GET", a.url(path), reader, nil), mpMust(t, 200, "GET", b.url(path), reader, nil)
				if !bytes.Equal(ra, rb) {
					t.Errorf("%s %s %s: date reports differ:\n%s: %s\n%s: %s", id, topic, date, a.name, ra, b.name, rb)
				}
				var p client.DatePage
				if err := json.Unmarshal(ra, &p); err != nil || p.TryLater || p.HasMore {
					t.Errorf("%s %s %s: report %s", id, topic, date, ra)
				}
				var refs []string
				for _, e := range p.Items {
					refs = append(refs, e.Reference)
				}
				if want := posted[id+"/"+topic+"/"+date]; !slices.Equal(refs, want) {
					t.Errorf("%s %s %s: report lists %v, posted %v", id, topic, date, refs, want)
				}
			}
		}
		for _, n := range nodes {
			c, err := client.New(client.Config{BaseURL: "http://" + n.httpAddr, ClientID: "erp", ClientSecret: readSecret})
			if err != nil {
				t.Fatal(err)
			}
			v := c.NewVerifier()
			chains := map[string]*client.TopicChain{}
			var last *client.Sealed
			for _, item := range m.Items[:2] {
				entries := map[string][]client.Entry{}
				for _, topic := range client.Topics {
					for e, err := range c.DateReport(ctx, id, topic, item.LedgerDate) {
						if err != nil {
							t.Fatalf("%s: date report on %s: %v", id, n.name, err)
						}
						entries[topic] = append(entries[topic], e)
					}
				}
				if last, err = v.VerifyDate(ctx, id, item, last, chains, entries); err != nil {
					t.Errorf("%s %s: a partner on %s: %v", id, item.LedgerDate, n.name, err)
					break
				}
			}
		}
	}
	for _, n := range nodes {
		n.stop(t)
	}
}

// The same manifest must answer the same bytes every time, on every node,
// as the date reports do: partners and tools compare and hash answers.
// TestMultiProcess_TwoNodesCloseOneDate found map fields ("topics") written
// in Go's random map order; they are now written in key order.
func TestManifestJSON_SameBytesEveryTime(t *testing.T) {
	const adminSecret = "manifest-bytes-admin-secret"
	s := startServe(t, t.TempDir(), "--admin-secret", adminSecret, "--rate-limit=-1", "--token-rate-limit=-1")
	base := "http://" + s.httpAddr
	_, admin := saToken(t, s.httpAddr, "admin", adminSecret)
	if code, body := saDo(t, "PUT", base+"/admin/v1/ledgers/302321", admin, `{"currency":"NOK","timeZone":"UTC"}`); code != 201 {
		t.Fatalf("put ledger: %d %s", code, body)
	}
	code, body := saDo(t, "POST", base+"/admin/v1/clients", admin, `{"clientId":"erp","scopes":["read"],"grants":[{"ledgerId":"302321"}]}`)
	var cc struct {
		ClientSecret string `json:"clientSecret"`
	}
	if code != 201 || json.Unmarshal([]byte(body), &cc) != nil {
		t.Fatalf("create client: %d %s", code, body)
	}
	at := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)
	for _, topic := range []string{"funds", "fees"} {
		entry := fmt.Sprintf(`{"entries":[{"entryId":"e1","pspReference":"p1","time":%q,"entryType":"capture","reference":"r1","amount":100}]}`, at)
		if code, body := saDo(t, "POST", base+"/admin/v1/ledgers/302321/"+topic+"/entries", admin, entry); code != 200 {
			t.Fatalf("append: %d %s", code, body)
		}
	}
	_, reader := saToken(t, s.httpAddr, "erp", cc.ClientSecret)
	day := at[:len(time.DateOnly)]
	var first string
	for i := range 20 {
		code, body := saDo(t, "GET", base+"/report/v2/ledgers/302321/dates?fromLedgerDate="+day+"&toLedgerDate="+day, reader, "")
		if code != 200 {
			t.Fatalf("manifest: %d %s", code, body)
		}
		if i == 0 {
			first = body
		} else if body != first {
			t.Fatalf("the same manifest answered different bytes:\n%s\n%s", first, body)
		}
	}
}
