package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/client"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/server"
)

// env is a real ledgerfeed server on 127.0.0.1 over a store in a temp dir,
// with a read client "partner" granted the ledgers of grants.
type env struct {
	st       *ledger.Store
	auth     *auth.Service
	base     string // http://host:port
	grpcAddr string
	secret   string // partner's
}

func newEnv(t testing.TB, grants ...string) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(st, auth.Config{DataDir: dir, TokenRatePerMinute: -1, RatePerSecond: -1})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Auth: a, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
		a.Close()
		st.Close()
	})
	e := &env{st: st, auth: a, base: "http://" + srv.HTTPAddr().String(), grpcAddr: srv.GRPCAddr().String()}
	var gs []ledger.Grant
	for _, id := range grants {
		gs = append(gs, ledger.Grant{LedgerID: id})
	}
	if _, e.secret, err = a.CreateClient(context.Background(), "partner", []string{ledger.ScopeRead}, gs); err != nil {
		t.Fatal(err)
	}
	return e
}

// client returns an SDK client of partner against base (the server, or a
// proxy in front of it), with short backoffs.
func (e *env) client(t testing.TB, base string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{BaseURL: base, ClientID: "partner", ClientSecret: e.secret,
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ledger makes ledger id (NOK, Europe/Oslo) with entries on both topics
// over days dates up to today, perDay funds entries a date (and half as
// many fees), closes all but the last date, and returns the stored entries
// by topic.
func (e *env) ledger(t testing.TB, id string, days, perDay int) map[string][]ledger.Entry {
	t.Helper()
	ctx := context.Background()
	l := ledger.Ledger{ID: id, Currency: "NOK", TimeZone: "Europe/Oslo",
		PayoutBankAccount: ledger.Account{Scheme: "BBAN:NO", ID: "12345678903"},
		Owner:             ledger.Account{Scheme: "business:NO:ORG", ID: "987654321"}}
	if _, _, err := e.st.PutLedger(ctx, l); err != nil {
		t.Fatal(err)
	}
	// Dates run up to today, which stays open; entry times are in the past.
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	h := "NO:123455"
	for d := range days {
		day := now.AddDate(0, 0, d+1-days)
		date, _ := ledger.ParseDate(day.In(oslo).Format("2006-01-02"))
		var funds, fees []ledger.EntryInput
		for i := range perDay {
			at := day.Add(time.Duration(i-perDay) * time.Millisecond).Add(-123 * time.Microsecond)
			in := ledger.EntryInput{EntryID: fmt.Sprintf("f%d-%d", d, i), PSPReference: fmt.Sprint(1000000 + d*1000 + i),
				Time: at, LedgerDate: date, EntryType: "capture", Reference: fmt.Sprintf("order-%d-%d", d, i),
				Amount: int64(100 + 7*i + d), RecipientHandle: &h}
			if i%5 == 4 {
				in.EntryType, in.Amount, in.RecipientHandle = "refund", -int64(50+i), nil
			}
			funds = append(funds, in)
			if i%2 == 0 {
				fees = append(fees, ledger.EntryInput{EntryID: fmt.Sprintf("c%d-%d", d, i), PSPReference: in.PSPReference,
					Time: at, LedgerDate: date, EntryType: "capture-fee", Reference: in.Reference, Amount: -int64(3 + i%4), RecipientHandle: &h})
			}
		}
		if _, err := e.st.Append(ctx, id, ledger.TopicFunds, funds); err != nil {
			t.Fatal(err)
		}
		if len(fees) > 0 && d%3 != 1 { // some dates have no fees
			if _, err := e.st.Append(ctx, id, ledger.TopicFees, fees); err != nil {
				t.Fatal(err)
			}
		}
		if d < days-1 {
			if _, err := e.st.CloseDate(ctx, id, date); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := map[string][]ledger.Entry{}
	for _, topic := range ledger.Topics {
		es, err := e.st.Entries(id, topic, 1, 1<<30, ledger.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out[string(topic)] = es
	}
	return out
}

// sameEntry reports whether an SDK entry is the stored entry s.
func sameEntry(c client.Entry, s ledger.Entry) bool {
	rh := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	return c.PSPReference == s.PSPReference && c.Time.Equal(s.Time) && c.LedgerDate == s.LedgerDate.String() &&
		c.EntryType == s.EntryType && c.Reference == s.Reference && c.Currency == s.Currency &&
		c.Amount == s.Amount && c.BalanceBefore == s.BalanceBefore && c.BalanceAfter == s.BalanceAfter &&
		rh(c.RecipientHandle) == rh(s.RecipientHandle)
}
