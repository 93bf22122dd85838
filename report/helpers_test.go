package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// day0 is the first seeded ledger date.
var day0 = mustDate("2024-03-01")

func mustDate(s string) ledger.Date {
	d, err := ledger.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// openStore opens a store in a temp dir, closed at cleanup.
func openStore(t testing.TB, dir string) *ledger.Store {
	t.Helper()
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// seedStore is what seedLedger writes to: either store.
type seedStore interface {
	ledger.Entries
	ledger.Ledgers
}

// seedLedger makes ledger id in currency with entries on days dates from
// day0 (none on the third date: an empty date), both topics, some with GDPR
// fields and some without a recipient handle, and closes the last date.
func seedLedger(t testing.TB, st seedStore, id, currency string, days, perDay int) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := st.PutLedger(ctx, ledger.Ledger{ID: id, Currency: currency, TimeZone: "Europe/Oslo"}); err != nil {
		t.Fatal(err)
	}
	handle := "api:123456"
	types := []string{"capture", "refund", "capture", "fees-retained"}
	for d := range days {
		if d == 2 {
			continue
		}
		date := day0 + ledger.Date(d)
		y, m, dd := date.Civil()
		base := time.Date(y, m, dd, 9, 0, 0, 123456000, time.UTC)
		for _, topic := range ledger.Topics {
			in := make([]ledger.EntryInput, perDay)
			for i := range in {
				typ := types[i%len(types)]
				amt := int64(1000*(i+1) + 7*d + 1)
				if typ == "refund" || typ == "fees-retained" {
					amt = -amt / 3
				}
				e := ledger.EntryInput{
					EntryID: fmt.Sprintf("%s-%d-%d", topic, d, i), PSPReference: fmt.Sprintf("psp-%d-%d", d, i),
					Time: base.Add(time.Duration(i) * time.Second), LedgerDate: date, EntryType: typ,
					Reference: fmt.Sprintf("order, \"%d\"", i), Amount: amt, RecipientHandle: &handle,
				}
				if topic == ledger.TopicFees {
					e.EntryType = "capture-fee"
					e.Amount = -int64(i + 1)
				}
				if typ == "fees-retained" {
					e.RecipientHandle = nil
				}
				if i%2 == 0 {
					e.Name, e.PhoneNumber, e.Message = "Ola Nordmann", "+4712345678", "takk for maten, \"Ola\""
				}
				in[i] = e
			}
			if _, err := st.Append(ctx, id, topic, in); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := st.CloseDate(ctx, id, day0+ledger.Date(days-1)); err != nil {
		t.Fatal(err)
	}
}

// grantClient makes a client with scope read and a grant (with GDPR
// consent) for each ledger.
func grantClient(t testing.TB, st ledger.Clients, id string, ledgers ...string) {
	t.Helper()
	c := ledger.Client{ID: id, SecretHash: "x", Scopes: []string{ledger.ScopeRead}}
	for _, l := range ledgers {
		c.Grants = append(c.Grants, ledger.Grant{LedgerID: l, GDPRConsent: true})
	}
	if _, err := st.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// startService opens a service on st with files in dir and runs it until
// the test ends.
func startService(t testing.TB, st Store, dir string, tweak func(*Config)) *Service {
	t.Helper()
	cfg := Config{Store: st, Dir: dir}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// waitDone polls a file until it has finished.
func waitDone(t testing.TB, s *Service, client, id string) File {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		f, err := s.Get(client, id)
		if err != nil {
			t.Fatal(err)
		}
		if f.Finished() {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("file %s still %s", id, f.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readCSV reads a finished CSV file whole.
func readCSV(t testing.TB, s *Service, f File) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, f.diskName()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		t.Errorf("CSV does not end in CRLF (RFC 4180)")
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// atomicTime is a settable clock.
type atomicTime struct{ ns atomic.Int64 }

func (a *atomicTime) set(t time.Time) { a.ns.Store(t.UnixNano()) }
func (a *atomicTime) get() time.Time  { return time.Unix(0, a.ns.Load()) }
