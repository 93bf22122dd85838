package storetest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// The crash test appends batches from several goroutines (CrashWriters),
// crashes the store under them (Storage.Crash) at a random moment, opens it
// again and checks it against what the writers reported; then it resends
// every batch started so far. Writers report one line each:
//
//	ready        the store is open
//	start N      batch N is about to be passed to Append
//	ack N        Append of batch N returned success (it is durable)
//	error N ...  Append of batch N failed (expected once the crash began)
//	fail ...     something the writer cannot explain; the test fails
//
// A store that must be killed with its process (bbolt) runs the writers in
// a child process: this test binary again, in a test that calls CrashChild,
// killed by KillChild.
const (
	crashChildEnv = "LEDGERFEED_CRASH_CHILD" // data dir; set only in the child
	crashFirstEnv = "LEDGERFEED_CRASH_FIRST" // first batch number of the child
	crashSeedEnv  = "LEDGERFEED_CRASH_SEED"  // reruns a failed run's crash schedule
	crashWorkers  = 4
)

var (
	crashBase    = time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	crashLedgers = []string{"700001", "700002"}
)

// CrashNow is the clock of every store the crash test opens.
func CrashNow() time.Time { return time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC) }

// CrashPlan is one crash: the writers' first batch number, and when to
// crash: Delay after the writers' store said it is open, or, with
// FromStart, Delay after the run began (so that a crash may hit Open).
type CrashPlan struct {
	First     int
	Delay     time.Duration
	FromStart bool
}

// CrashReport is what the writers of one crashed run reported.
type CrashReport struct {
	Ready           bool
	Started, Acked  []int
	Errors, Failure []string // error lines; fail lines and other surprises
}

// CrashLog collects the writers' lines into a CrashReport; safe for
// concurrent use.
type CrashLog struct {
	mu  sync.Mutex
	rep CrashReport
}

// Say records one line.
func (l *CrashLog) Say(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	verb, arg, _ := strings.Cut(line, " ")
	switch verb {
	case "ready":
		l.rep.Ready = true
	case "start", "ack":
		n, err := strconv.Atoi(arg)
		if err != nil {
			l.rep.Failure = append(l.rep.Failure, "unparsable line "+strconv.Quote(line))
			return
		}
		if verb == "start" {
			l.rep.Started = append(l.rep.Started, n)
		} else {
			l.rep.Acked = append(l.rep.Acked, n)
		}
	case "error":
		l.rep.Errors = append(l.rep.Errors, line)
	default:
		l.rep.Failure = append(l.rep.Failure, line)
	}
}

// Report returns what was said so far.
func (l *CrashLog) Report() CrashReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rep
	r.Started, r.Acked = slices.Clone(r.Started), slices.Clone(r.Acked)
	r.Errors, r.Failure = slices.Clone(r.Errors), slices.Clone(r.Failure)
	return r
}

// CrashWriters appends the crash test's batches to s from batch first on,
// from several goroutines, until ctx ends (a call under way is not
// cancelled: a cancelled call could still commit after the run ended); each
// goroutine stops at its first failed Append. It reports through say (not "ready": the caller
// says that once s is open).
func CrashWriters(ctx context.Context, s ledger.Entries, first int, say func(line string)) {
	var next atomic.Int64
	next.Store(int64(first))
	var wg sync.WaitGroup
	for range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := int(next.Add(1) - 1)
				b := crashBatchOf(n)
				say(fmt.Sprintf("start %d", n))
				res, err := s.Append(context.Background(), b.ledger, b.topic, b.entries)
				if err != nil {
					say(fmt.Sprintf("error %d %v", n, err))
					return
				}
				if res.Appended != len(b.entries) || res.Duplicates != 0 {
					say(fmt.Sprintf("fail batch %d is new but got %v", n, res))
					return
				}
				say(fmt.Sprintf("ack %d", n))
			}
		}()
	}
	wg.Wait()
}

// crashBatch is batch n: its target and its entries, a pure function of n.
type crashBatch struct {
	n       int
	ledger  string
	topic   ledger.Topic
	entries []ledger.EntryInput
}

func crashBatchOf(n int) crashBatch {
	r := rand.New(rand.NewPCG(uint64(n), 0xC4A5))
	b := crashBatch{n: n, ledger: crashLedgers[n%2], topic: ledger.Topics[(n/2)%2]}
	types := map[ledger.Topic][]string{
		ledger.TopicFunds: {"capture", "refund", "correction", "top-up"},
		ledger.TopicFees:  {"capture-fee", "service-fee", "fees-invoiced"},
	}[b.topic]
	b.entries = make([]ledger.EntryInput, 1+r.IntN(50))
	for i := range b.entries {
		e := ledger.EntryInput{
			EntryID:      fmt.Sprintf("b%d-%d", n, i),
			PSPReference: fmt.Sprintf("psp-%d-%d-%d", n, i, r.IntN(1e6)),
			Time:         crashBase.Add(time.Duration(n)*time.Second + time.Duration(i)*time.Millisecond),
			EntryType:    types[r.IntN(len(types))],
			Reference:    fmt.Sprintf("order-%d", n/3),
			Amount:       r.Int64N(2_000_000) - 600_000,
		}
		if e.Amount == 0 {
			e.Amount = 1
		}
		if r.IntN(3) > 0 {
			e.RecipientHandle = strp(fmt.Sprintf("NO:%d", 1000+r.IntN(5)))
		}
		if r.IntN(4) == 0 {
			e.Name = fmt.Sprintf("Kunde %d-%d", n, i)
			e.PhoneNumber = fmt.Sprintf("+47 9%07d", r.IntN(1e7))
			if r.IntN(2) == 0 {
				e.Message = fmt.Sprintf("takk for %d", n)
			}
		}
		b.entries[i] = e
	}
	return b
}

// crashLine writes one line to stdout in one write(2): lines of concurrent
// goroutines never interleave, and a line is in the pipe before the next
// statement runs, so it survives a SIGKILL right after.
func crashLine(line string) {
	os.Stdout.Write([]byte(line + "\n"))
}

// CrashChild is the body of the child process of KillChild: call it from
// its own test (named in KillChild's call), which it skips unless it runs
// as that child. open opens the store in dir with CrashNow as its clock.
// The child appends with CrashWriters until it is killed.
func CrashChild(t *testing.T, open func(dir string) (ledger.Backend, error)) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("helper process of the conformance crash test")
	}
	first, err := strconv.Atoi(os.Getenv(crashFirstEnv))
	if err != nil {
		crashLine(fmt.Sprintf("fail bad %s: %v", crashFirstEnv, err))
		os.Exit(2)
	}
	s, err := open(dir)
	if err != nil {
		crashLine(fmt.Sprintf("fail open: %v", err))
		os.Exit(2)
	}
	crashLine("ready")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // the parent kills it long before
	defer cancel()
	CrashWriters(ctx, s, first, crashLine)
	s.Close()
	crashLine("fail not killed within 30 s, or an append failed")
	os.Exit(3)
}

// KillChild runs this test binary again as a child process running test
// child (which calls CrashChild) on the store in dir, and SIGKILLs it as
// plan says. It returns what the child said before it died.
func KillChild(t *testing.T, child, dir string, plan CrashPlan) CrashReport {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashFirstEnv+"="+strconv.Itoa(plan.First))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := make(chan struct{})
	var timer *time.Timer
	arm := func() {
		timer = time.AfterFunc(plan.Delay, func() {
			cmd.Process.Kill() // SIGKILL
			close(killed)
		})
	}
	if plan.FromStart {
		arm()
	}
	guard := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() }) // a child that never gets ready
	defer guard.Stop()
	var log CrashLog
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" && !plan.FromStart {
			arm()
		}
		log.Say(line)
	}
	waitErr := cmd.Wait()
	rep := log.Report()
	fails := append(rep.Failure, rep.Errors...) // a killed child's Append never returns an error
	switch {
	case timer == nil:
		fails = append(fails, fmt.Sprintf("child never said ready: %v", waitErr))
	case timer.Stop():
		fails = append(fails, fmt.Sprintf("child exited before it was killed: %v", waitErr))
	default:
		<-killed
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && !(ws.Signaled() && ws.Signal() == syscall.SIGKILL) && len(fails) == 0 {
		fails = append(fails, fmt.Sprintf("child ended with %v, not by SIGKILL", cmd.ProcessState))
	}
	if len(fails) > 0 {
		t.Fatalf("child process: %s\nstderr:\n%s", strings.Join(fails, "\n"), stderr.Bytes())
	}
	return rep
}

// testCrash crashes a store that is appending batches concurrently at
// random moments, and checks after each crash that every acknowledged batch
// is there exactly once with its content, no batch is there in part, every
// log is gapless and chained (and verifies, for a store with files), and
// resending every batch started so far posts nothing twice.
func testCrash(t *testing.T, h Harness) {
	if h.CrashCycles == 0 {
		t.Skip("the harness cannot crash this store")
	}
	if testing.Short() {
		t.Skip("crashes the store")
	}
	cycles := h.CrashCycles
	if soak() {
		cycles *= 10
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashSeedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s: %v", crashSeedEnv, err)
		}
	}
	t.Logf("seed %d (rerun with %s=%d)", seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	st := h.New(t)
	opts := Options{Now: CrashNow}
	s := st.Open(t, opts)
	mustPutLedger(t, s, crashLedgers[0], "NOK", "Europe/Oslo", "")
	mustPutLedger(t, s, crashLedgers[1], "SEK", "Europe/Stockholm", "04:00")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	started := map[int]bool{} // every batch any child started
	acked := map[int]bool{}   // every batch any child acknowledged
	next := 0                 // first batch number of the next child
	var totalAcked, totalLost, totalLanded int
	for c := range cycles {
		// One crash in four is timed from the run's start, to hit Open too.
		plan := CrashPlan{First: next, Delay: time.Duration(20+rng.IntN(281)) * time.Millisecond, FromStart: rng.IntN(4) == 0}
		rep := st.Crash(t, plan)
		for _, n := range rep.Started {
			if n < next || started[n] {
				t.Fatalf("cycle %d: child started batch %d twice or out of range", c, n)
			}
			started[n] = true
		}
		for _, n := range rep.Acked {
			if !started[n] || acked[n] {
				t.Fatalf("cycle %d: batch %d acknowledged but not started, or twice", c, n)
			}
			acked[n] = true
		}
		for _, n := range rep.Started {
			next = max(next, n+1)
		}

		s := st.Open(t, opts)
		present := crashCheckStore(t, c, s, started, acked)
		landed := 0
		for _, n := range rep.Started {
			if present[n] != nil && !acked[n] {
				landed++
			}
		}
		totalAcked += len(rep.Acked)
		totalLanded += landed
		totalLost += len(rep.Started) - len(rep.Acked) - landed
		crashResend(t, c, s, started, acked, present)
		if err := s.Close(); err != nil {
			t.Fatalf("cycle %d: close: %v", c, err)
		}
		if testing.Verbose() {
			t.Logf("cycle %d: crashed %v after start (from start: %v; was ready: %v): %d started, %d acked, %d unacked but durable",
				c, plan.Delay, plan.FromStart, rep.Ready, len(rep.Started), len(rep.Acked), landed)
		}
	}
	t.Logf("%d cycles, %d batches: %d acked, %d durable before their ack, %d never committed",
		cycles, len(started), totalAcked, totalLanded, totalLost)
	if totalAcked == 0 {
		t.Fatalf("no writer acknowledged any batch: the crashes came too early to test anything")
	}
}

// crashCheckStore checks the reopened store and returns the started batches
// it holds (in full; a partial batch fails the test), each with the sequence
// of each of its entries.
func crashCheckStore(t *testing.T, cycle int, s ledger.Backend, started, acked map[int]bool) map[int][]uint64 {
	t.Helper()
	ctx := context.Background()
	fatalf := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("cycle %d: "+format, append([]any{cycle}, args...)...)
	}
	got := map[int]map[int]ledger.Entry{} // batch → entry index → stored entry
	var total uint64
	for _, id := range crashLedgers {
		for _, topic := range ledger.Topics {
			var seq uint64
			var balance int64
			var hash [32]byte
			for {
				es, err := s.Entries(id, topic, seq+1, 5000, ledger.ReadOptions{GDPR: true})
				if err != nil {
					fatalf("read %s/%s from %d: %v", id, topic, seq+1, err)
				}
				if len(es) == 0 {
					break
				}
				for _, e := range es {
					if e.Sequence != seq+1 {
						fatalf("%s/%s: sequence %d follows %d", id, topic, e.Sequence, seq)
					}
					if e.BalanceBefore != balance {
						fatalf("%s/%s sequence %d: balanceBefore %d, want %d", id, topic, e.Sequence, e.BalanceBefore, balance)
					}
					if ledger.ChainHash(hash, &e) != e.Hash {
						fatalf("%s/%s sequence %d: the hash does not chain", id, topic, e.Sequence)
					}
					seq, balance, hash = e.Sequence, e.BalanceAfter, e.Hash
					var n, i int
					if _, err := fmt.Sscanf(e.EntryID, "b%d-%d", &n, &i); err != nil {
						fatalf("%s/%s sequence %d: unexpected entryId %q", id, topic, e.Sequence, e.EntryID)
					}
					if !started[n] {
						fatalf("%s/%s sequence %d: entry %s of batch %d, which no writer started", id, topic, e.Sequence, e.EntryID, n)
					}
					if got[n] == nil {
						got[n] = map[int]ledger.Entry{}
					}
					if prev, dup := got[n][i]; dup {
						fatalf("entry %s is stored twice: %s/%s sequences %d and %d", e.EntryID, id, topic, prev.Sequence, e.Sequence)
					}
					got[n][i] = e
					total++
				}
			}
			h, err := s.Head(id, topic)
			if err != nil {
				fatalf("head %s/%s: %v", id, topic, err)
			}
			if h.Sequence != seq || h.Balance != balance {
				fatalf("head %s/%s: sequence %d balance %d, the entries end at %d with %d", id, topic, h.Sequence, h.Balance, seq, balance)
			}
		}
	}
	present := map[int][]uint64{}
	for n := range started {
		b := crashBatchOf(n)
		stored := got[n]
		switch {
		case len(stored) == 0 && acked[n]:
			fatalf("acknowledged batch %d (%d entries to %s/%s) is missing", n, len(b.entries), b.ledger, b.topic)
		case len(stored) == 0:
			continue
		case len(stored) != len(b.entries):
			fatalf("batch %d is there in part: %d of its %d entries (acknowledged: %v)", n, len(stored), len(b.entries), acked[n])
		}
		seqs := make([]uint64, len(b.entries))
		for i, in := range b.entries {
			e, ok := stored[i]
			if !ok {
				fatalf("batch %d: entry %s missing while %d others are there", n, in.EntryID, len(stored)-1)
			}
			seqs[i] = e.Sequence
			if diff := crashDiff(b, in, e); diff != "" {
				fatalf("entry %s (%s/%s sequence %d): %s", in.EntryID, e.LedgerID, e.Topic, e.Sequence, diff)
			}
		}
		present[n] = seqs
	}
	f, ok := s.(ledger.Files)
	if !ok {
		return present // the logs were read in full above, chains and all
	}
	rep, err := f.Verify(ctx, nil)
	if err != nil {
		fatalf("verify: %v", err)
	}
	if rep.Entries != total || rep.Ledgers != len(crashLedgers) {
		fatalf("verify saw %d ledgers and %d entries, the logs hold %d ledgers and %d entries", rep.Ledgers, rep.Entries, len(crashLedgers), total)
	}
	return present
}

// crashDiff describes how stored entry e differs from input in of batch b.
func crashDiff(b crashBatch, in ledger.EntryInput, e ledger.Entry) string {
	var wantGDPR *ledger.GDPR
	if in.Name != "" || in.PhoneNumber != "" || in.Message != "" {
		wantGDPR = &ledger.GDPR{Name: in.Name, MaskedPhoneNo: "xxxx " + in.PhoneNumber[len(in.PhoneNumber)-4:], Message: in.Message}
	}
	switch {
	case e.LedgerID != b.ledger || e.Topic != b.topic:
		return fmt.Sprintf("stored in %s/%s, posted to %s/%s", e.LedgerID, e.Topic, b.ledger, b.topic)
	case e.PSPReference != in.PSPReference:
		return fmt.Sprintf("pspReference %q, posted %q", e.PSPReference, in.PSPReference)
	case !e.Time.Equal(in.Time):
		return fmt.Sprintf("time %v, posted %v", e.Time, in.Time)
	case e.EntryType != in.EntryType:
		return fmt.Sprintf("entryType %q, posted %q", e.EntryType, in.EntryType)
	case e.Reference != in.Reference:
		return fmt.Sprintf("reference %q, posted %q", e.Reference, in.Reference)
	case e.Amount != in.Amount:
		return fmt.Sprintf("amount %d, posted %d", e.Amount, in.Amount)
	case e.BalanceAfter != e.BalanceBefore+e.Amount:
		return fmt.Sprintf("balanceAfter %d is not %d + %d", e.BalanceAfter, e.BalanceBefore, e.Amount)
	case (e.RecipientHandle == nil) != (in.RecipientHandle == nil) || e.RecipientHandle != nil && *e.RecipientHandle != *in.RecipientHandle:
		return fmt.Sprintf("recipientHandle %v, posted %v", e.RecipientHandle, in.RecipientHandle)
	case e.HasGDPR != (wantGDPR != nil):
		return fmt.Sprintf("HasGDPR %v, posted GDPR fields: %v", e.HasGDPR, wantGDPR != nil)
	case (e.GDPR == nil) != (wantGDPR == nil) || e.GDPR != nil && *e.GDPR != *wantGDPR:
		return fmt.Sprintf("GDPR fields %+v, want %+v", e.GDPR, wantGDPR)
	}
	return ""
}

// crashResend posts every batch started so far again, from several
// goroutines: a stored batch must come back as all duplicates with the
// sequences it is stored at, one the store does not hold must be appended in
// full.
func crashResend(t *testing.T, cycle int, s ledger.Entries, started, acked map[int]bool, present map[int][]uint64) {
	t.Helper()
	work := make(chan int)
	errs := make(chan string, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				b := crashBatchOf(n)
				res, err := s.Append(context.Background(), b.ledger, b.topic, b.entries)
				seqs, stored := present[n]
				var msg string
				switch {
				case err != nil:
					msg = fmt.Sprintf("resend of batch %d: %v", n, err)
				case stored && (res.Appended != 0 || res.Duplicates != len(b.entries)):
					msg = fmt.Sprintf("resend of stored batch %d (acknowledged: %v, %d entries): %v, want all duplicates", n, acked[n], len(b.entries), res)
				case stored && !slices.Equal(res.Sequences, seqs):
					msg = fmt.Sprintf("resend of stored batch %d answers sequences %v, it is stored at %v", n, res.Sequences, seqs)
				case !stored && (res.Appended != len(b.entries) || res.Duplicates != 0):
					msg = fmt.Sprintf("resend of lost unacknowledged batch %d (%d entries): %v, want all appended", n, len(b.entries), res)
				}
				if msg != "" {
					select {
					case errs <- msg:
					default:
					}
				}
			}
		}()
	}
	for n := range started {
		work <- n
	}
	close(work)
	wg.Wait()
	select {
	case msg := <-errs:
		t.Fatalf("cycle %d: %s", cycle, msg)
	default:
	}
}
