package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// SealType is the JWS "typ" header of a date seal.
const SealType = "ledgerfeed-seal+jwt"

// Sealer tuning.
const (
	sealBatch    = 500             // dates signed and stored per write
	sealRescan   = 2 * time.Second // how often new ledgers are looked for
	sealWakeSize = 64
	// sealSettle is how long a watcher waits after a change before it wakes
	// the sealer: the changes of that while are looked at once, and the
	// sealer's read never runs in the moment after a commit, when the
	// commit's followers are being answered.
	sealSettle = 50 * time.Millisecond
)

// sealStore is what the sealer uses of the store.
type sealStore interface {
	ledger.EntryReader // Ready, Changed
	ledger.Ledgers
	ledger.Seals
}

// sealer seals every closed ledger date (docs/seals.md): at start, and
// whenever a ledger's funds log changes (a date closes by an append, an admin
// close or CloseDue; each of them wakes both topics' readers), it signs each
// closed date not sealed yet, in date order, with the auth service's key and
// stores the seals write-once. The store refuses a seal out of order or over
// another, so a second sealer (or a manifest read sealing on demand) can
// never change a seal.
type sealer struct {
	store sealStore
	auth  *auth.Service
	log   *slog.Logger
	now   func() time.Time

	mu   sync.Mutex // one ledger sealed at a time: no signing twice
	wake chan string
}

func newSealer(st sealStore, a *auth.Service, log *slog.Logger) *sealer {
	return &sealer{store: st, auth: a, log: log, now: time.Now, wake: make(chan string, sealWakeSize)}
}

// start runs the sealer until the returned stop is called; stop waits for it.
func (z *sealer) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { z.run(ctx, &wg) })
	return func() {
		cancel()
		wg.Wait()
	}
}

// run seals what is due, then waits for a ledger to change.
func (z *sealer) run(ctx context.Context, wg *sync.WaitGroup) {
	watched := map[string]bool{}
	due := map[string]bool{}
	tick := time.NewTicker(sealRescan)
	defer tick.Stop()
	rescan := true
	for {
		if rescan {
			rescan = false
			if err := z.watchAll(ctx, wg, watched, due); err != nil && ctx.Err() == nil {
				z.log.Error("sealer: list ledgers", "err", err)
			}
		}
		for id := range due {
			if ctx.Err() != nil {
				return
			}
			delete(due, id)
			if err := z.sealLedger(ctx, id); err != nil && ctx.Err() == nil && !errors.Is(err, ledger.ErrClosed) {
				z.log.Error("sealer: seal ledger dates", "ledger", id, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case id := <-z.wake:
			due[id] = true
		case <-tick.C:
			rescan = true
		}
	}
}

// watchAll starts a watcher for each ledger not watched yet and marks it due.
// A watcher takes its change channel before the ledger is first sealed, so no
// close after that is missed.
func (z *sealer) watchAll(ctx context.Context, wg *sync.WaitGroup, watched, due map[string]bool) error {
	after := ""
	for {
		ls, err := z.store.ListLedgers(after, 1000)
		if err != nil {
			return err
		}
		if len(ls) == 0 {
			return nil
		}
		for _, l := range ls {
			if watched[l.ID] {
				continue
			}
			watched[l.ID], due[l.ID] = true, true
			ch := z.store.Changed(l.ID, ledger.TopicFunds)
			wg.Go(func() { z.watch(ctx, l.ID, ch) })
		}
		after = ls[len(ls)-1].ID
	}
}

// watch sends id to the sealer after each change of its funds log, sealSettle
// later. The sealer reads the ledger after the new change channel is taken,
// so a change before that is in what it reads and one after fires the
// channel.
func (z *sealer) watch(ctx context.Context, id string, ch <-chan struct{}) {
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
		settle.Reset(sealSettle)
		select {
		case <-ctx.Done():
			return
		case <-settle.C:
		}
		if !z.store.Ready() {
			return
		}
		ch = z.store.Changed(id, ledger.TopicFunds)
		select {
		case z.wake <- id:
		case <-ctx.Done():
			return
		}
	}
}

// sealLedger seals every closed, unsealed date of a ledger, in date order.
// A ledger with nothing to seal is answered without taking the lock, so
// manifest reads do not queue behind each other.
func (z *sealer) sealLedger(ctx context.Context, id string) error {
	if work, err := z.store.Unsealed(id, 1); err != nil || len(work.Dates) == 0 {
		return err
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	for {
		start := time.Now()
		work, err := z.store.Unsealed(id, sealBatch)
		if err != nil || len(work.Dates) == 0 {
			return err
		}
		prev, prevDate := work.PrevSeal, work.PrevDate
		seals := make([]ledger.Seal, 0, len(work.Dates))
		iat := z.now().Unix()
		for i := range work.Dates {
			d := &work.Dates[i]
			jws, err := z.auth.Sign(SealType, sealClaims(work.Ledger, d, prevDate, prev, iat))
			if err != nil {
				return fmt.Errorf("sign seal of %s: %w", d.Date, err)
			}
			seals = append(seals, ledger.Seal{Date: d.Date, Seal: jws, Funds: d.Funds, Fees: d.Fees})
			prev, prevDate = jws, d.Date
		}
		if err := z.store.PutSeals(ctx, id, work.PrevSeal, seals); err != nil {
			return err
		}
		z.log.Info("sealed ledger dates", "ledger", id, "from", seals[0].Date.String(), "to", prevDate.String(),
			"dates", len(seals), "took", time.Since(start).Round(time.Microsecond).String())
	}
}

// sealClaims are the claims of a date's seal, exactly as docs/seals.md
// lists them.
func sealClaims(l ledger.Ledger, d *ledger.DateSummary, prevDate ledger.Date, prevSeal string, iat int64) map[string]any {
	prevName, prevHash := "", ""
	if prevSeal != "" {
		prevName, prevHash = prevDate.String(), sealHash(prevSeal)
	}
	return map[string]any{
		"ledgerId":       l.ID,
		"ledgerDate":     d.Date.String(),
		"currency":       l.Currency,
		"startTime":      d.Start.UTC().Format(sealTimeLayout),
		"endTime":        d.End.UTC().Format(sealTimeLayout),
		"funds":          topicClaims(&d.Funds),
		"fees":           topicClaims(&d.Fees),
		"prevLedgerDate": prevName,
		"prevSeal":       prevHash,
		"iat":            iat,
	}
}

func topicClaims(t *ledger.TopicSummary) map[string]any {
	return map[string]any{
		"entryCount":     t.EntryCount,
		"firstSequence":  t.FirstSequence,
		"lastSequence":   t.LastSequence,
		"openingBalance": t.OpeningBalance,
		"closingBalance": t.ClosingBalance,
		"digest":         t.Digest,
	}
}

// sealTimeLayout is the wire's UTC time: always six fraction digits.
const sealTimeLayout = "2006-01-02T15:04:05.000000Z"

// sealHash is what a seal's prevSeal claim holds: the lowercase hex SHA-256
// of the previous date's compact seal.
func sealHash(compact string) string {
	h := sha256.Sum256([]byte(compact))
	return hex.EncodeToString(h[:])
}
