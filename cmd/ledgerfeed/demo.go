package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// The demo client and the file its random secret is written to.
const (
	demoClientID        = "demo-partner"
	demoCredentialsFile = "demo-credentials"
	demoDays            = 90 // closed dates before today's open one
)

// demoLedger is one demo ledger and how its sales look.
type demoLedger struct {
	ledger.Ledger
	weekly     bool    // payout only at the end of Mondays
	perDay     int     // captures on an ordinary weekday
	minKr      int     // capture amounts, in major units
	maxKr      int     //
	feeBPS     int64   // capture fee in basis points …
	feeFixed   int64   // … plus this, in minor units
	open, shut float64 // sales run in this fraction of the date's span
	weekday    [7]float64
	gdprHandle string // the Vippsnummer sales unit whose sales carry GDPR data
	consent    bool   // demo-partner's GDPR consent on this ledger
	payoutText string // payout reference, with %d for the payout number
	orderRef   string // capture reference, with %d for the order number
}

func handle(s string) *string { return &s }

// demoLedgers are the demo ledgers: Vipps-like numeric ids, three
// currencies and zones, one with a 04:00 cutoff, one settled weekly.
func demoLedgers() []*demoLedger {
	return []*demoLedger{
		{
			Ledger: ledger.Ledger{
				ID: "302321", Currency: "NOK", TimeZone: "Europe/Oslo",
				PayoutBankAccount:          ledger.Account{Scheme: "BBAN:NO", ID: "86011117947"},
				Owner:                      ledger.Account{Scheme: "business:NO:ORG", ID: "987654321"},
				SettlesForRecipientHandles: []string{"NO:123456", "NO:57860"},
				SalesUnits: []ledger.SalesUnit{
					{Name: "Kaffebrenneriet nettbutikk", RecipientHandle: "NO:123456", BusinessIdentifier: ledger.Account{Scheme: "business:NO:ORG", ID: "987654321"}},
					{Name: "Kaffebrenneriet Grünerløkka Vippsnummer", RecipientHandle: "NO:57860", BusinessIdentifier: ledger.Account{Scheme: "business:NO:ORG", ID: "987654321"}},
				},
			},
			perDay: 70, minKr: 50, maxKr: 1500, feeBPS: 175,
			open: 0.30, shut: 0.92, weekday: [7]float64{0.6, 1, 1, 1, 1.1, 1.3, 1.2},
			gdprHandle: "NO:57860", consent: true,
			payoutText: "Vipps utbet. %d Vippsnr 57860", orderRef: "ordre-%d",
		},
		{
			Ledger: ledger.Ledger{
				ID: "302322", Currency: "DKK", TimeZone: "Europe/Copenhagen",
				PayoutBankAccount:          ledger.Account{Scheme: "IBAN", ID: "DK5000400440116243"},
				Owner:                      ledger.Account{Scheme: "business:DK:CVR", ID: "31245678"},
				SettlesForRecipientHandles: []string{"DK:112233"},
				SalesUnits: []ledger.SalesUnit{
					{Name: "Hygge Cykler ApS", RecipientHandle: "DK:112233", BusinessIdentifier: ledger.Account{Scheme: "business:DK:CVR", ID: "31245678"}},
				},
			},
			perDay: 35, minKr: 80, maxKr: 4000, feeBPS: 125, feeFixed: 100,
			open: 0.38, shut: 0.80, weekday: [7]float64{0.3, 1, 1, 1, 1, 1.2, 1.5},
			payoutText: "MobilePay udbetaling %d", orderRef: "HC-%d",
		},
		{
			Ledger: ledger.Ledger{
				ID: "302323", Currency: "EUR", TimeZone: "Europe/Helsinki",
				PayoutBankAccount:          ledger.Account{Scheme: "IBAN", ID: "FI2112345600000785"},
				Owner:                      ledger.Account{Scheme: "business:FI:Y", ID: "2345678-9"},
				SettlesForRecipientHandles: []string{"FI:445566", "FI:445567"},
				SalesUnits: []ledger.SalesUnit{
					{Name: "Löyly Sauna Helsinki", RecipientHandle: "FI:445566", BusinessIdentifier: ledger.Account{Scheme: "business:FI:Y", ID: "2345678-9"}},
					{Name: "Löyly Sauna verkkokauppa", RecipientHandle: "FI:445567", BusinessIdentifier: ledger.Account{Scheme: "business:FI:Y", ID: "2345678-9"}},
				},
			},
			perDay: 30, minKr: 5, maxKr: 450, feeBPS: 149, feeFixed: 5,
			open: 0.35, shut: 0.95, weekday: [7]float64{1.4, 0.8, 0.8, 0.9, 1, 1.3, 1.6},
			payoutText: "MobilePay maksu %d", orderRef: "LS-%d",
		},
		{
			Ledger: ledger.Ledger{
				ID: "302324", Currency: "NOK", TimeZone: "Europe/Oslo", Cutoff: "04:00",
				PayoutBankAccount:          ledger.Account{Scheme: "BBAN:NO", ID: "15038012345"},
				Owner:                      ledger.Account{Scheme: "business:NO:ORG", ID: "912345678"},
				SettlesForRecipientHandles: []string{"NO:223344", "NO:66778"},
				SalesUnits: []ledger.SalesUnit{
					{Name: "Nattbaren Oslo", RecipientHandle: "NO:223344", BusinessIdentifier: ledger.Account{Scheme: "business:NO:ORG", ID: "912345678"}},
					{Name: "Nattbaren Vippsnummer", RecipientHandle: "NO:66778", BusinessIdentifier: ledger.Account{Scheme: "business:NO:ORG", ID: "912345678"}},
				},
			},
			// Open from 16:00 to 03:30: the 04:00 cutoff keeps a night on one date.
			perDay: 45, minKr: 50, maxKr: 900, feeBPS: 175,
			open: 0.50, shut: 0.98, weekday: [7]float64{0.4, 0.5, 0.6, 0.8, 1.1, 2, 2.2},
			gdprHandle: "NO:66778", consent: true,
			payoutText: "Vipps utbet. %d Vippsnr 66778", orderRef: "bar-%d",
		},
		{
			Ledger: ledger.Ledger{
				ID: "302325", Currency: "NOK", TimeZone: "Europe/Oslo",
				PayoutBankAccount:          ledger.Account{Scheme: "BBAN:NO", ID: "12041234567"},
				Owner:                      ledger.Account{Scheme: "business:NO:ORG", ID: "923456789"},
				SettlesForRecipientHandles: []string{"NO:334455"},
				SalesUnits: []ledger.SalesUnit{
					{Name: "Fjordfisk Grossist AS", RecipientHandle: "NO:334455", BusinessIdentifier: ledger.Account{Scheme: "business:NO:ORG", ID: "923456789"}},
				},
			},
			weekly: true, perDay: 15, minKr: 500, maxKr: 5000, feeBPS: 99,
			open: 0.25, shut: 0.70, weekday: [7]float64{0, 1, 1, 1, 1, 1.2, 0.2},
			payoutText: "Vipps ukeoppgjør %d", orderRef: "FG-%d",
		},
	}
}

// demoResult says what seedDemo did.
type demoResult struct {
	Seeded  bool   // false: the store had ledgers; nothing was written
	Entries int    // entries appended
	Secret  string // the demo-partner secret when seeded
}

// seedDemo fills a store that has no ledger with the demo ledgers, about
// demoDays closed dates of entries on both topics up to a few minutes before
// now plus today's open date, and the demo-partner client (scope read,
// grants on every demo ledger) with the given secret, or a random one when
// secret is "". It does nothing on a store that has a ledger. The data is
// the same on every run, relative to now. Progress goes to progress when
// seeding takes more than a second.
func seedDemo(ctx context.Context, st ledger.Backend, a *auth.Service, secret string, now time.Time, progress io.Writer) (demoResult, error) {
	if ls, err := st.ListLedgers("", 1); err != nil {
		return demoResult{}, err
	} else if len(ls) > 0 {
		return demoResult{}, nil
	}
	if secret == "" {
		secret = auth.NewSecret()
	}
	// Hash while the entries are written: argon2id takes a moment.
	type hashed struct {
		h   string
		err error
	}
	hashc := make(chan hashed, 1)
	go func() {
		h, err := a.HashSecret(ctx, secret)
		hashc <- hashed{h, err}
	}()

	start := time.Now()
	var count atomic.Int64
	stopProgress := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				fmt.Fprintf(progress, "demo: seeding, %d entries so far\n", count.Load())
			}
		}
	})

	ls := demoLedgers()
	errs := make([]error, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Go(func() { errs[i] = seedDemoLedger(ctx, st, l, uint64(i), now, &count) })
	}
	wg.Wait()
	close(stopProgress)
	pwg.Wait()
	hs := <-hashc
	if err := errors.Join(errs...); err != nil {
		return demoResult{}, fmt.Errorf("demo: %w", err)
	}
	if hs.err != nil {
		return demoResult{}, fmt.Errorf("demo: %w", hs.err)
	}
	grants := make([]ledger.Grant, len(ls))
	for i, l := range ls {
		grants[i] = ledger.Grant{LedgerID: l.ID, GDPRConsent: l.consent}
	}
	if _, err := st.CreateClient(ctx, ledger.Client{
		ID: demoClientID, SecretHash: hs.h, Scopes: []string{ledger.ScopeRead}, Grants: grants,
	}); err != nil {
		return demoResult{}, fmt.Errorf("demo: client %s: %w", demoClientID, err)
	}
	n := int(count.Load())
	if d := time.Since(start); d > time.Second {
		fmt.Fprintf(progress, "demo: seeded %d ledgers, %d entries in %s\n", len(ls), n, d.Round(time.Millisecond))
	}
	return demoResult{Seeded: true, Entries: n, Secret: secret}, nil
}

// demoEvent is one entry to post, at its time.
type demoEvent struct {
	topic ledger.Topic
	in    ledger.EntryInput
	topUp bool // amount set when posted: brings a negative balance back up
}

type demoCapture struct {
	psp, ref string
	amount   int64
	handle   *string
}

// demoGen makes one ledger's entries, date by date.
type demoGen struct {
	l           *demoLedger
	cal         ledger.Calendar
	rng         *rand.Rand
	psp         int64 // next pspReference
	order       int   // next order number
	payout      int   // next payout number
	recent      []demoCapture
	funds, fees int64 // balances after what was generated so far
	disputed    demoCapture
	bulk        demoCapture
}

var (
	demoNames    = []string{"Ola Nordmann", "Kari Hansen", "Per Johansen", "Ingrid Olsen", "Lars Larsen", "Sofie Berg", "Magnus Haugen", "Emma Nilsen", "Jonas Bakken", "Nora Andersen", "Henrik Solberg", "Maja Lie"}
	demoMessages = []string{"Kaffe og bolle", "Takk!", "Lunsj", "", "Cappuccino x2", "Spleis bursdag", "", "Kake til møtet", "Ølkveld", "Takk for sist", ""}
)

func seedDemoLedger(ctx context.Context, st ledger.Backend, l *demoLedger, idx uint64, now time.Time, count *atomic.Int64) error {
	if _, _, err := st.PutLedger(ctx, l.Ledger); err != nil {
		return err
	}
	g, err := newDemoGen(l, idx)
	if err != nil {
		return err
	}
	today := g.cal.DateOf(now)
	last := now.Add(-3 * time.Minute)
	for d := today - demoDays; d <= today; d++ {
		fees, funds := g.date(d, today-d, d == today, last)
		for _, b := range []struct {
			t  ledger.Topic
			in []ledger.EntryInput
		}{{ledger.TopicFees, fees}, {ledger.TopicFunds, funds}} {
			if len(b.in) == 0 {
				continue
			}
			if _, err := st.Append(ctx, l.ID, b.t, b.in); err != nil {
				return err
			}
			count.Add(int64(len(b.in)))
		}
	}
	if _, err := st.CloseDate(ctx, l.ID, today-1); err != nil {
		return err
	}
	return nil
}

// newDemoGen returns the generator of the idx-th demo ledger. Its RNG is
// seeded by idx, so its entries are the same on every run.
func newDemoGen(l *demoLedger, idx uint64) (*demoGen, error) {
	cal, err := l.Calendar()
	if err != nil {
		return nil, err
	}
	return &demoGen{l: l, cal: cal, rng: rand.New(rand.NewPCG(20261123, idx)),
		psp: 2_000_000_000 + int64(idx)*100_000_000, order: 10000 + int(idx)*1000, payout: 2000001}, nil
}

func (g *demoGen) nextPSP() string { g.psp++; return fmt.Sprint(g.psp) }

func weekdayOf(d ledger.Date) time.Weekday {
	y, m, day := d.Civil()
	return time.Date(y, m, day, 12, 0, 0, 0, time.UTC).Weekday()
}

// date returns the fees and funds entries of date d, which is ago dates
// before today; of today only those up to last.
func (g *demoGen) date(d ledger.Date, ago ledger.Date, isToday bool, last time.Time) (fees, funds []ledger.EntryInput) {
	l, rng := g.l, g.rng
	start, end := g.cal.Start(d), g.cal.End(d)
	span := end.Sub(start)
	at := func(frac float64) time.Time {
		return start.Add(time.Duration(frac * float64(span))).Truncate(time.Microsecond)
	}
	salesTime := func() time.Time { return at(l.open + (l.shut-l.open)*rng.Float64()) }
	var evs []demoEvent
	capture := func(t time.Time, amount int64, ref string, h string) demoCapture {
		if h == "" {
			h = l.SettlesForRecipientHandles[0]
			if len(l.SettlesForRecipientHandles) > 1 && rng.IntN(5) < 2 {
				h = l.SettlesForRecipientHandles[1]
			}
		}
		c := demoCapture{psp: g.nextPSP(), ref: ref, amount: amount, handle: handle(h)}
		in := ledger.EntryInput{EntryID: "cap-" + c.psp, PSPReference: c.psp, Time: t, EntryType: "capture",
			Reference: ref, Amount: amount, RecipientHandle: c.handle}
		if h == l.gdprHandle {
			in.Reference = ""
			c.ref = ""
			in.Name = demoNames[rng.IntN(len(demoNames))]
			in.PhoneNumber = fmt.Sprintf("+47 9%02d %02d %03d", rng.IntN(100), rng.IntN(100), rng.IntN(1000))
			in.Message = demoMessages[rng.IntN(len(demoMessages))]
		}
		evs = append(evs, demoEvent{topic: ledger.TopicFunds, in: in})
		fee := amount*l.feeBPS/10000 + l.feeFixed
		evs = append(evs, demoEvent{topic: ledger.TopicFees, in: ledger.EntryInput{EntryID: "fee-" + c.psp,
			PSPReference: c.psp, Time: t, EntryType: "capture-fee", Reference: in.Reference, Amount: -fee, RecipientHandle: c.handle}})
		g.recent = append(g.recent, c)
		if len(g.recent) > 300 {
			g.recent = g.recent[100:]
		}
		return c
	}

	n := int(float64(l.perDay)*l.weekday[weekdayOf(d)]*(0.8+0.4*rng.Float64()) + 0.5)
	for range n {
		kr := l.minKr + int(float64(l.maxKr-l.minKr)*rng.Float64()*rng.Float64())
		amount := int64(kr)*100 + int64(rng.IntN(4))*25
		g.order++
		capture(salesTime(), amount, fmt.Sprintf(l.orderRef, g.order), "")
		if rng.IntN(40) == 0 && len(g.recent) > 10 { // a refund of an earlier sale
			c := g.recent[rng.IntN(len(g.recent)-1)]
			amt := c.amount
			if rng.IntN(3) == 0 {
				amt = amt / 2
			}
			psp := g.nextPSP()
			evs = append(evs, demoEvent{topic: ledger.TopicFunds, in: ledger.EntryInput{EntryID: "ref-" + psp,
				PSPReference: psp, Time: salesTime(), EntryType: "refund", Reference: c.ref, Amount: -amt, RecipientHandle: c.handle}})
		}
	}

	// The ledgers' special days.
	funds1 := func(id, typ, ref string, t time.Time, amount int64, h *string, psp string) {
		evs = append(evs, demoEvent{topic: ledger.TopicFunds, in: ledger.EntryInput{EntryID: id + "-" + d.String(),
			PSPReference: psp, Time: t, EntryType: typ, Reference: ref, Amount: amount, RecipientHandle: h}})
	}
	switch {
	case l.ID == "302321" && ago == 43: // a catering order, paid out that night …
		g.order++
		g.bulk = capture(at(0.45), 9_500_000, fmt.Sprintf("catering-%d", g.order), l.SettlesForRecipientHandles[0])
	case l.ID == "302321" && ago == 40: // … refunded in full: the balance goes negative, no payout
		psp := g.nextPSP()
		funds1("ref", "refund", g.bulk.ref, at(0.42), -g.bulk.amount, g.bulk.handle, psp)
	case l.ID == "302321" && ago == 39: // the merchant pays the invoice: a top-up
		evs = append(evs, demoEvent{topic: ledger.TopicFunds, topUp: true, in: ledger.EntryInput{EntryID: "topup-" + d.String(),
			PSPReference: fmt.Sprintf("%s-%d", l.ID, 5000000+int(d)), Time: at(0.26), EntryType: "top-up", Reference: "Faktura 700412"}})
	case l.ID == "302321" && ago == 20:
		funds1("corr", "correction", "Korreksjon sak 48213", at(0.55), 45_000, nil, fmt.Sprintf("%s-%d", l.ID, 6000000+int(d)))
	case l.ID == "302322" && ago == 55 && len(g.recent) > 0: // a disputed sale …
		g.disputed = g.recent[len(g.recent)/2]
		c := g.disputed
		funds1("dispute-retained", "retained-disputed-capture", c.ref, at(0.5), -c.amount, c.handle, c.psp)
	case l.ID == "302322" && ago == 45 && g.disputed.psp != "": // … won by the merchant
		c := g.disputed
		funds1("dispute-returned", "returned-disputed-capture", c.ref, at(0.5), c.amount, c.handle, c.psp)
	case l.ID == "302323" && ago == 10: // an entry type no client knows yet
		funds1("adj", "adjustment-2027", "ADJ-2027-0001", at(0.6), -1250, nil, fmt.Sprintf("%s-%d", l.ID, 7000000+int(d)))
	}

	slices.SortStableFunc(evs, func(a, b demoEvent) int { return a.in.Time.Compare(b.in.Time) })
	for _, e := range evs {
		if isToday && e.in.Time.After(last) {
			continue
		}
		if e.topic == ledger.TopicFees {
			g.fees += e.in.Amount
			fees = append(fees, e.in)
			continue
		}
		if e.topUp {
			e.in.Amount = max(-g.funds, 0) + 2_000_000
		}
		g.funds += e.in.Amount
		funds = append(funds, e.in)
	}
	if isToday {
		return fees, funds
	}

	// Settlement at the end of the date: fees retained from funds, the rest
	// paid out. Weekly ledgers settle on Mondays only; a balance that does
	// not cover the fees is carried over.
	if l.weekly && weekdayOf(d) != time.Monday || g.funds+g.fees <= 0 {
		return fees, funds
	}
	g.payout++
	if g.fees != 0 {
		psp := fmt.Sprintf("%s-%d", l.ID, 3000000+g.payout)
		fr := ledger.EntryInput{EntryID: "fees-retained-" + d.String(), PSPReference: psp, Time: end,
			LedgerDate: d, EntryType: "fees-retained", Amount: -g.fees}
		fees = append(fees, fr)
		fr.Amount = g.fees
		funds = append(funds, fr)
		g.funds += g.fees
		g.fees = 0
	}
	funds = append(funds, ledger.EntryInput{EntryID: "payout-" + d.String(), PSPReference: fmt.Sprintf("%s-%d", l.ID, g.payout),
		Time: end, LedgerDate: d, EntryType: "scheduled-for-payout", Reference: fmt.Sprintf(l.payoutText, g.payout), Amount: -g.funds})
	g.funds = 0
	return fees, funds
}

// serveDemo is serve's --demo: it seeds an empty store (seedDemo), prints
// the demo client's secret when it made one, and prints curl lines that
// work against httpAddr.
func serveDemo(ctx context.Context, cfg config, st ledger.Backend, a *auth.Service, httpAddr net.Addr, stdout, stderr io.Writer) error {
	res, err := seedDemo(ctx, st, a, cfg.DemoSecret, time.Now(), stderr)
	if err != nil {
		return err
	}
	credPath := filepath.Join(cfg.DataDir, demoCredentialsFile)
	secret := cfg.DemoSecret
	switch {
	case res.Seeded:
		fmt.Fprintf(stdout, "demo data seeded: %d ledgers, %d entries\n", len(demoLedgers()), res.Entries)
		if cfg.DemoSecret == "" {
			secret = res.Secret
			body := fmt.Sprintf("client_id=%s\nclient_secret=%s\n", demoClientID, secret)
			if err := writeSecretFile(credPath, []byte(body)); err != nil {
				return fmt.Errorf("demo: write %s: %w", credPath, err)
			}
			fmt.Fprintf(stdout, "demo client created: client_id=%s client_secret=%s\n", demoClientID, secret)
			fmt.Fprintf(stdout, "  (shown once; also in %s, mode 0600)\n", credPath)
		} else {
			fmt.Fprintf(stdout, "demo client created: client_id=%s, secret from --demo-secret\n", demoClientID)
		}
	default:
		if _, err := st.GetClient(demoClientID); errors.Is(err, ledger.ErrNotFound) {
			fmt.Fprintf(stdout, "demo: the store has ledgers but no %s client; --demo seeds only an empty store\n", demoClientID)
			return nil
		} else if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		fmt.Fprintln(stdout, "demo data is already there (the store has ledgers); nothing seeded")
		if secret == "" {
			secret = readDemoSecret(credPath)
		}
	}
	if secret == "" {
		secret = "<client_secret>"
	}
	printDemoCurl(stdout, st, hostPort(httpAddr), secret)
	return nil
}

// printDemoCurl prints the curl lines of the demo.
func printDemoCurl(w io.Writer, st ledger.Backend, addr, secret string) {
	id := demoLedgers()[0].ID
	yesterday := "YYYY-MM-DD"
	if l, err := st.GetLedger(id); err == nil && l.OpenDate > 1 {
		yesterday = (l.OpenDate - 1).String()
	}
	auth := `-H "Authorization: Bearer $TOKEN"`
	fmt.Fprintf(w, "try the demo (client %s):\n", demoClientID)
	fmt.Fprintf(w, "  TOKEN=$(curl -s -X POST %s/accesstoken/get -H 'client_id: %s' -H 'client_secret: %s' | sed -E 's/.*\"access_token\": *\"([^\"]+)\".*/\\1/')\n", addr, demoClientID, secret)
	fmt.Fprintf(w, "  curl -s %s %s/settlement/v1/ledgers\n", auth, addr)
	fmt.Fprintf(w, "  curl -s %s %s/report/v2/ledgers/%s/funds/dates/%s\n", auth, addr, id, yesterday)
	fmt.Fprintf(w, "  curl -s %s %s/report/v2/ledgers/%s/fees/dates/%s\n", auth, addr, id, yesterday)
	fmt.Fprintf(w, "  curl -s %s '%s/report/v2/ledgers/%s/funds/feed?pageSize=5'\n", auth, addr, id)
	fmt.Fprintf(w, "  curl -s %s '%s/report/v2/ledgers/%s/funds/feed?pageSize=5&includeGDPRSensitiveData=true'\n", auth, addr, id)
}

// hostPort is addr for a URL typed by hand: an unspecified host ([::],
// 0.0.0.0) becomes localhost.
func hostPort(addr net.Addr) string {
	s := addr.String()
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return s
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// readDemoSecret reads the secret from a demo-credentials file, "" when
// there is none.
func readDemoSecret(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "client_secret="); ok {
			return s
		}
	}
	return ""
}

// writeSecretFile writes a file readable by its owner only, atomically.
func writeSecretFile(path string, body []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(body)
	err = cmp.Or(err, f.Chmod(0o600), f.Sync())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
