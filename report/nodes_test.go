package report

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/pgstore"
)

// Several nodes on one PostgreSQL database: each node is its own pgstore
// handle (its own pool and LISTEN connection) and its own Dir, as two
// ledgerfeed processes would have.

// pgNode opens a store handle on dsn, closed at cleanup.
func pgNode(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	st, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// pgSeeded starts a database with ledger 302321 (3 closed dates, 2×40
// entries a date but the empty third) and client acme, and returns its DSN.
func pgSeeded(t *testing.T) string {
	t.Helper()
	dsn := pgtest.Start(t)
	st := pgNode(t, dsn)
	seedLedger(t, st, "302321", "NOK", 3, 40)
	grantClient(t, st, "acme", "302321")
	return dsn
}

// runCounter counts the runs of each file (beforeWrite calls) over all
// nodes.
type runCounter struct {
	mu   sync.Mutex
	runs map[string][]string // file id → node ids, one per run
}

func (c *runCounter) hook(node *string) func(context.Context, *File) {
	return func(_ context.Context, f *File) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.runs == nil {
			c.runs = map[string][]string{}
		}
		c.runs[f.ID] = append(c.runs[f.ID], *node)
	}
}

func (c *runCounter) of(id string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.runs[id])
}

// blobNames lists the report blobs in the store.
func blobNames(t *testing.T, b ledger.Blobs) []string {
	t.Helper()
	var out []string
	if err := b.ListBlobs(context.Background(), BlobPrefix, func(bi ledger.BlobInfo) error {
		out = append(out, bi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// fast makes a node poll often, so tests wait little.
func fast(c *Config) { c.PollEvery = 20 * time.Millisecond }

// N jobs requested on two nodes run once each, whichever node runs them;
// a file made on one node downloads byte for byte (and by Range) from the
// other; the retention sweep deletes records and blobs.
func TestNodes_EachJobOnce_DownloadAnywhere(t *testing.T) {
	dsn := pgSeeded(t)
	var clock atomicTime
	clock.set(time.Now())
	var runs runCounter
	var svc [2]*Service
	var ids [2]string
	for i := range svc {
		st := pgNode(t, dsn)
		svc[i] = startService(t, st, filepath.Join(t.TempDir(), "reports"), func(c *Config) {
			fast(c)
			c.Now, c.MaxActive = clock.get, 50
			c.beforeWrite = runs.hook(&ids[i])
		})
		ids[i] = svc[i].NodeID()
	}
	if ids[0] == ids[1] {
		t.Fatalf("two nodes with one id %s", ids[0])
	}
	ctx := context.Background()
	var files []File
	for i := range 8 {
		f, err := svc[i%2].Request(ctx, "acme", Request{Type: TypeEntries, LedgerID: "302321", From: day0 + ledger.Date(i%3), To: day0 + 2, Format: FormatCSV})
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	byNode := map[string]int{}
	for _, f := range files {
		got := waitDone(t, svc[1], "acme", f.ID)
		if r := runs.of(f.ID); got.Status != StatusSuccessful || got.Attempts != 1 || len(r) != 1 || r[0] != got.Owner {
			t.Errorf("file %s: %s, attempts %d, owner %s, runs on %v; want successful, run once", f.ID, got.Status, got.Attempts, got.Owner, r)
		}
		byNode[got.Owner]++
	}
	t.Logf("files made per node: %v", byNode)

	// Each file, from the node that did not make it, equals what writeTo
	// makes from the ledger now; a Range request answers those bytes.
	for _, f := range files[:3] {
		f = waitDone(t, svc[0], "acme", f.ID)
		other := svc[0]
		if f.Owner == ids[0] {
			other = svc[1]
		}
		l, err := other.st.GetLedger(f.LedgerID)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if _, err := other.writeTo(ctx, &f, l, 2, &want); err != nil {
			t.Fatal(err)
		}
		fs := []File{f}
		if err := other.WithDownloads(ctx, fs); err != nil {
			t.Fatal(err)
		}
		d, err := other.OpenDownload(ctx, "acme", fs[0].Token)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(d)
		d.Close()
		if err != nil || !bytes.Equal(got, want.Bytes()) || int64(len(got)) != f.Size {
			t.Fatalf("file %s from the other node: %d bytes (%v), want %d, record says %d", f.ID, len(got), err, want.Len(), f.Size)
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d, err := other.OpenDownload(r.Context(), "acme", fs[0].Token)
			if err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			defer d.Close()
			http.ServeContent(w, r, "", d.Info.CompletedAt, d)
		}))
		lo, hi := len(got)/3, min(len(got)-1, len(got)/3+700)
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", lo, hi))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		part, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, want.Bytes()[lo:hi+1]) {
			t.Errorf("range %d-%d: %d, %d bytes", lo, hi, resp.StatusCode, len(part))
		}
	}
	if n := len(blobNames(t, svc[0].st.(ledger.Blobs))); n != len(files) {
		t.Errorf("%d blobs for %d files", n, len(files))
	}

	// Retention: one node's sweep deletes every record and blob.
	clock.set(clock.get().Add(DefaultRetention + time.Hour))
	if err := svc[1].Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _, err := svc[0].List("acme", ListFilter{CreatedAfter: time.Unix(0, 0)}); err != nil || n != 0 {
		t.Errorf("%d files left after the sweep (%v)", n, err)
	}
	if left := blobNames(t, svc[0].st.(ledger.Blobs)); len(left) != 0 {
		t.Errorf("blobs left after the sweep: %v", left)
	}
}

// blockFirst returns a beforeWrite hook that counts runs and holds the
// first run until release is closed or its context ends, and a channel
// closed when that run started.
func blockFirst(runs *runCounter, node *string, release <-chan struct{}) (func(context.Context, *File), <-chan struct{}) {
	started := make(chan struct{})
	var once sync.Once
	count := runs.hook(node)
	return func(ctx context.Context, f *File) {
		count(ctx, f)
		first := false
		once.Do(func() { first = true; close(started) })
		if first {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	}, started
}

// A node (re)started while another runs a job, its lease renewed, does not
// run it too.
func TestNodes_RestartDoesNotRerunLiveJob(t *testing.T) {
	dsn := pgSeeded(t)
	var runs runCounter
	release := make(chan struct{})
	idA := ""
	hook, started := blockFirst(&runs, &idA, release)
	a := startService(t, pgNode(t, dsn), filepath.Join(t.TempDir(), "reports"), func(c *Config) {
		fast(c)
		c.Lease, c.beforeWrite = 600*time.Millisecond, hook
	})
	idA = a.NodeID()
	f, err := a.Request(context.Background(), "acme", Request{Type: TypeEntries, LedgerID: "302321", From: day0, To: day0 + 2, Format: FormatCSV})
	if err != nil {
		t.Fatal(err)
	}
	<-started

	dirB := filepath.Join(t.TempDir(), "reports")
	idB := ""
	stB := pgNode(t, dsn)
	for life := range 2 { // B starts, stops and starts again
		ctx, cancel := context.WithCancel(context.Background())
		b, err := New(Config{Store: stB, Dir: dirB, PollEvery: 20 * time.Millisecond, beforeWrite: runs.hook(&idB)})
		if err != nil {
			t.Fatal(err)
		}
		idB = b.NodeID()
		done := make(chan struct{})
		go func() { b.Run(ctx); close(done) }()
		// Polls over more than one of A's leases (the second life): A's
		// renewals keep it.
		for b.polls.Load() < int64(10+life*40) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
	}
	close(release)
	got := waitDone(t, a, "acme", f.ID)
	if r := runs.of(f.ID); got.Status != StatusSuccessful || got.Attempts != 1 || got.Owner != idA || len(r) != 1 {
		t.Errorf("%s, attempts %d, owner %s (A %s, B %s), runs %v; want run once, by A", got.Status, got.Attempts, got.Owner, idA, idB, r)
	}
}

// A job whose node died (its lease ran out) is taken over by another node
// and finished once.
func TestNodes_DeadOwnerTakenOver(t *testing.T) {
	dsn := pgSeeded(t)
	var runs runCounter
	idA, idB := "", ""
	hook, started := blockFirst(&runs, &idA, nil) // held until A stops
	ctxA, stopA := context.WithCancel(context.Background())
	a, err := New(Config{Store: pgNode(t, dsn), Dir: filepath.Join(t.TempDir(), "reports"), PollEvery: 20 * time.Millisecond,
		Lease: 500 * time.Millisecond, beforeWrite: hook})
	if err != nil {
		t.Fatal(err)
	}
	idA = a.NodeID()
	doneA := make(chan struct{})
	go func() { a.Run(ctxA); close(doneA) }()
	f, err := a.Request(context.Background(), "acme", Request{Type: TypeEntries, LedgerID: "302321", From: day0, To: day0 + 2, Format: FormatCSV})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	stopA() // node A dies mid-job: its record stays running under its lease
	<-doneA
	if got, _ := a.Get("acme", f.ID); got.Status != StatusRunning || got.Owner != idA {
		t.Fatalf("after A died: %s owned by %s", got.Status, got.Owner)
	}
	b := startService(t, pgNode(t, dsn), filepath.Join(t.TempDir(), "reports"), func(c *Config) {
		fast(c)
		c.beforeWrite = runs.hook(&idB)
	})
	idB = b.NodeID()
	got := waitDone(t, b, "acme", f.ID)
	if r := runs.of(f.ID); got.Status != StatusSuccessful || got.Attempts != 2 || got.Owner != idB || !slices.Equal(r, []string{idA, idB}) {
		t.Errorf("%s, attempts %d, owner %s, runs %v; want taken over by B (%s) after A (%s)", got.Status, got.Attempts, got.Owner, r, idB, idA)
	}
	if names := blobNames(t, b.st.(ledger.Blobs)); !slices.Equal(names, []string{BlobPrefix + got.Object}) {
		t.Errorf("blobs %v, want only %s", names, got.Object)
	}
}

// A worker that finishes after its job was taken over loses: the record
// keeps the new owner's result, and the late worker's blob is deleted.
func TestNodes_LateFinisherLoses(t *testing.T) {
	dsn := pgSeeded(t)
	var runs runCounter
	idA, idB := "", ""
	release := make(chan struct{})
	hook, started := blockFirst(&runs, &idA, release)
	// A's lease is long, so it does not renew (and notice) during the
	// test, but A's clock runs two hours behind, so to B that lease ran out.
	a := startService(t, pgNode(t, dsn), filepath.Join(t.TempDir(), "reports"), func(c *Config) {
		fast(c)
		c.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
		c.Lease, c.beforeWrite = time.Hour, hook
	})
	idA = a.NodeID()
	f, err := a.Request(context.Background(), "acme", Request{Type: TypeEntries, LedgerID: "302321", From: day0, To: day0 + 2, Format: FormatCSV})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	b := startService(t, pgNode(t, dsn), filepath.Join(t.TempDir(), "reports"), func(c *Config) {
		fast(c)
		c.beforeWrite = runs.hook(&idB)
	})
	idB = b.NodeID()
	won := waitDone(t, b, "acme", f.ID)
	if won.Owner != idB || won.Attempts != 2 {
		t.Fatalf("B's result: owner %s, attempts %d", won.Owner, won.Attempts)
	}
	close(release) // A wakes up and finishes its file
	for {
		if _, busy := a.running.Load(f.key()); !busy {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	got, err := a.Get("acme", f.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r := runs.of(f.ID); got.Owner != idB || got.Attempts != 2 || got.Object != won.Object || got.CompletedAt != won.CompletedAt || len(r) != 2 {
		t.Errorf("after A finished late: owner %s, attempts %d, object %s, runs %v; want B's result (%s) kept", got.Owner, got.Attempts, got.Object, r, won.Object)
	}
	if names := blobNames(t, a.st.(ledger.Blobs)); !slices.Equal(names, []string{BlobPrefix + won.Object}) {
		t.Errorf("blobs %v, want only B's %s", names, won.Object)
	}
}

// One schedule, two nodes: each period's file is made once.
func TestNodes_ScheduleOneFilePerPeriod(t *testing.T) {
	dsn := pgSeeded(t)
	var svc [2]*Service
	for i := range svc {
		svc[i] = startService(t, pgNode(t, dsn), filepath.Join(t.TempDir(), "reports"), func(c *Config) {
			fast(c)
			c.ScheduleEvery = 20 * time.Millisecond
		})
	}
	ctx := context.Background()
	if _, _, err := svc[0].PutSchedule(ctx, Schedule{ID: "daily", LedgerID: "302321", ClientID: "acme", Frequency: Daily, Type: TypeBalances, Format: FormatCSV}); err != nil {
		t.Fatal(err)
	}
	st := svc[1].st.(*pgstore.Store)
	const days = 6
	for d := range days {
		if _, err := st.CloseDate(ctx, "302321", day0+3+ledger.Date(d)); err != nil {
			t.Fatal(err)
		}
		// Both nodes also run the schedules at once, besides their loops.
		var wg sync.WaitGroup
		for _, s := range svc {
			wg.Go(func() {
				if err := s.runSchedules(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	var all []File
	for len(all) < days {
		_, all, _ = svc[0].List("acme", ListFilter{Source: SourceAuto, CreatedAfter: time.Unix(0, 0), Limit: 100})
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // more loop rounds on both nodes
	_, all, err := svc[0].List("acme", ListFilter{Source: SourceAuto, CreatedAfter: time.Unix(0, 0), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	per := map[ledger.Date]int{}
	for _, f := range all {
		per[f.From]++
		if f.From != f.To {
			t.Errorf("a daily file over %s–%s", f.From, f.To)
		}
	}
	for d := range days {
		if n := per[day0+3+ledger.Date(d)]; n != 1 {
			t.Errorf("date %s: %d files, want 1", day0+3+ledger.Date(d), n)
		}
	}
	if len(all) != days {
		t.Errorf("%d files for %d closed periods: %v", len(all), days, per)
	}
	for _, f := range all {
		if got := waitDone(t, svc[1], "acme", f.ID); got.Status != StatusSuccessful || got.Attempts != 1 {
			t.Errorf("scheduled file %s: %s after %d attempts (%s)", f.From, got.Status, got.Attempts, got.Error)
		}
	}
}
