package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/client"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/server"
)

// exampleServer runs a real ledgerfeed server on 127.0.0.1 for the
// examples: ledger 302321 (NOK) with four funds entries and one fee over
// two dates, 2026-03-02 (closed) and 2026-03-03 (open), and a client
// "acme-accounting" that may read it. It returns the REST base URL, the
// client's secret and a function that stops everything.
func exampleServer() (baseURL, secret string, stop func()) {
	baseURL, _, secret, stop = exampleServers()
	return baseURL, secret, stop
}

// exampleServers is exampleServer that also returns the gRPC address.
func exampleServers() (baseURL, grpcAddr, secret string, stop func()) {
	dir, err := os.MkdirTemp("", "ledgerfeed-example-")
	if err != nil {
		log.Fatal(err)
	}
	st, err := ledger.Open(dir, ledger.Options{})
	if err != nil {
		log.Fatal(err)
	}
	a, err := auth.New(st, auth.Config{DataDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := st.PutLedger(ctx, ledger.Ledger{ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo",
		PayoutBankAccount: ledger.Account{Scheme: "BBAN:NO", ID: "86011117947"},
		Owner:             ledger.Account{Scheme: "business:NO:ORG", ID: "987654321"}}); err != nil {
		log.Fatal(err)
	}
	h := "NO:123455"
	d1, _ := ledger.ParseDate("2026-03-02")
	d2, _ := ledger.ParseDate("2026-03-03")
	at := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	for _, b := range []struct {
		topic ledger.Topic
		in    []ledger.EntryInput
	}{
		{ledger.TopicFunds, []ledger.EntryInput{
			{EntryID: "1", PSPReference: "3343121302", Time: at("2026-03-02T08:15:00Z"), LedgerDate: d1, EntryType: "capture", Reference: "kiosk-1", Amount: 49900, RecipientHandle: &h},
			{EntryID: "2", PSPReference: "3343121303", Time: at("2026-03-02T10:02:11Z"), LedgerDate: d1, EntryType: "capture", Reference: "kiosk-2", Amount: 15000, RecipientHandle: &h},
			{EntryID: "3", PSPReference: "3343121304", Time: at("2026-03-02T12:30:00Z"), LedgerDate: d1, EntryType: "refund", Reference: "kiosk-2", Amount: -5000, RecipientHandle: &h},
		}},
		{ledger.TopicFees, []ledger.EntryInput{
			{EntryID: "f1", PSPReference: "3343121302", Time: at("2026-03-02T08:15:00Z"), LedgerDate: d1, EntryType: "capture-fee", Reference: "kiosk-1", Amount: -873, RecipientHandle: &h},
		}},
		{ledger.TopicFunds, []ledger.EntryInput{
			{EntryID: "4", PSPReference: "3343121305", Time: at("2026-03-03T09:00:00Z"), LedgerDate: d2, EntryType: "capture", Reference: "kiosk-3", Amount: 2500, RecipientHandle: &h},
		}},
	} {
		if _, err := st.Append(ctx, "302321", b.topic, b.in); err != nil {
			log.Fatal(err)
		}
	}
	_, secret, err = a.CreateClient(ctx, "acme-accounting", []string{ledger.ScopeRead}, []ledger.Grant{{LedgerID: "302321"}})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Auth: a, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { srv.Serve(sctx); close(done) }()
	return "http://" + srv.HTTPAddr().String(), srv.GRPCAddr().String(), secret, func() {
		cancel()
		<-done
		a.Close()
		st.Close()
		os.RemoveAll(dir)
	}
}

// Follow a feed: every entry once, in order. Feed long-polls at the end of
// the log and ends only with its context (or an error); save the Cursor of
// the last entry of a page to resume there later.
func ExampleClient_Feed() {
	baseURL, secret, stop := exampleServer()
	defer stop()

	c, err := client.New(client.Config{BaseURL: baseURL, ClientID: "acme-accounting", ClientSecret: secret})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	for e, err := range c.Feed(ctx, "302321", "funds", "") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %-7s %6d  balance %d\n", e.LedgerDate, e.EntryType, e.Amount, e.BalanceAfter)
		if n++; n == 4 {
			break // or keep going: the next entry arrives when it is posted
		}
	}
	// Output:
	// 2026-03-02 capture  49900  balance 49900
	// 2026-03-02 capture  15000  balance 64900
	// 2026-03-02 refund   -5000  balance 59900
	// 2026-03-03 capture   2500  balance 62400
}

// Read the ledgers, then one date's report. A date that is not closed yet
// ends with ErrDateOpen after what it has so far.
func ExampleClient_DateReport() {
	baseURL, secret, stop := exampleServer()
	defer stop()

	c, err := client.New(client.Config{BaseURL: baseURL, ClientID: "acme-accounting", ClientSecret: secret})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for l, err := range c.Ledgers(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("ledger", l.LedgerID, l.Currency)
	}
	for _, date := range []string{"2026-03-02", "2026-03-03"} {
		var sum int64
		for e, err := range c.DateReport(ctx, "302321", "funds", date) {
			if errors.Is(err, client.ErrDateOpen) {
				fmt.Println(date, "not closed yet")
				break
			}
			if err != nil {
				log.Fatal(err)
			}
			sum += e.Amount
		}
		fmt.Println(date, "funds sum", sum)
	}
	// Output:
	// ledger 302321 NOK
	// 2026-03-02 funds sum 59900
	// 2026-03-03 not closed yet
	// 2026-03-03 funds sum 2500
}

// Prove a closed date's reports complete and unaltered: its seal, checked
// with the server's JWKS against the hash chain recomputed from the entries
// received, linked to the previous date's seal.
func ExampleVerifier_VerifyDate() {
	baseURL, secret, stop := exampleServer()
	defer stop()

	c, err := client.New(client.Config{BaseURL: baseURL, ClientID: "acme-accounting", ClientSecret: secret})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	manifest, err := c.GetDateManifest(ctx, "302321", "2026-03-02", "")
	if err != nil {
		log.Fatal(err)
	}
	v := c.NewVerifier()
	chains := map[string]*client.TopicChain{} // both topics from their first entry
	var prev *client.Sealed                   // 2026-03-02 is the first sealed date
	for _, m := range manifest {
		if m.State != "closed" {
			fmt.Println(m.LedgerDate, m.State)
			continue
		}
		entries := map[string][]client.Entry{}
		for _, topic := range client.Topics {
			for e, err := range c.DateReport(ctx, "302321", topic, m.LedgerDate) {
				if err != nil {
					log.Fatal(err)
				}
				entries[topic] = append(entries[topic], e)
			}
		}
		if prev, err = v.VerifyDate(ctx, "302321", m, prev, chains, entries); err != nil {
			log.Fatal(err) // errors.Is(err, client.ErrSeal): the data is not what was sealed
		}
		fmt.Println(m.LedgerDate, "verified: funds closing balance", chains["funds"].Balance)
	}
	// Output:
	// 2026-03-02 verified: funds closing balance 59900
	// 2026-03-03 open
}

// Follow a feed over gRPC: the server pushes each page as entries are
// appended; a broken stream is resumed from the last page's cursor.
func ExampleClient_SubscribeFeed() {
	baseURL, grpcAddr, secret, stop := exampleServers()
	defer stop()

	c, err := client.New(client.Config{BaseURL: baseURL, ClientID: "acme-accounting", ClientSecret: secret})
	if err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials())) // TLS in production
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for page, err := range c.SubscribeFeed(ctx, conn, client.FeedRequest{LedgerID: "302321", Topic: "fees"}) {
		if err != nil {
			log.Fatal(err)
		}
		for _, e := range page.Items {
			fmt.Println(e.LedgerDate, e.EntryType, e.Amount)
		}
		if page.TryLater {
			break // caught up; keep ranging to get entries as they come
		}
	}
	// Output:
	// 2026-03-02 capture-fee -873
}
