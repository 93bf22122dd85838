package server

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/chain"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// This file holds a partner's seal verification (docs/seals.md), written
// from the document and the wire only: the JWKS, the manifest's seal and the
// entries of the date reports.

// sealTopic and sealClaimsJSON are a seal's claims as docs/seals.md lists them.
type sealTopic struct {
	EntryCount     int64  `json:"entryCount"`
	FirstSequence  uint64 `json:"firstSequence"`
	LastSequence   uint64 `json:"lastSequence"`
	OpeningBalance int64  `json:"openingBalance"`
	ClosingBalance int64  `json:"closingBalance"`
	Digest         string `json:"digest"`
}

type sealClaimsJSON struct {
	LedgerID       string    `json:"ledgerId"`
	LedgerDate     string    `json:"ledgerDate"`
	Currency       string    `json:"currency"`
	StartTime      string    `json:"startTime"`
	EndTime        string    `json:"endTime"`
	Funds          sealTopic `json:"funds"`
	Fees           sealTopic `json:"fees"`
	PrevLedgerDate string    `json:"prevLedgerDate"`
	PrevSeal       string    `json:"prevSeal"`
	IAT            int64     `json:"iat"`
}

// verifySealJWS checks a compact seal with the JWKS document alone: the key
// of its kid, alg EdDSA only, typ ledgerfeed-seal+jwt. It returns the claims.
func verifySealJWS(jwks []byte, compact string) (sealClaimsJSON, error) {
	var set struct {
		Keys []struct {
			Kty, Crv, Kid, X string
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return sealClaimsJSON{}, err
	}
	tok, err := jwt.Parse(compact, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		for _, k := range set.Keys {
			if k.Kid == kid && k.Kty == "OKP" && k.Crv == "Ed25519" {
				x, err := base64.RawURLEncoding.DecodeString(k.X)
				if err != nil || len(x) != ed25519.PublicKeySize {
					return nil, errors.New("bad key in JWKS")
				}
				return ed25519.PublicKey(x), nil
			}
		}
		return nil, fmt.Errorf("kid %q is not in the JWKS", kid)
	}, jwt.WithValidMethods([]string{"EdDSA"}))
	if err != nil {
		return sealClaimsJSON{}, err
	}
	if typ, _ := tok.Header["typ"].(string); typ != SealType {
		return sealClaimsJSON{}, fmt.Errorf("typ %q", typ)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(compact, ".")[1])
	if err != nil {
		return sealClaimsJSON{}, err
	}
	var c sealClaimsJSON
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.DisallowUnknownFields()
	return c, dec.Decode(&c)
}

// wireEntry is a date report item.
type wireEntry struct {
	PSPReference    string  `json:"pspReference"`
	Time            string  `json:"time"`
	LedgerDate      string  `json:"ledgerDate"`
	EntryType       string  `json:"entryType"`
	Reference       string  `json:"reference"`
	Currency        string  `json:"currency"`
	Amount          int64   `json:"amount"`
	BalanceBefore   int64   `json:"balanceBefore"`
	BalanceAfter    int64   `json:"balanceAfter"`
	RecipientHandle *string `json:"recipientHandle"`
}

// verifyTopic checks one topic of a verified seal against the entries of
// its date report, chaining from prevDigest (the previous date's digest of
// the topic, "" before the first entry). It returns the date's digest.
func verifyTopic(ledgerID, topic, date string, st sealTopic, entries []wireEntry, prevDigest string) (string, error) {
	if int64(len(entries)) != st.EntryCount {
		return "", fmt.Errorf("%s: %d entries, the seal says %d", topic, len(entries), st.EntryCount)
	}
	if len(entries) == 0 {
		if st.Digest != prevDigest || st.FirstSequence != 0 || st.LastSequence != 0 || st.OpeningBalance != st.ClosingBalance {
			return "", fmt.Errorf("%s: empty date with digest %q (previous %q)", topic, st.Digest, prevDigest)
		}
		return prevDigest, nil
	}
	var h [32]byte
	if prevDigest != "" {
		b, err := hex.DecodeString(prevDigest)
		if err != nil || len(b) != 32 {
			return "", fmt.Errorf("%s: previous digest %q", topic, prevDigest)
		}
		copy(h[:], b)
	}
	if st.LastSequence != st.FirstSequence+uint64(len(entries))-1 || st.OpeningBalance != entries[0].BalanceBefore {
		return "", fmt.Errorf("%s: sequences %d–%d or opening balance %d do not fit the entries", topic, st.FirstSequence, st.LastSequence, st.OpeningBalance)
	}
	for i, e := range entries {
		if i > 0 && e.BalanceBefore != entries[i-1].BalanceAfter || e.BalanceAfter != e.BalanceBefore+e.Amount || e.LedgerDate != date {
			return "", fmt.Errorf("%s: entry %d does not follow on", topic, i)
		}
		t, err := time.Parse(time.RFC3339Nano, e.Time)
		if err != nil {
			return "", err
		}
		h = chain.Hash(h, &chain.Entry{
			LedgerID: ledgerID, Topic: topic, Sequence: st.FirstSequence + uint64(i), PSPReference: e.PSPReference,
			TimeMicros: t.UnixMicro(), LedgerDate: e.LedgerDate, EntryType: e.EntryType, Reference: e.Reference,
			Currency: e.Currency, Amount: e.Amount, BalanceBefore: e.BalanceBefore, BalanceAfter: e.BalanceAfter,
			RecipientHandle: e.RecipientHandle,
		})
	}
	if entries[len(entries)-1].BalanceAfter != st.ClosingBalance {
		return "", fmt.Errorf("%s: closing balance %d, the seal says %d", topic, entries[len(entries)-1].BalanceAfter, st.ClosingBalance)
	}
	if got := hex.EncodeToString(h[:]); got != st.Digest {
		return "", fmt.Errorf("%s: digest %s, the seal says %s", topic, got, st.Digest)
	}
	return st.Digest, nil
}

// verifyDate is a partner's whole check of one closed date: the seal with
// the JWKS, the ledger and date it names, both topics against their entries,
// and the chain to the previous date's seal ("" for the first sealed date).
// prev holds the previous digests per topic and is updated.
func verifyDate(jwks []byte, seal, prevSeal, ledgerID, date string, entries map[string][]wireEntry, prev map[string]string) error {
	c, err := verifySealJWS(jwks, seal)
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	if c.LedgerID != ledgerID || c.LedgerDate != date {
		return fmt.Errorf("seal of %s %s, want %s %s", c.LedgerID, c.LedgerDate, ledgerID, date)
	}
	want := ""
	if prevSeal != "" {
		h := sha256.Sum256([]byte(prevSeal))
		want = hex.EncodeToString(h[:])
	}
	if c.PrevSeal != want {
		return fmt.Errorf("prevSeal %s, want %s", c.PrevSeal, want)
	}
	next := map[string]string{}
	for topic, st := range map[string]sealTopic{"funds": c.Funds, "fees": c.Fees} {
		d, err := verifyTopic(ledgerID, topic, date, st, entries[topic], prev[topic])
		if err != nil {
			return err
		}
		next[topic] = d
	}
	for k, v := range next {
		prev[k] = v
	}
	return nil
}

// manifestItem is a manifest item as JSON.
type manifestItem struct {
	LedgerDate string `json:"ledgerDate"`
	State      string `json:"state"`
	StartTime  string `json:"startTime"`
	EndTime    string `json:"endTime"`
	Topics     map[string]struct {
		sealTopic
		EntryTypes []struct {
			EntryType string `json:"entryType"`
			Count     int64  `json:"count"`
			Amount    int64  `json:"amount"`
		} `json:"entryTypes"`
	} `json:"topics"`
	Seal string `json:"seal"`
}

func (e *reportEnv) manifest(id string, q url.Values) (resp, []manifestItem) {
	e.t.Helper()
	r := e.do("GET", "/report/v2/ledgers/"+id+"/dates?"+q.Encode(), e.partner, nil)
	var out struct {
		Items []manifestItem `json:"items"`
	}
	if r.code == http.StatusOK {
		if err := json.Unmarshal(r.body, &out); err != nil {
			e.t.Fatalf("manifest: %v\n%s", err, r.body)
		}
	}
	return r, out.Items
}

// dateEntries reads the whole date report of (id, topic, date) over REST.
func (e *reportEnv) dateEntries(id, topic, date string) []wireEntry {
	e.t.Helper()
	var out []wireEntry
	q := url.Values{"pageSize": {"3"}}
	for {
		r := e.do("GET", datePath(id, topic, date)+"?"+q.Encode(), e.partner, nil)
		var p struct {
			Items   []wireEntry `json:"items"`
			HasMore bool        `json:"hasMore"`
			Cursor  string      `json:"cursor"`
		}
		if r.code != 200 || json.Unmarshal(r.body, &p) != nil {
			e.t.Fatalf("date report %s %s: %d %s", topic, date, r.code, r.body)
		}
		out = append(out, p.Items...)
		if !p.HasMore {
			return out
		}
		q.Set("cursor", p.Cursor)
	}
}

// addTyped appends entries of the given types to (id, topic) on day.
func (e *reportEnv) addTyped(id string, topic ledger.Topic, day string, types ...string) {
	e.t.Helper()
	d, err := ledger.ParseDate(day)
	if err != nil {
		e.t.Fatal(err)
	}
	in := make([]ledger.EntryInput, len(types))
	for i, typ := range types {
		k := e.n.Add(1)
		amount := 1000 + 7*k
		if typ == "refund" || strings.HasSuffix(typ, "-fee") {
			amount = -amount / 2
		}
		in[i] = ledger.EntryInput{
			EntryID: fmt.Sprintf("t%d", k), PSPReference: fmt.Sprintf("psp%d", k), Reference: fmt.Sprintf("order-%d", k%3),
			Time: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(k) * time.Second), LedgerDate: d,
			EntryType: typ, Amount: amount, Name: "Kari Nordmann", PhoneNumber: "+4798765432",
		}
		if k%2 == 0 {
			h := "api:123456"
			in[i].RecipientHandle = &h
		}
	}
	if _, err := e.store.Append(context.Background(), id, topic, in); err != nil {
		e.t.Fatalf("append %s/%s %s: %v", id, topic, day, err)
	}
}

// sealedLedger fills ledger A over 2024-03-01 … 2024-03-05 (03-03 empty, fees
// empty on 03-01) and leaves 2024-03-05 open.
func sealedLedger(t *testing.T) *reportEnv {
	e := newReportEnv(t, Limits{})
	e.addTyped(ledgerA, ledger.TopicFunds, "2024-03-01", "capture", "capture", "refund", "capture", "correction")
	e.addTyped(ledgerA, ledger.TopicFunds, "2024-03-02", "capture", "refund")
	e.addTyped(ledgerA, ledger.TopicFees, "2024-03-02", "capture-fee", "capture-fee", "fees-retained")
	e.addTyped(ledgerA, ledger.TopicFees, "2024-03-04", "capture-fee")
	e.addTyped(ledgerA, ledger.TopicFunds, "2024-03-04", "capture", "capture", "capture", "capture", "payout-scheduled")
	e.addTyped(ledgerA, ledger.TopicFunds, "2024-03-05", "capture")
	return e
}

func TestReportAPI_Manifest_SealsVerify(t *testing.T) {
	e := sealedLedger(t)
	jwks := e.do("GET", "/.well-known/jwks.json", "", nil).body
	r, items := e.manifest(ledgerA, url.Values{"fromLedgerDate": {"2024-02-29"}, "toLedgerDate": {"2024-03-09"}})
	if r.code != 200 {
		t.Fatalf("manifest: %d %s", r.code, r.body)
	}
	// 02-29 (closed, before the first entry: no seal) … 03-05 (open).
	var dates []string
	for _, it := range items {
		dates = append(dates, it.LedgerDate+"/"+it.State)
		if sealed := it.Seal != ""; sealed != (it.State == "closed" && it.LedgerDate >= "2024-03-01") {
			t.Errorf("%s %s: seal %q", it.LedgerDate, it.State, it.Seal)
		}
		if !wireTime.MatchString(it.StartTime) || !wireTime.MatchString(it.EndTime) {
			t.Errorf("%s: times %s %s", it.LedgerDate, it.StartTime, it.EndTime)
		}
	}
	if want := "2024-02-29/closed 2024-03-01/closed 2024-03-02/closed 2024-03-03/closed 2024-03-04/closed 2024-03-05/open"; strings.Join(dates, " ") != want {
		t.Fatalf("dates %s", strings.Join(dates, " "))
	}

	// A partner verifies every sealed date with the JWKS and the date reports.
	entries := map[string]map[string][]wireEntry{}
	prevSeal, prev := "", map[string]string{}
	for _, it := range items {
		entries[it.LedgerDate] = map[string][]wireEntry{}
		for _, topic := range []string{"funds", "fees"} {
			entries[it.LedgerDate][topic] = e.dateEntries(ledgerA, topic, it.LedgerDate)
		}
		if it.Seal == "" {
			continue
		}
		if err := verifyDate(jwks, it.Seal, prevSeal, ledgerA, it.LedgerDate, entries[it.LedgerDate], prev); err != nil {
			t.Fatalf("%s does not verify: %v", it.LedgerDate, err)
		}
		prevSeal = it.Seal
	}

	// The manifest's counts and sums are the date reports'.
	for _, it := range items {
		for _, topic := range []string{"funds", "fees"} {
			sum := map[string][2]int64{}
			for _, en := range entries[it.LedgerDate][topic] {
				s := sum[en.EntryType]
				sum[en.EntryType] = [2]int64{s[0] + 1, s[1] + en.Amount}
			}
			got := map[string][2]int64{}
			ts := it.Topics[topic]
			for _, s := range ts.EntryTypes {
				got[s.EntryType] = [2]int64{s.Count, s.Amount}
			}
			if !reflect.DeepEqual(got, sum) || ts.EntryCount != int64(len(entries[it.LedgerDate][topic])) {
				t.Errorf("%s %s: manifest sums %v (count %d), date report %v", it.LedgerDate, topic, got, ts.EntryCount, sum)
			}
		}
	}

	// Any change to an entry, a missing or extra entry, or another previous
	// seal fails the check.
	d2, d4 := items[2], items[4] // 2024-03-02, 2024-03-04
	prevOf := func(i int) (string, map[string]string) {
		p := map[string]string{}
		for _, topic := range []string{"funds", "fees"} {
			p[topic] = items[i-1].Topics[topic].Digest
		}
		return items[i-1].Seal, p
	}
	handle := "api:999999"
	changes := map[string]func(m map[string][]wireEntry){
		"amount":          func(m map[string][]wireEntry) { m["funds"][1].Amount++; m["funds"][1].BalanceAfter++ },
		"time":            func(m map[string][]wireEntry) { m["funds"][0].Time = "2024-03-01T12:00:09.000001Z" },
		"reference":       func(m map[string][]wireEntry) { m["fees"][2].Reference += "x" },
		"pspReference":    func(m map[string][]wireEntry) { m["fees"][0].PSPReference = "other" },
		"entryType":       func(m map[string][]wireEntry) { m["funds"][0].EntryType = "refund" },
		"recipientHandle": func(m map[string][]wireEntry) { m["fees"][1].RecipientHandle = &handle },
		"currency":        func(m map[string][]wireEntry) { m["funds"][1].Currency = "SEK" },
		"missing entry":   func(m map[string][]wireEntry) { m["fees"] = m["fees"][:2] },
		"extra entry":     func(m map[string][]wireEntry) { m["fees"] = append(m["fees"], m["fees"][2]) },
		"reordered":       func(m map[string][]wireEntry) { m["fees"][0], m["fees"][1] = m["fees"][1], m["fees"][0] },
	}
	for name, change := range changes {
		m := map[string][]wireEntry{}
		for k, v := range entries[d2.LedgerDate] {
			m[k] = append([]wireEntry(nil), v...)
		}
		change(m)
		ps, pd := prevOf(2)
		if err := verifyDate(jwks, d2.Seal, ps, ledgerA, d2.LedgerDate, m, pd); err == nil {
			t.Errorf("a changed %s verifies", name)
		}
	}
	ps, pd := prevOf(4)
	if err := verifyDate(jwks, d4.Seal, ps, ledgerA, d4.LedgerDate, entries[d4.LedgerDate], pd); err != nil {
		t.Fatalf("2024-03-04: %v", err)
	}
	badPrev := []byte(ps)
	badPrev[len(badPrev)/2] ^= 1
	for name, prevSeal := range map[string]string{"changed previous seal": string(badPrev), "other date's seal": items[2].Seal, "no previous seal": ""} {
		if err := verifyDate(jwks, d4.Seal, prevSeal, ledgerA, d4.LedgerDate, entries[d4.LedgerDate], pd); err == nil {
			t.Errorf("%s verifies", name)
		}
	}
	// A seal with edited claims, or for another date, or without the JWKS key.
	parts := strings.Split(d4.Seal, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	edited := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(claims), `"entryCount":5`, `"entryCount":6`, 1))) + "." + parts[2]
	if edited == d4.Seal {
		t.Fatal("the claim edit did not apply")
	}
	if _, err := verifySealJWS(jwks, edited); err == nil {
		t.Error("a seal with edited claims verifies")
	}
	if err := verifyDate(jwks, d2.Seal, ps, ledgerA, d4.LedgerDate, entries[d4.LedgerDate], pd); err == nil {
		t.Error("another date's seal verifies")
	}
	if _, err := verifySealJWS([]byte(`{"keys":[]}`), d4.Seal); err == nil {
		t.Error("a seal verifies without its key")
	}
}

// Seals are made once: a later manifest, more closed dates and a GDPR
// erasure leave every seal and digest as it was.
func TestReportAPI_Manifest_SealsNeverChange(t *testing.T) {
	e := sealedLedger(t)
	q := url.Values{"fromLedgerDate": {"2024-03-01"}, "toLedgerDate": {"2024-03-31"}}
	r1, before := e.manifest(ledgerA, q)
	if r1.code != 200 || len(before) != 5 {
		t.Fatalf("manifest: %d %s", r1.code, r1.body)
	}
	admin := e.adminToken()
	if r := e.do("POST", "/admin/v1/ledgers/"+ledgerA+"/gdpr-erasures", admin, map[string]any{"reference": "order-1"}); r.code != 200 {
		t.Fatalf("erase: %d %s", r.code, r.body)
	}
	e.addTyped(ledgerA, ledger.TopicFees, "2024-03-07", "service-fee")
	_, after := e.manifest(ledgerA, q)
	if len(after) != 7 {
		t.Fatalf("%d dates after closing 03-05 and 03-06", len(after))
	}
	for i := range before[:4] {
		if !reflect.DeepEqual(before[i], after[i]) {
			t.Errorf("%s changed:\n%+v\n%+v", before[i].LedgerDate, before[i], after[i])
		}
	}
	// 03-05 was open before; now it is sealed, chained to 03-04's seal.
	c, err := verifySealJWS(e.do("GET", "/.well-known/jwks.json", "", nil).body, after[4].Seal)
	h := sha256.Sum256([]byte(after[3].Seal))
	if err != nil || c.PrevLedgerDate != "2024-03-04" || c.PrevSeal != hex.EncodeToString(h[:]) {
		t.Fatalf("seal of 03-05: %+v %v", c, err)
	}
	// gRPC answers the same manifest.
	g, err := e.rep.GetDateManifest(bearer(e.partner), &v1.GetDateManifestRequest{LedgerId: ledgerA, FromLedgerDate: "2024-03-01", ToLedgerDate: "2024-03-31"})
	if err != nil || len(g.GetItems()) != 7 {
		t.Fatalf("grpc: %v", err)
	}
	for i, it := range g.GetItems() {
		if it.GetSeal() != after[i].Seal || it.GetTopics()["fees"].GetDigest() != after[i].Topics["fees"].Digest ||
			it.GetTopics()["funds"].GetClosingBalance() != after[i].Topics["funds"].ClosingBalance {
			t.Errorf("grpc %s differs from REST", it.GetLedgerDate())
		}
	}
}

// The sealer seals a date as it closes, without any manifest request.
func TestSealer_SealsOnClose(t *testing.T) {
	e := newReportEnv(t, Limits{})
	e.addTyped(ledgerA, ledger.TopicFunds, "2024-03-01", "capture")
	admin := e.adminToken()
	if r := e.do("POST", "/admin/v1/ledgers/"+ledgerA+"/dates/2024-03-02/close", admin, nil); r.code != 200 {
		t.Fatalf("close: %d %s", r.code, r.body)
	}
	waitSeal := func(day string) {
		t.Helper()
		d, _ := ledger.ParseDate(day)
		deadline := time.Now().Add(20 * time.Second)
		for {
			s, err := e.store.SealOf(ledgerA, d)
			if err != nil {
				t.Fatal(err)
			}
			if s != "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not sealed 20 s after it closed", day)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// A new ledger is found by the sealer's rescan…
	waitSeal("2024-03-02")
	if s1, _ := e.store.SealOf(ledgerA, mustDateT(t, "2024-03-01")); s1 == "" {
		t.Fatal("2024-03-01 not sealed before 2024-03-02")
	}
	// …then watched: a date closed by an entry naming a later date (here on
	// fees) wakes the sealer.
	e.addTyped(ledgerA, ledger.TopicFees, "2024-03-04", "capture-fee")
	waitSeal("2024-03-03")
}

func mustDateT(t *testing.T, s string) ledger.Date {
	t.Helper()
	d, err := ledger.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestReportAPI_Manifest_Errors(t *testing.T) {
	e := sealedLedger(t)
	e.addTyped(ledgerB, ledger.TopicFunds, "2024-03-01", "capture")
	unknown := e.do("GET", "/report/v2/ledgers/999999/dates", e.partner, nil)
	if unknown.code != 404 {
		t.Fatalf("unknown ledger: %d", unknown.code)
	}
	// A ledger without a grant answers exactly as an unknown one.
	r := e.do("GET", "/report/v2/ledgers/"+ledgerB+"/dates", e.partner, nil)
	if r.code != 404 || strings.ReplaceAll(withoutContextID(t, r.body), ledgerB, "X") != strings.ReplaceAll(withoutContextID(t, unknown.body), "999999", "X") {
		t.Fatalf("no grant: %d %s", r.code, r.body)
	}
	for _, tc := range []struct{ q, field string }{
		{"fromLedgerDate=2024-13-01", "fromLedgerDate"},
		{"toLedgerDate=yesterday", "toLedgerDate"},
		{"fromLedgerDate=2024-03-05&toLedgerDate=2024-03-01", "fromLedgerDate"},
		{"fromLedgerDate=2023-01-01&toLedgerDate=2024-03-01", "toLedgerDate"},
	} {
		r := e.do("GET", "/report/v2/ledgers/"+ledgerA+"/dates?"+tc.q, e.partner, nil)
		if d, _ := r.json(t)["detail"].(string); r.code != 400 || !strings.HasPrefix(d, tc.field+":") {
			t.Errorf("%s: %d %s", tc.q, r.code, r.body)
		}
	}
	// A ledger with nothing appended or closed has no dates yet.
	if r := e.do("GET", "/report/v2/ledgers/"+ledgerA2+"/dates", e.partner, nil); r.code != 200 || withoutContextID(t, r.body) != `{"items":[]}` {
		t.Errorf("empty ledger: %d %s", r.code, r.body)
	}
	// Defaults: up to the open date (2024-03-05), 30 days back.
	r, items := e.manifest(ledgerA, url.Values{})
	if r.code != 200 || len(items) != 31 || items[30].LedgerDate != "2024-03-05" || items[30].State != "open" {
		t.Fatalf("default range: %d items", len(items))
	}
}
