package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ledgerfeed/ledgerfeed/client"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// sealClaims builds the claims of every closed date of a ledger from the
// store's own entries and hashes (as the server signs them), chained with
// sign; it returns the manifest items.
func sealDates(t *testing.T, e *env, id string, stored map[string][]ledger.Entry, sign func(map[string]any) string) []client.DateManifest {
	t.Helper()
	l, err := e.st.GetLedger(id)
	if err != nil {
		t.Fatal(err)
	}
	var dates []ledger.Date
	for _, topic := range client.Topics {
		for _, en := range stored[topic] {
			if en.LedgerDate < l.OpenDate && (len(dates) == 0 || !containsDate(dates, en.LedgerDate)) {
				dates = append(dates, en.LedgerDate)
			}
		}
	}
	for i := 1; i < len(dates); i++ { // sort (few dates)
		for j := i; j > 0 && dates[j] < dates[j-1]; j-- {
			dates[j], dates[j-1] = dates[j-1], dates[j]
		}
	}
	type st struct {
		seq, bal int64
		digest   string
	}
	state := map[string]*st{"funds": {}, "fees": {}}
	var out []client.DateManifest
	prevDate, prevSeal := "", ""
	for d := dates[0]; d < l.OpenDate; d++ {
		claims := map[string]any{"ledgerId": id, "ledgerDate": d.String(), "currency": "NOK",
			"startTime": "", "endTime": "", "prevLedgerDate": prevDate, "prevSeal": "", "iat": time.Now().Unix()}
		if prevSeal != "" {
			claims["prevSeal"] = client.SealDigest(prevSeal)
		}
		for _, topic := range client.Topics {
			s := state[topic]
			sum := map[string]any{"entryCount": 0, "firstSequence": 0, "lastSequence": 0, "openingBalance": s.bal}
			n := 0
			for _, en := range stored[topic] {
				if en.LedgerDate != d {
					continue
				}
				if n == 0 {
					sum["firstSequence"] = en.Sequence
				}
				n++
				s.seq, s.bal, s.digest = int64(en.Sequence), en.BalanceAfter, hex.EncodeToString(en.Hash[:])
				sum["lastSequence"] = en.Sequence
			}
			sum["entryCount"], sum["closingBalance"], sum["digest"] = n, s.bal, s.digest
			claims[topic] = sum
		}
		seal := sign(claims)
		out = append(out, client.DateManifest{LedgerDate: d.String(), State: "closed", Seal: seal})
		prevDate, prevSeal = d.String(), seal
	}
	return out
}

func containsDate(ds []ledger.Date, d ledger.Date) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// fetchDate reads one topic's date report through the SDK.
func fetchDate(t *testing.T, c *client.Client, id, topic, date string) []client.Entry {
	t.Helper()
	var out []client.Entry
	for en, err := range c.DateReport(context.Background(), id, topic, date) {
		if err != nil {
			t.Fatalf("%s %s %s: %v", id, topic, date, err)
		}
		out = append(out, en)
	}
	return out
}

// Seals signed with the server's key verify against the server's JWKS and
// the entries read through the API; any change to an entry, a broken link,
// a foreign key or another algorithm fails with ErrSeal.
func TestVerifier_SealsOverReceivedEntries(t *testing.T) {
	e := newEnv(t, "302321")
	stored := e.ledger(t, "302321", 5, 25)
	c := e.client(t, e.base)
	ctx := context.Background()
	serverSign := func(claims map[string]any) string {
		s, err := e.auth.Sign(client.SealType, claims)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	manifest := sealDates(t, e, "302321", stored, serverSign)
	if len(manifest) != 4 {
		t.Fatalf("%d sealed dates, want 4", len(manifest))
	}
	entries := map[string]map[string][]client.Entry{}
	for _, m := range manifest {
		entries[m.LedgerDate] = map[string][]client.Entry{}
		for _, topic := range client.Topics {
			entries[m.LedgerDate][topic] = fetchDate(t, c, "302321", topic, m.LedgerDate)
		}
	}

	v := c.NewVerifier()
	verifyAll := func(ms []client.DateManifest, entries map[string]map[string][]client.Entry) error {
		chains := map[string]*client.TopicChain{}
		var prev *client.Sealed
		for _, m := range ms {
			var err error
			if prev, err = v.VerifyDate(ctx, "302321", m, prev, chains, entries[m.LedgerDate]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := verifyAll(manifest, entries); err != nil {
		t.Fatalf("genuine data: %v", err)
	}

	tamper := func(name string, f func(map[string]map[string][]client.Entry)) {
		t.Helper()
		cp := map[string]map[string][]client.Entry{}
		for d, tm := range entries {
			cp[d] = map[string][]client.Entry{}
			for topic, es := range tm {
				cp[d][topic] = append([]client.Entry(nil), es...)
			}
		}
		f(cp)
		if err := verifyAll(manifest, cp); !errors.Is(err, client.ErrSeal) {
			t.Errorf("%s: %v, want ErrSeal", name, err)
		}
	}
	d1, d3 := manifest[1].LedgerDate, manifest[3].LedgerDate
	tamper("a reference changed", func(m map[string]map[string][]client.Entry) { m[d1]["funds"][3].Reference = "other" })
	tamper("an entry dropped", func(m map[string]map[string][]client.Entry) {
		fs := m[d3]["fees"]
		m[d3]["fees"] = fs[:len(fs)-1]
	})
	tamper("two entries swapped", func(m map[string]map[string][]client.Entry) {
		fs := m[d1]["funds"]
		fs[0], fs[1] = fs[1], fs[0]
	})
	tamper("an amount changed with its balance", func(m map[string]map[string][]client.Entry) {
		fs := m[d3]["funds"]
		fs[len(fs)-1].Amount++
		fs[len(fs)-1].BalanceAfter++
	})
	tamper("the time moved by 1µs", func(m map[string]map[string][]client.Entry) {
		d0 := manifest[0].LedgerDate
		m[d0]["fees"][0].Time = m[d0]["fees"][0].Time.Add(time.Microsecond)
	})

	// A date left out breaks the link.
	skip := append(append([]client.DateManifest(nil), manifest[:2]...), manifest[3:]...)
	if err := verifyAll(skip, entries); !errors.Is(err, client.ErrSeal) {
		t.Errorf("a date left out: %v, want ErrSeal", err)
	}
	// A seal presented for another date.
	swapped := append([]client.DateManifest(nil), manifest...)
	swapped[1].Seal = manifest[2].Seal
	if err := verifyAll(swapped, entries); !errors.Is(err, client.ErrSeal) {
		t.Errorf("another date's seal: %v, want ErrSeal", err)
	}

	// Signed by a key the server does not publish.
	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	forged := sealDates(t, e, "302321", stored, func(claims map[string]any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(claims))
		tok.Header["kid"], tok.Header["typ"] = "someone-else", client.SealType
		s, err := tok.SignedString(foreign)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	if err := verifyAll(forged, entries); !errors.Is(err, client.ErrSeal) {
		t.Errorf("a foreign key: %v, want ErrSeal", err)
	}
	// ... and trusted when that key is pinned: the data itself is right.
	pinned := client.NewVerifierWithKeys(map[string]ed25519.PublicKey{"someone-else": foreign.Public().(ed25519.PublicKey)})
	chains := map[string]*client.TopicChain{}
	var prev *client.Sealed
	for _, m := range forged {
		var err error
		if prev, err = pinned.VerifyDate(ctx, "302321", m, prev, chains, entries[m.LedgerDate]); err != nil {
			t.Fatalf("pinned key: %v", err)
		}
	}
	// HS256 over the same claims with the public key as secret: refused.
	hs := sealDates(t, e, "302321", stored, func(claims map[string]any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims))
		tok.Header["kid"], tok.Header["typ"] = "someone-else", client.SealType
		s, _ := tok.SignedString([]byte(foreign.Public().(ed25519.PublicKey)))
		return s
	})
	if _, err := pinned.VerifyDate(ctx, "302321", hs[0], nil, map[string]*client.TopicChain{}, entries[hs[0].LedgerDate]); !errors.Is(err, client.ErrSeal) {
		t.Errorf("HS256 seal: %v, want ErrSeal", err)
	}
	// An open date has no seal to verify.
	if _, err := v.VerifyDate(ctx, "302321", client.DateManifest{LedgerDate: "2099-01-01", State: "open"}, nil, map[string]*client.TopicChain{}, nil); err == nil {
		t.Errorf("open date verified")
	}
}

// Against the server's own date manifest: every closed date's seal verifies
// with the server's JWKS over the entries of the date reports, chained from
// the ledger's first date; a tampered entry is caught.
func TestVerifier_ServerManifest(t *testing.T) {
	e := newEnv(t, "302321")
	stored := e.ledger(t, "302321", 6, 20)
	c := e.client(t, e.base)
	ctx := context.Background()
	first := stored["funds"][0].LedgerDate.String()
	ms, err := c.GetDateManifest(ctx, "302321", first, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 6 || ms[5].State != "open" || ms[5].Seal != "" {
		t.Fatalf("manifest: %d dates, last %+v; want 6, the last open", len(ms), ms[len(ms)-1])
	}
	v := c.NewVerifier()
	verify := func(tamper bool) error {
		chains := map[string]*client.TopicChain{}
		var prev *client.Sealed
		for _, m := range ms[:5] {
			if m.State != "closed" {
				t.Fatalf("%s: state %s", m.LedgerDate, m.State)
			}
			entries := map[string][]client.Entry{}
			for _, topic := range client.Topics {
				entries[topic] = fetchDate(t, c, "302321", topic, m.LedgerDate)
				if int64(m.Topics[topic].EntryCount) != int64(len(entries[topic])) {
					t.Errorf("%s %s: manifest counts %d entries, the report has %d", m.LedgerDate, topic, m.Topics[topic].EntryCount, len(entries[topic]))
				}
			}
			if tamper && m.LedgerDate == ms[2].LedgerDate {
				entries["funds"][1].PSPReference += "0"
			}
			var err error
			if prev, err = v.VerifyDate(ctx, "302321", m, prev, chains, entries); err != nil {
				return err
			}
		}
		return nil
	}
	if err := verify(false); err != nil {
		t.Fatalf("the server's seals: %v", err)
	}
	if err := verify(true); !errors.Is(err, client.ErrSeal) {
		t.Errorf("tampered entry: %v, want ErrSeal", err)
	}
}
