package auth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/internal/pgtest"
	"github.com/ledgerfeed/ledgerfeed/ledger"
	"github.com/ledgerfeed/ledgerfeed/ledger/pgstore"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openShared opens n services at once on one PostgreSQL store, keeping
// their signing keys in its records, as n nodes would.
func openShared(t *testing.T, n int, clock *testClock) (*pgstore.Store, []*Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := pgstore.Open(ctx, pgtest.Start(t), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svcs := make([]*Service, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range svcs {
		wg.Go(func() {
			svcs[i], errs[i] = New(st, Config{KeyRecords: st, Now: clock.Now, KeyPoll: 100 * time.Millisecond})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		t.Cleanup(func() { svcs[i].Close() })
	}
	return st, svcs
}

// The file ring's semantics on records shared by nodes: one first key
// whoever starts first, tokens of either node verify on both, a rotation
// on one is seen by the other (at once for verifying, within the poll for
// signing), and a key past its grace loses its private key but stays in
// the JWKS for seals.
func TestRecordKeys_SharedByNodes(t *testing.T) {
	clock := newClock()
	st, nodes := openShared(t, 3, clock)
	a, b := nodes[0], nodes[1]
	first := jwksKids(t, a.JWKS())
	for i, n := range nodes {
		if kids := jwksKids(t, n.JWKS()); len(kids) != 1 || !slices.Equal(kids, first) {
			t.Fatalf("node %d: jwks %v, want %v (one first key for all)", i, kids, first)
		}
	}
	ctx := context.Background()
	_, secret, err := a.CreateClient(ctx, "acme", []string{ledger.ScopeRead}, nil)
	if err != nil {
		t.Fatal(err)
	}
	old, err := a.IssueToken(ctx, "acme", secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(ctx, old.AccessToken); err != nil {
		t.Fatalf("A's token on B: %v", err)
	}

	kid, err := a.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := a.IssueToken(ctx, "acme", secret)
	if err != nil || tokenKid(t, fresh.AccessToken) != kid {
		t.Fatalf("A after its rotation: %v, kid %s, want %s", err, tokenKid(t, fresh.AccessToken), kid)
	}
	// B verifies the new kid at once (unknown kid: it re-reads), and the
	// old one still.
	for name, raw := range map[string]string{"old": old.AccessToken, "new": fresh.AccessToken} {
		if _, err := b.Verify(ctx, raw); err != nil {
			t.Fatalf("%s token on B: %v", name, err)
		}
	}
	// B signs with the new key once it polls.
	deadline := time.Now().Add(5 * time.Second)
	for {
		tok, err := b.IssueToken(ctx, "acme", secret)
		if err != nil {
			t.Fatal(err)
		}
		if tokenKid(t, tok.AccessToken) == kid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B still signs with %s", tokenKid(t, tok.AccessToken))
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := []string{kid, first[0]}
	if kids := jwksKids(t, b.JWKS()); !slices.Equal(kids, want) {
		t.Fatalf("B's jwks %v, want %v", kids, want)
	}

	// Past the old key's grace: its tokens fail on every node; the next
	// rotation drops its private key from the record; its public key stays
	// in every JWKS, after the keys that verify tokens.
	clock.Add(time.Hour + Leeway + 100*time.Millisecond + time.Second)
	for i, n := range nodes {
		if _, err := n.Verify(ctx, old.AccessToken); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("node %d: token of a key past its grace: %v", i, err)
		}
	}
	newest, err := b.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetRecord(ledger.RecordSigningKeys, KeysRecordKey)
	if err != nil {
		t.Fatal(err)
	}
	var rec keysRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Current != newest || len(rec.Keys) != 3 {
		t.Fatalf("record: current %s, %d keys; want %s, 3", rec.Current, len(rec.Keys), newest)
	}
	for _, e := range rec.Keys {
		if hasPriv := e.Private != ""; hasPriv != (e.Kid != first[0]) || e.Public == "" {
			t.Errorf("key %s: private kept %v, public %q", e.Kid, hasPriv, e.Public)
		}
	}
	want = []string{newest, kid, first[0]}
	time.Sleep(150 * time.Millisecond) // one poll interval of the others
	for i, n := range nodes {
		if kids := jwksKids(t, n.JWKS()); !slices.Equal(kids, want) {
			t.Fatalf("node %d: jwks after the next rotation %v, want %v", i, kids, want)
		}
	}
	// A node started now loads the same.
	again, err := New(st, Config{KeyRecords: st, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if kids := jwksKids(t, again.JWKS()); !slices.Equal(kids, want) {
		t.Fatalf("new node: jwks %v, want %v", kids, want)
	}
}

// RotateKeyInRecords (keys rotate --store) is seen by a running node.
func TestRotateKeyInRecords(t *testing.T) {
	clock := newClock()
	st, nodes := openShared(t, 1, clock)
	before := jwksKids(t, nodes[0].JWKS())
	kid, err := RotateKeyInRecords(st)
	if err != nil {
		t.Fatal(err)
	}
	if kid == before[0] {
		t.Fatal("rotation kept the kid")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		kids := jwksKids(t, nodes[0].JWKS())
		if slices.Equal(kids, []string{kid, before[0]}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jwks %v after the rotation to %s", kids, kid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
