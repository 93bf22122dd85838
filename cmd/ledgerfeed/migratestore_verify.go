package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/ledgerfeed/ledgerfeed/client"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// verifyTarget checks the copy in the target against itself and the
// source: every topic log's chain recomputed from the target's entries
// (gapless sequences from 1, balances, hashes, dates) and each entry equal
// to the source's, GDPR fields included; heads, date ranges and the date
// manifest (close times and seals with their summaries) equal; every seal
// verified with the copied public keys against summaries recomputed from
// the target's entries and linked to the one before; clients, the audit
// log, records, files, keys and the cursor key equal; the counts of
// everything equal to what was copied.
func (m *storeMigration) verifyTarget(ctx context.Context) error {
	c, err := m.dst.Contents(ctx)
	if err != nil {
		return err
	}
	for _, n := range []struct {
		what      string
		got, want int64
	}{
		{"ledgers", c.Ledgers, m.sum.Ledgers},
		{"entries", c.Entries, m.sum.Entries},
		{"clients", c.Clients, m.sum.Clients},
		{"audit events", c.AuditEvents, m.sum.AuditEvents},
		{"seals", c.Seals, m.sum.Seals},
		{"close times", c.Closes, m.sum.CloseTimes},
		{"files", c.Blobs, m.sum.Files},
	} {
		if n.got != n.want {
			return fmt.Errorf("the target holds %d %s, %d were copied", n.got, n.what, n.want)
		}
	}

	var verifier *client.Verifier
	if m.keys != nil {
		v, err := m.dst.GetRecord(ledger.RecordSigningKeys, keysRecordKey)
		if err != nil {
			return fmt.Errorf("signing keys: %w", err)
		}
		if !bytes.Equal(v, m.keys) {
			return fmt.Errorf("the target's signing keys differ from the source's")
		}
		keys, _, err := ringPublicKeys(v)
		if err != nil {
			return fmt.Errorf("signing keys: %w", err)
		}
		verifier = client.NewVerifierWithKeys(keys)
	}
	if m.cursorKey != nil {
		v, err := m.dst.GetRecord(ledger.RecordSecrets, cursorKeyRecord)
		if err != nil || !bytes.Equal(v, m.cursorKey) {
			return fmt.Errorf("the target's cursor key differs from the source's (%v)", err)
		}
	}

	var (
		ids     []string
		checked int64
		seals   int64
	)
	next := int64(migrateProgressEvery)
	err = eachLedger(m.src, func(l ledger.Ledger) error {
		ids = append(ids, l.ID)
		n, s, err := m.verifyLedger(ctx, l, verifier, func(n int64) {
			if checked+n >= next {
				m.progressf("%d entries verified on the target (ledger %s)", checked+n, l.ID)
				for next <= checked+n {
					next += migrateProgressEvery
				}
			}
		})
		if err != nil {
			return fmt.Errorf("ledger %s: %w", l.ID, err)
		}
		checked += n
		seals += s
		return nil
	})
	if err != nil {
		return err
	}
	var dstIDs []string
	if err := eachLedger(m.dst, func(l ledger.Ledger) error { dstIDs = append(dstIDs, l.ID); return nil }); err != nil {
		return err
	}
	if !reflect.DeepEqual(ids, dstIDs) {
		return fmt.Errorf("the target lists ledgers %v, the source %v", dstIDs, ids)
	}
	if checked != m.sum.Entries {
		return fmt.Errorf("%d entries checked on the target, %d copied", checked, m.sum.Entries)
	}
	if seals != m.sum.Seals {
		return fmt.Errorf("%d seals verified on the target, %d copied", seals, m.sum.Seals)
	}

	sc, err := allClients(m.src)
	if err != nil {
		return err
	}
	dc, err := allClients(m.dst)
	if err != nil {
		return err
	}
	if !sameJSON(sc, dc) {
		return fmt.Errorf("the target's clients differ from the source's")
	}
	if err := m.verifyAudit(); err != nil {
		return err
	}
	for _, kind := range ledger.RecordKinds {
		a, err := allRecords(m.src, kind)
		if err != nil {
			return err
		}
		b, err := allRecords(m.dst, kind)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(a, b) {
			return fmt.Errorf("the target's %s records differ from the source's", kind)
		}
	}
	return m.verifyFiles(ctx)
}

// verifyAudit compares the two audit logs event by event, a batch at a
// time from each.
func (m *storeMigration) verifyAudit() error {
	var after uint64
	for {
		a, na, err := m.src.ListAudit(ledger.AuditFilter{}, after, migrateAuditBatch)
		if err != nil {
			return err
		}
		b, nb, err := m.dst.ListAudit(ledger.AuditFilter{}, after, migrateAuditBatch)
		if err != nil {
			return err
		}
		if len(a) != len(b) || na != nb {
			return fmt.Errorf("after audit event %d the target's log has %d events (up to %d), the source's %d (up to %d)", after, len(b), nb, len(a), na)
		}
		for i := range a {
			if a[i].Sequence != b[i].Sequence || !sameJSON(a[i], b[i]) {
				return fmt.Errorf("audit event %d differs: target %+v, source %+v", a[i].Sequence, b[i], a[i])
			}
		}
		if na == after {
			return nil
		}
		after = na
	}
}

// copiedDate is one date of one topic, recomputed from the target's entries.
type copiedDate struct {
	date ledger.Date
	sum  client.TopicSummary
}

// verifyLedger checks one ledger (see verifyTarget) and returns how many
// entries and seals it checked.
func (m *storeMigration) verifyLedger(ctx context.Context, l ledger.Ledger, v *client.Verifier, progress func(int64)) (int64, int64, error) {
	tl, err := m.dst.GetLedger(l.ID)
	if err != nil {
		return 0, 0, err
	}
	want := l
	want.CreatedAt, want.UpdatedAt = l.CreatedAt.Truncate(time.Microsecond), l.UpdatedAt.Truncate(time.Microsecond)
	if !sameJSON(tl, want) {
		return 0, 0, fmt.Errorf("the target's ledger differs: %+v, source %+v", tl, want)
	}
	var n int64
	dates := map[ledger.Topic][]copiedDate{}
	first := ledger.Date(0)
	for _, t := range ledger.Topics {
		ds, cnt, err := m.verifyTopic(l, t, func(k int64) { progress(n + k) })
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", t, err)
		}
		n += cnt
		dates[t] = ds
		if len(ds) > 0 && (first == 0 || ds[0].date < first) {
			first = ds[0].date
		}
		for _, d := range ds {
			f, la, ok, err := m.dst.DateRange(l.ID, t, d.date)
			if err != nil || !ok || int64(f) != d.sum.FirstSequence || int64(la) != d.sum.LastSequence {
				return 0, 0, fmt.Errorf("%s date %s: the target's range is %d–%d (%v, %v), its entries run %d–%d",
					t, d.date, f, la, ok, err, d.sum.FirstSequence, d.sum.LastSequence)
			}
		}
		hs, err := m.src.Head(l.ID, t)
		if err != nil {
			return 0, 0, err
		}
		hd, err := m.dst.Head(l.ID, t)
		if err != nil {
			return 0, 0, err
		}
		if hs != hd {
			return 0, 0, fmt.Errorf("%s: the target's head %+v differs from the source's %+v", t, hd, hs)
		}
	}
	if first == 0 || l.OpenDate == 0 {
		return n, 0, nil
	}
	// The manifest from the first date with an entry to the open date:
	// close times, seals and summaries as each store answers them.
	var seals int64
	var prev *client.Sealed
	cur := map[ledger.Topic]*client.TopicSummary{ledger.TopicFunds: {}, ledger.TopicFees: {}}
	for from := first; from <= l.OpenDate; from += ledger.MaxManifestDates {
		to := min(from+ledger.MaxManifestDates-1, l.OpenDate)
		a, err := m.src.Manifest(l.ID, from, to)
		if err != nil {
			return 0, 0, err
		}
		b, err := m.dst.Manifest(l.ID, from, to)
		if err != nil {
			return 0, 0, err
		}
		if !sameJSON(a, b) {
			return 0, 0, fmt.Errorf("the target's date manifest %s–%s differs from the source's", from, to)
		}
		for _, d := range b {
			got := map[string]client.TopicSummary{}
			for _, t := range ledger.Topics {
				c := cur[t]
				if ds := dates[t]; len(ds) > 0 && ds[0].date == d.Date {
					*c = ds[0].sum
					dates[t] = ds[1:]
				} else {
					*c = client.TopicSummary{OpeningBalance: c.ClosingBalance, ClosingBalance: c.ClosingBalance, Digest: c.Digest}
				}
				got[string(t)] = *c
			}
			if d.Seal == "" {
				continue
			}
			if v == nil {
				return 0, 0, fmt.Errorf("date %s is sealed but the source has no signing keys", d.Date)
			}
			if _, err := v.VerifySeal(ctx, l.ID, d.Date.String(), d.Seal, prev, got); err != nil {
				return 0, 0, err
			}
			prev = &client.Sealed{LedgerDate: d.Date.String(), Seal: d.Seal}
			seals++
		}
	}
	return n, seals, nil
}

// verifyTopic walks a topic log on the target and the source side by side:
// it recomputes the target's chain and requires each entry to equal the
// source's. It returns the target's dates with their summaries, in order.
func (m *storeMigration) verifyTopic(l ledger.Ledger, t ledger.Topic, progress func(int64)) ([]copiedDate, int64, error) {
	var (
		h     ledger.Head
		out   []copiedDate
		count int64
	)
	for {
		a, err := m.src.Entries(l.ID, t, h.Sequence+1, migrateEntryPage, ledger.ReadOptions{GDPR: true})
		if err != nil {
			return nil, 0, err
		}
		b, err := m.dst.Entries(l.ID, t, h.Sequence+1, migrateEntryPage, ledger.ReadOptions{GDPR: true})
		if err != nil {
			return nil, 0, err
		}
		if len(a) != len(b) {
			return nil, 0, fmt.Errorf("from sequence %d the target has %d entries in a page, the source %d", h.Sequence+1, len(b), len(a))
		}
		if len(b) == 0 {
			return out, count, nil
		}
		for i := range b {
			e := &b[i]
			if err := checkChainLink(l, t, &h, e); err != nil {
				return nil, 0, err
			}
			if !sameEntry(e, &a[i]) {
				return nil, 0, fmt.Errorf("sequence %d differs: target %+v, source %+v", e.Sequence, *e, a[i])
			}
			digest := hex.EncodeToString(e.Hash[:])
			if k := len(out); k > 0 && out[k-1].date == e.LedgerDate {
				s := &out[k-1].sum
				s.EntryCount++
				s.LastSequence = int64(e.Sequence)
				s.ClosingBalance, s.Digest = e.BalanceAfter, digest
			} else {
				out = append(out, copiedDate{date: e.LedgerDate, sum: client.TopicSummary{
					EntryCount: 1, FirstSequence: int64(e.Sequence), LastSequence: int64(e.Sequence),
					OpeningBalance: e.BalanceBefore, ClosingBalance: e.BalanceAfter, Digest: digest,
				}})
			}
			h.Sequence, h.Balance, h.Hash, h.LedgerDate = e.Sequence, e.BalanceAfter, e.Hash, e.LedgerDate
		}
		count += int64(len(b))
		progress(count)
	}
}

// checkChainLink checks entry e against the head before it.
func checkChainLink(l ledger.Ledger, t ledger.Topic, h *ledger.Head, e *ledger.Entry) error {
	switch {
	case e.LedgerID != l.ID || e.Topic != t || e.Currency != l.Currency:
		return fmt.Errorf("sequence %d names ledger %s topic %s currency %s", e.Sequence, e.LedgerID, e.Topic, e.Currency)
	case e.Sequence != h.Sequence+1:
		return fmt.Errorf("sequence %d follows %d: a gap", e.Sequence, h.Sequence)
	case e.BalanceBefore != h.Balance:
		return fmt.Errorf("sequence %d: balanceBefore %d, the previous balanceAfter %d", e.Sequence, e.BalanceBefore, h.Balance)
	case e.Amount > 0 && e.BalanceBefore > math.MaxInt64-e.Amount, e.Amount < 0 && e.BalanceBefore < math.MinInt64-e.Amount,
		e.BalanceAfter != e.BalanceBefore+e.Amount:
		return fmt.Errorf("sequence %d: balanceAfter %d is not balanceBefore %d + amount %d", e.Sequence, e.BalanceAfter, e.BalanceBefore, e.Amount)
	case e.LedgerDate < h.LedgerDate || e.LedgerDate > l.OpenDate:
		return fmt.Errorf("sequence %d: date %s after %s, open date %s", e.Sequence, e.LedgerDate, h.LedgerDate, l.OpenDate)
	case ledger.ChainHash(h.Hash, e) != e.Hash:
		return fmt.Errorf("sequence %d: the hash does not chain", e.Sequence)
	}
	return nil
}

func sameEntry(a, b *ledger.Entry) bool {
	sameHandle := (a.RecipientHandle == nil) == (b.RecipientHandle == nil) &&
		(a.RecipientHandle == nil || *a.RecipientHandle == *b.RecipientHandle)
	sameGDPR := (a.GDPR == nil) == (b.GDPR == nil) && (a.GDPR == nil || *a.GDPR == *b.GDPR)
	return sameHandle && sameGDPR && a.Time.Equal(b.Time) &&
		a.LedgerID == b.LedgerID && a.Topic == b.Topic && a.Sequence == b.Sequence && a.EntryID == b.EntryID &&
		a.PSPReference == b.PSPReference && a.LedgerDate == b.LedgerDate && a.EntryType == b.EntryType &&
		a.Reference == b.Reference && a.Currency == b.Currency && a.Amount == b.Amount &&
		a.BalanceBefore == b.BalanceBefore && a.BalanceAfter == b.BalanceAfter && a.Hash == b.Hash && a.HasGDPR == b.HasGDPR
}

// sameJSON reports whether a and b marshal to the same JSON (times
// compared as written: UTC, to the digit).
func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
