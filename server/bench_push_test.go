package server

// Append to delivery: BenchmarkReportPushLatency. The followers run either
// in a child process pinned to core 1 while the server runs on core 0 with
// GOMAXPROCS=1 ("split", as shared/BENCHMARKING.md asks for HTTP load: a
// partner's client does not share the server's cores), or in the
// benchmark's own process beside the server ("inproc": both on both cores,
// each follower's client work queued beside the server's deliveries).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ledgerfeed/ledgerfeed/bench/reference"
	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// BenchmarkReportPushLatency: SubscribeFeed subscribers and REST long
// pollers (wait=30s) follow the funds feed of one ledger from "now"; one
// appender appends single entries at about rbPushRate/s for LEDGERFEED_BENCH_CHUNK
// × (pairs+1) (the first chunk's samples dropped). For every entry each
// follower receives: append→receive (from the Append call's start) and
// commit→receive (from its return; negative when the follower was woken
// before Append returned, counted as 0). Times are CLOCK_MONOTONIC, which
// both processes of a split run read alike. Goals: commit→receive p99 < 2 ms,
// append→receive p99 < 10 ms. last_commit_* is, per commit, its last
// receipt. A split run alternates its chunks with a bare reference
// (reference.LongPoll: net/http long polls woken by a channel, as many
// followers), reported as ref_*, and ratio_p99 (ours ÷ the reference's
// commit→receive p99, median of the pairs) says how far above this
// machine's floor, as loaded at the time, the server is. ref_wake_* is the
// floor of waking as many goroutines by a channel close.
//
// Sub-benchmarks are named mode/subscribers+pollers. Modes: split, inproc
// (see above; LEDGERFEED_BENCH_PUSH_MODE=split or inproc runs one). Mixes:
// 16+16 (16 of each kind, 32 followers), 8+8 (16 in all), 16+0 and 0+16 (16
// of one kind); LEDGERFEED_BENCH_PUSH (e.g. "1+0,32+0") replaces the list.
// Long polls go through rbLeanPoller (a load generator's client), or with
// LEDGERFEED_BENCH_PUSH_CLIENT=nethttp through net/http's Client (names
// then end their mode with -nethttp). LEDGERFEED_BENCH_PUSH_PIN=0 leaves a
// split run's server unpinned (both cores, GOMAXPROCS as set).
func BenchmarkReportPushLatency(b *testing.B) {
	mixes := "16+16,8+8,16+0,0+16"
	if v := os.Getenv("LEDGERFEED_BENCH_PUSH"); v != "" {
		mixes = v
	}
	modes := []string{"split", "inproc"}
	if v := os.Getenv("LEDGERFEED_BENCH_PUSH_MODE"); v != "" {
		if !slices.Contains(modes, v) {
			b.Fatalf("LEDGERFEED_BENCH_PUSH_MODE=%q: want split or inproc", v)
		}
		modes = []string{v}
	}
	lean := true
	switch v := os.Getenv("LEDGERFEED_BENCH_PUSH_CLIENT"); v {
	case "", "lean":
	case "nethttp":
		lean = false
	default:
		b.Fatalf("LEDGERFEED_BENCH_PUSH_CLIENT=%q: want lean or nethttp", v)
	}
	for _, mode := range modes {
		for _, mix := range strings.Split(mixes, ",") {
			s, p, ok := strings.Cut(mix, "+")
			subs, err1 := strconv.Atoi(s)
			polls, err2 := strconv.Atoi(p)
			if !ok || err1 != nil || err2 != nil || subs < 0 || polls < 0 || subs+polls == 0 {
				b.Fatalf("LEDGERFEED_BENCH_PUSH=%q: want subscribers+pollers,…", mixes)
			}
			name := mode
			if !lean {
				name += "-nethttp"
			}
			b.Run(name+"/"+mix, func(b *testing.B) { rbPushLatency(b, subs, polls, mode == "split", lean) })
		}
	}
}

const rbPushRate = 50 // appends/s; an fsync-bound Append takes ~5–20 ms here: leave it room

// rbPushPlan is what the followers of one run need; a split run hands it to
// the child process as JSON in rbPushChildEnv.
type rbPushPlan struct {
	Base, GRPC, Token string
	Path              string // the feed's path on Base
	Subs, Polls       int
	First, Total      int    // pspReferences First … First+Total-1 are timed
	Lean              bool   // long polls by rbLeanPoller, not net/http's Client
	Out               string // split: the file the child writes its rbPushResult to
}

// rbRecv is one receipt: the entry's k (its pspReference) and rbNow().
type rbRecv struct {
	K int
	T int64
}

// rbPushResult is every follower's receipts, and in a split run the
// child's CPU.
type rbPushResult struct {
	Sub, Poll [][]rbRecv
	CPUNanos  int64
}

// rbNow is CLOCK_MONOTONIC in ns: one clock for every process on the machine.
func rbNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// rbFollowers runs a plan's followers.
type rbFollowers struct {
	res    rbPushResult
	got    atomic.Int64 // receipts of timed entries, all followers
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error // the first failure while not stopping
	conn   *grpc.ClientConn
	http   *http.Client
}

// rbStartFollowers starts plan's followers and returns once every one of
// them is following (a subscription's header received; a poller's first
// answer, from=now, read), or with the first failure.
func rbStartFollowers(plan rbPushPlan) (*rbFollowers, error) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &rbFollowers{cancel: cancel, res: rbPushResult{Sub: make([][]rbRecv, plan.Subs), Poll: make([][]rbRecv, plan.Polls)}}
	fail := func(err error) {
		if ctx.Err() != nil {
			return
		}
		f.mu.Lock()
		if f.err == nil {
			f.err = err
		}
		f.mu.Unlock()
	}
	note := func(dst *[]rbRecv, psp string, t int64) {
		k, err := strconv.Atoi(psp)
		if err == nil && k >= plan.First && k < plan.First+plan.Total {
			*dst = append(*dst, rbRecv{k, t})
			f.got.Add(1)
		}
	}
	var ready sync.WaitGroup
	if plan.Subs > 0 {
		conn, err := grpc.NewClient(plan.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			cancel()
			return nil, err
		}
		f.conn = conn
	}
	sctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+plan.Token)
	for i := range plan.Subs {
		ready.Add(1)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			rep := v1.NewReportServiceClient(f.conn)
			st, err := rep.SubscribeFeed(sctx, &v1.SubscribeFeedRequest{LedgerId: rbLedger, Topic: "funds", From: "now",
				HeartbeatInterval: durationpb.New(time.Minute)})
			if err == nil {
				_, err = st.Header() // the server has started the subscription
			}
			ready.Done()
			if err != nil {
				fail(fmt.Errorf("subscribe: %w", err))
				return
			}
			for {
				m, err := st.Recv()
				if err != nil {
					fail(fmt.Errorf("subscribe recv: %w", err))
					return
				}
				t := rbNow()
				runtime.Gosched() // see rbPoll
				for _, it := range m.GetPage().GetItems() {
					note(&f.res.Sub[i], it.GetPspReference(), t)
				}
			}
		}()
	}
	f.http = rbClient(2 * max(plan.Polls, 1))
	for i := range plan.Polls {
		ready.Add(1)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			poll := f.stdPoller(ctx, plan)
			if plan.Lean {
				poll = rbLeanPoller(ctx, plan)
			}
			// Long pollers start from the feed's end as it is now (a
			// cursor from one empty poll with from=now), then wait=30s
			// from each answer's cursor.
			q := url.Values{"from": {"now"}}
			isReady := false
			defer func() {
				if !isReady {
					ready.Done()
				}
			}()
			var w rbFeedWire
			for ctx.Err() == nil {
				t, err := poll(q.Encode(), &w)
				if err != nil {
					fail(fmt.Errorf("long poll: %w", err))
					return
				}
				for _, it := range w.Items {
					note(&f.res.Poll[i], it.PSPReference, t)
				}
				q = url.Values{"cursor": {w.Cursor}, "wait": {"30s"}}
				if !isReady {
					isReady = true
					ready.Done()
				}
			}
		}()
	}
	ready.Wait()
	if err := f.failure(); err != nil {
		f.stop()
		return nil, err
	}
	return f, nil
}

func (f *rbFollowers) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// stop ends the followers and waits for them; f.res is theirs to read after.
func (f *rbFollowers) stop() {
	f.cancel()
	f.wg.Wait()
	if f.conn != nil {
		f.conn.Close()
	}
	f.http.CloseIdleConnections()
}

// rbPoll does one GET of the feed with query q, decodes the answer into w
// and returns rbNow() as of the answer's header. Right after taking that
// time a follower yields (runtime.Gosched), so that on the followers' one
// core the other answers that have arrived are stamped before this one is
// decoded and asked again: the receipt times are the server's delivery,
// not the followers' own queue.
type rbPoll func(q string, w *rbFeedWire) (int64, error)

// stdPoller polls through net/http's Client (f.http, shared by the
// pollers): a Transport with its reader and writer goroutines per
// connection, as most partners' programs poll.
func (f *rbFollowers) stdPoller(ctx context.Context, plan rbPushPlan) rbPoll {
	return func(q string, w *rbFeedWire) (int64, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", plan.Base+plan.Path+"?"+q, nil)
		req.Header.Set("Authorization", "Bearer "+plan.Token)
		r, err := f.http.Do(req)
		if err != nil {
			return 0, err
		}
		t := rbNow()
		runtime.Gosched()
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		return t, rbDecodeFeed(r, body, err, w)
	}
}

// rbLeanPoller polls over one connection of its own, as a load generator
// does (wrk): the request's bytes written straight to the socket and the
// answer read with http.ReadResponse in the poller's goroutine, the
// buffers kept. Per answer it costs the client a fraction of what a
// Transport does, so on one core the followers' own work delays the
// receipts far less than with stdPoller.
func rbLeanPoller(ctx context.Context, plan rbPushPlan) rbPoll {
	host := strings.TrimPrefix(plan.Base, "http://")
	var conn net.Conn
	var br *bufio.Reader
	var req, body []byte
	return func(q string, w *rbFeedWire) (int64, error) {
		if conn == nil {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", host)
			if err != nil {
				return 0, err
			}
			context.AfterFunc(ctx, func() { c.Close() })
			conn, br = c, bufio.NewReaderSize(c, 64<<10)
		}
		req = append(req[:0], "GET "...)
		req = append(req, plan.Path...)
		req = append(req, '?')
		req = append(req, q...)
		req = append(req, " HTTP/1.1\r\nHost: "...)
		req = append(req, host...)
		req = append(req, "\r\nAuthorization: Bearer "...)
		req = append(req, plan.Token...)
		req = append(req, "\r\n\r\n"...)
		if _, err := conn.Write(req); err != nil {
			return 0, err
		}
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, err
		}
		t := rbNow()
		runtime.Gosched()
		if r.ContentLength >= 0 {
			body = slices.Grow(body[:0], int(r.ContentLength))[:r.ContentLength]
			_, err = io.ReadFull(r.Body, body)
		} else {
			buf := bytes.NewBuffer(body[:0])
			_, err = buf.ReadFrom(r.Body)
			body = buf.Bytes()
		}
		r.Body.Close()
		return t, rbDecodeFeed(r, body, err, w)
	}
}

// rbDecodeFeed decodes a feed answer read with err into w.
func rbDecodeFeed(r *http.Response, body []byte, err error, w *rbFeedWire) error {
	if err != nil {
		return err
	}
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", r.StatusCode, body)
	}
	*w = rbFeedWire{Items: w.Items[:0]}
	return json.Unmarshal(body, w)
}

// rbPushChildEnv names the variable that makes TestPushFollowersChild the
// followers of a split run.
const rbPushChildEnv = "LEDGERFEED_PUSH_CHILD"

const rbPushReady = "ledgerfeed-push-followers-ready"

// TestPushFollowersChild is the child process of a split push-latency run
// (BenchmarkReportPushLatency re-executes the test binary); it skips
// otherwise. It follows the plan, prints rbPushReady once every follower
// is following, and ends when every timed entry has reached every follower
// or its stdin closes, writing its receipts to plan.Out.
func TestPushFollowersChild(t *testing.T) {
	env := os.Getenv(rbPushChildEnv)
	if env == "" {
		t.Skip("the followers of BenchmarkReportPushLatency's split runs")
	}
	var plan rbPushPlan
	if err := json.Unmarshal([]byte(env), &plan); err != nil {
		t.Fatalf("%s: %v", rbPushChildEnv, err)
	}
	cpu0 := rbCPU()
	f, err := rbStartFollowers(plan)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(rbPushReady)
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	want := int64((plan.Subs + plan.Polls) * plan.Total)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for f.got.Load() < want && f.failure() == nil {
		select {
		case <-eof:
			want = 0
		case <-tick.C:
		}
	}
	cpu := rbCPU() - cpu0
	f.stop()
	if err := f.failure(); err != nil {
		t.Fatal(err)
	}
	f.res.CPUNanos = int64(cpu)
	out, err := json.Marshal(f.res)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plan.Out, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// rbPin runs the process on one CPU from now on: GOMAXPROCS=1 and every
// thread's affinity (threads made later inherit it from the one that makes
// them). The returned func undoes both.
func rbPin(b *testing.B, cpu int) (restore func()) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		b.Fatalf("sched_getaffinity: %v", err)
	}
	var one unix.CPUSet
	one.Set(cpu)
	setAll := func(set *unix.CPUSet) {
		for range 2 { // a thread started during the first pass is caught by the second
			tids, _ := filepath.Glob("/proc/self/task/*")
			for _, p := range tids {
				if tid, err := strconv.Atoi(filepath.Base(p)); err == nil {
					_ = unix.SchedSetaffinity(tid, set) // a thread may have ended
				}
			}
		}
	}
	procs := runtime.GOMAXPROCS(1)
	setAll(&one)
	return func() {
		setAll(&all)
		runtime.GOMAXPROCS(procs)
	}
}

// rbStartChild starts the followers' child process (pinned to core 1 with
// GOMAXPROCS=1 where taskset and a second core exist) and waits until it
// reports them following.
func rbStartChild(b *testing.B, plan rbPushPlan) (cmd *exec.Cmd, stdin io.WriteCloser) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	env, _ := json.Marshal(plan)
	args := []string{self, "-test.run=^TestPushFollowersChild$", "-test.count=1", "-test.timeout=10m"}
	if ts, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 {
		args = append([]string{ts, "-c", "1"}, args...)
	} else {
		b.Logf("followers not pinned (taskset: %v, %d CPUs)", err, runtime.NumCPU())
	}
	cmd = exec.Command(args[0], args[1:]...)
	// GOGC=off (up to GOMEMLIMIT): the followers' own garbage collection,
	// on their one core, would hold up every receipt of the commits it
	// overlaps; a run allocates a few tens of MB there.
	cmd.Env = append(os.Environ(), rbPushChildEnv+"="+string(env), "GOMAXPROCS=1", "GOGC=off", "GOMEMLIMIT=1GiB")
	cmd.Stderr = os.Stderr
	stdin, err = cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var last []string
		for sc.Scan() {
			if sc.Text() == rbPushReady {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
			last = append(last, sc.Text())
		}
		ready <- fmt.Errorf("child ended before its followers were ready:\n%s", strings.Join(last, "\n"))
	}()
	select {
	case err = <-ready:
	case <-time.After(time.Minute):
		err = errors.New("child's followers not ready after 1 minute")
	}
	if err != nil {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.Fatal(err)
	}
	return cmd, stdin
}

func rbPushLatency(b *testing.B, subs, polls int, split, lean bool) {
	cfg := reference.LoadConfig(b)
	e := newRBEnv(b)
	e.add(b, 10)
	if split {
		rbPushSplit(b, cfg, e, subs, polls, lean)
	} else {
		rbPushInproc(b, cfg, e, subs, polls, lean)
	}
	// The bare floor of waking as many goroutines as followers on this
	// machine as it is loaded now (on the server's core in a split run):
	// parked on a channel that a ticker closes at the same rate,
	// close→wake-up. No store, read, encoding or network.
	wake := rbWakeRef(subs+polls, rbPushRate, cfg.Chunk)
	b.ReportMetric(reference.Quantile(wake, 0.5), "ref_wake_p50_ms")
	b.ReportMetric(reference.Quantile(wake, 0.99), "ref_wake_p99_ms")
}

// rbFeedPath is the feed the followers follow.
const rbFeedPath = "/report/v2/ledgers/" + rbLedger + "/funds/feed"

// rbTimes are the appender's (or publisher's) times of one run's entries,
// by k-First, and what the followers received of them.
type rbTimes struct {
	first         int
	start, commit []int64
	res           rbPushResult
	subs, polls   int
	warm          int // the first warm entries are left out
}

// lat is every receipt's append→receive and commit→receive in ms (a
// negative commit→receive, woken before Append returned, counts as 0), the
// last receipt of each commit, and the receipts counted.
func (t *rbTimes) lat(rs [][]rbRecv, last []float64) (fromStart, fromCommit []float64, got int) {
	for _, r := range rs {
		for _, x := range r {
			j := x.K - t.first
			if j < 0 || j >= len(t.commit) {
				continue
			}
			got++
			if j < t.warm {
				continue
			}
			fromStart = append(fromStart, float64(x.T-t.start[j])/1e6)
			c := max(0, float64(x.T-t.commit[j])/1e6)
			fromCommit = append(fromCommit, c)
			last[j] = max(last[j], c)
		}
	}
	return
}

// rbLatency gathers the figures of one or more runs' times.
type rbLatency struct {
	ss, sc, ps, pc, last []float64
}

func (l *rbLatency) add(b *testing.B, t *rbTimes) {
	last := make([]float64, len(t.commit))
	ss, sc, sn := t.lat(t.res.Sub, last)
	ps, pc, pn := t.lat(t.res.Poll, last)
	n := len(t.commit)
	if sn != n*t.subs || pn != n*t.polls {
		b.Errorf("received %d (subscribers) and %d (long polls) of %d entries × %d and × %d", sn, pn, n, t.subs, t.polls)
	}
	l.ss, l.sc = append(l.ss, ss...), append(l.sc, sc...)
	l.ps, l.pc = append(l.ps, ps...), append(l.pc, pc...)
	l.last = append(l.last, last[t.warm:]...)
}

// report reports the figures with prefix before each name.
func (l *rbLatency) report(b *testing.B, prefix string) {
	all := slices.Concat(l.ss, l.ps)
	allC := slices.Concat(l.sc, l.pc)
	for _, m := range []struct {
		name string
		xs   []float64
	}{
		{"sub_append", l.ss}, {"sub_commit", l.sc}, {"poll_append", l.ps}, {"poll_commit", l.pc},
		{"all_append", all}, {"all_commit", allC},
		// Per commit, the last follower's commit→receive: one slow moment
		// of the machine delays all of a commit's receipts, so the
		// receipts' p99 is a few such commits; commits_last_over_2ms_%
		// says how many.
		{"last_commit", l.last},
	} {
		if len(m.xs) == 0 {
			continue
		}
		b.ReportMetric(reference.Quantile(m.xs, 0.5), prefix+m.name+"_p50_ms")
		b.ReportMetric(reference.Quantile(m.xs, 0.99), prefix+m.name+"_p99_ms")
	}
	slow := 0
	for _, v := range l.last {
		if v >= 2 {
			slow++
		}
	}
	if len(l.last) > 0 {
		b.ReportMetric(100*float64(slow)/float64(len(l.last)), prefix+"commits_last_over_2ms_%")
	}
}

// rbAppendLoop appends one entry at each tick of rbPushRate for total
// entries and records their times.
func rbAppendLoop(b *testing.B, e *rbEnv, t *rbTimes) {
	tick := time.NewTicker(time.Second / rbPushRate)
	defer tick.Stop()
	for j := range t.commit {
		<-tick.C
		in := e.entries(1)
		t.start[j] = rbNow()
		if _, err := e.store.Append(context.Background(), rbLedger, ledger.TopicFunds, in); err != nil {
			b.Fatalf("append: %v", err)
		}
		t.commit[j] = rbNow()
	}
}

func newRBTimes(first, total, warm, subs, polls int) *rbTimes {
	return &rbTimes{first: first, start: make([]int64, total), commit: make([]int64, total), warm: warm, subs: subs, polls: polls}
}

// rbPushInproc: the followers in this process, for (pairs+1) chunks, the
// first chunk's entries left out.
func rbPushInproc(b *testing.B, cfg reference.Config, e *rbEnv, subs, polls int, lean bool) {
	total := int(float64(cfg.Pairs+1) * cfg.Chunk.Seconds() * rbPushRate)
	t := newRBTimes(e.n+1, total, int(cfg.Chunk.Seconds()*rbPushRate), subs, polls)
	plan := rbPushPlan{Base: e.base, Path: rbFeedPath, GRPC: e.srv.GRPCAddr().String(), Token: e.token,
		Subs: subs, Polls: polls, First: t.first, Total: total, Lean: lean}
	f, err := rbStartFollowers(plan)
	if err != nil {
		b.Fatal(err)
	}
	defer f.stop()
	time.Sleep(100 * time.Millisecond) // let the followers park
	b.ResetTimer()
	cpu0 := rbCPU()
	rbAppendLoop(b, e, t)
	b.StopTimer()
	want := int64((subs + polls) * total)
	for deadline := time.Now().Add(5 * time.Second); f.got.Load() < want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	// Process CPU (appender, server and followers) per appended entry: the
	// work one commit's delivery costs, steadier than latency.
	b.ReportMetric(float64(rbCPU()-cpu0)/1e3/float64(total), "cpu_us/entry")
	f.stop()
	if err := f.failure(); err != nil {
		b.Fatal(err)
	}
	t.res = f.res
	var l rbLatency
	l.add(b, t)
	l.report(b, "")
	rbReportAppendCall(b, []*rbTimes{t})
}

func rbReportAppendCall(b *testing.B, ts []*rbTimes) {
	var appendMs []float64
	for _, t := range ts {
		for j := t.warm; j < len(t.commit); j++ {
			appendMs = append(appendMs, float64(t.commit[j]-t.start[j])/1e6)
		}
	}
	b.ReportMetric(reference.Quantile(appendMs, 0.5), "append_call_p50_ms")
	b.ReportMetric(reference.Quantile(appendMs, 0.99), "append_call_p99_ms")
}

// rbPushSplit alternates, chunk by chunk (the first pair left out), a
// reference run and a ledgerfeed run, each with the followers in a child
// process of their own (rbStartChild) while this process runs on core 0.
// The reference is bare net/http long polls (reference.LongPoll) with as
// many followers, all long polls, woken by Publish at the same rate; its
// commit is the Publish. ratio_p99 is the median over the pairs of
// ledgerfeed's commit→receive p99 ÷ the reference's in the same pair: how
// far above the bare floor of this machine, as loaded then, ledgerfeed is.
func rbPushSplit(b *testing.B, cfg reference.Config, e *rbEnv, subs, polls int, lean bool) {
	per := int(cfg.Chunk.Seconds() * rbPushRate)
	// The reference's item as long as one of ledgerfeed's.
	r, body := rbGet(b, rbClient(1), rbFeedURL(e.base, url.Values{"pageSize": {"1"}}), e.token)
	var w rbFeedWire
	if err := json.Unmarshal(body, &w); err != nil || len(w.Items) != 1 || r.StatusCode != http.StatusOK {
		b.Fatalf("feed page: %v %s", err, body)
	}
	ref, err := reference.ServeLongPoll("127.0.0.1:0", len(body)-len(`{"items":[],"tryLater":false,"cursor":""}`)-len(w.Cursor))
	if err != nil {
		b.Fatal(err)
	}
	defer ref.Close()
	if os.Getenv("LEDGERFEED_BENCH_PUSH_PIN") != "0" {
		restore := rbPin(b, 0)
		defer restore()
	}
	dir := b.TempDir()
	run := func(plan rbPushPlan, t *rbTimes, publish func(j int)) {
		plan.Out = filepath.Join(dir, "receipts.json")
		child, childIn := rbStartChild(b, plan)
		defer func() { // on a failure before the wait below
			childIn.Close()
			if child.ProcessState == nil {
				_ = child.Process.Kill()
				_ = child.Wait()
			}
		}()
		time.Sleep(100 * time.Millisecond) // let the followers park
		tick := time.NewTicker(time.Second / rbPushRate)
		for j := range t.commit {
			<-tick.C
			publish(j)
		}
		tick.Stop()
		// Let the followers catch up with the last entry.
		done := make(chan error, 1)
		go func() { done <- child.Wait() }()
		select {
		case err = <-done:
		case <-time.After(5 * time.Second): // not all arrived: stop it, count what did
			childIn.Close()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				_ = child.Process.Kill()
				err = errors.Join(errors.New("child did not stop"), <-done)
			}
		}
		if err != nil {
			b.Fatalf("followers' process: %v", err)
		}
		out, err := os.ReadFile(plan.Out)
		if err == nil {
			err = json.Unmarshal(out, &t.res)
		}
		if err != nil {
			b.Fatalf("followers' receipts: %v", err)
		}
	}
	var ours, bare rbLatency
	var ourTimes []*rbTimes
	var ratios, cpu, fcpu []float64
	refK := 0
	b.ResetTimer()
	for i := 0; i <= cfg.Pairs; i++ {
		warm := 0
		if i == 0 {
			warm = per
		}
		// The reference: as many followers, all long polls.
		rt := newRBTimes(refK+1, per, warm, 0, subs+polls)
		run(rbPushPlan{Base: "http://" + ref.Addr(), Path: "/feed", Polls: subs + polls, First: rt.first, Total: per, Lean: lean},
			rt, func(j int) {
				refK++
				rt.start[j] = rbNow()
				ref.Publish(refK)
				rt.commit[j] = rt.start[j]
			})
		// ledgerfeed.
		t := newRBTimes(e.n+1, per, warm, subs, polls)
		cpu0 := rbCPU()
		run(rbPushPlan{Base: e.base, Path: rbFeedPath, GRPC: e.srv.GRPCAddr().String(), Token: e.token,
			Subs: subs, Polls: polls, First: t.first, Total: per, Lean: lean},
			t, func(j int) {
				in := e.entries(1)
				t.start[j] = rbNow()
				if _, err := e.store.Append(context.Background(), rbLedger, ledger.TopicFunds, in); err != nil {
					b.Fatalf("append: %v", err)
				}
				t.commit[j] = rbNow()
			})
		if i == 0 {
			continue
		}
		// Server process CPU (appender and server) and the followers'
		// process CPU per appended entry: the work one commit's delivery
		// costs, steadier than latency.
		cpu = append(cpu, float64(rbCPU()-cpu0)/1e3/float64(per))
		fcpu = append(fcpu, float64(t.res.CPUNanos)/1e3/float64(per))
		var o, r rbLatency
		o.add(b, t)
		r.add(b, rt)
		if p := reference.Quantile(slices.Concat(r.sc, r.pc), 0.99); p > 0 {
			ratios = append(ratios, reference.Quantile(slices.Concat(o.sc, o.pc), 0.99)/p)
		}
		ours.add(b, t)
		bare.add(b, rt)
		ourTimes = append(ourTimes, t)
	}
	b.StopTimer()
	ours.report(b, "")
	bare.report(b, "ref_")
	b.ReportMetric(reference.Quantile(ratios, 0.5), "ratio_p99")
	b.ReportMetric(reference.Quantile(cpu, 0.5), "cpu_us/entry")
	b.ReportMetric(reference.Quantile(fcpu, 0.5), "followers_cpu_us/entry")
	rbReportAppendCall(b, ourTimes)
}

// rbWakeRef parks n goroutines on a shared channel that is closed (and
// replaced) rate times a second for d, and returns every close→wake-up in ms.
func rbWakeRef(n, rate int, d time.Duration) []float64 {
	var mu sync.Mutex
	ch := make(chan struct{})
	var closedAt time.Time
	stop := make(chan struct{})
	lats := make([][]float64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				c := ch
				mu.Unlock()
				select {
				case <-c:
				case <-stop:
					return
				}
				t := time.Now()
				mu.Lock()
				at := closedAt
				mu.Unlock()
				// ch was replaced before c was closed: the next wait
				// takes the new one.
				lats[i] = append(lats[i], float64(t.Sub(at))/1e6)
			}
		}()
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for end := time.Now().Add(d); time.Now().Before(end); {
		<-tick.C
		mu.Lock()
		old := ch
		ch = make(chan struct{})
		closedAt = time.Now()
		close(old)
		mu.Unlock()
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	return slices.Concat(lats...)
}
