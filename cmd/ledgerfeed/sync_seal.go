package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ledgerfeed/ledgerfeed/client"
)

// verifyLedger checks the seals of ledger id's dates closed since the last
// verified one, in date order, against the summaries of the entries written
// (committed state), and commits the last verified date. It stops quietly
// at the first date that is open or whose entries are not all written yet;
// a seal that does not match is an error wrapping client.ErrSeal. A server
// without the date manifest (404, 501) gets one warning, and no checks.
func (s *syncer) verifyLedger(ctx context.Context, id string) error {
	s.vmuMu.Lock()
	m := s.vmu[id]
	if m == nil {
		m = &sync.Mutex{}
		s.vmu[id] = m
	}
	skip := s.noSeals[id]
	s.vmuMu.Unlock()
	if skip {
		return nil
	}
	m.Lock()
	defer m.Unlock()

	// A snapshot of what is committed.
	s.mu.Lock()
	l := s.state.ledger(id)
	var sealed *client.Sealed
	if l.Sealed != nil {
		cp := *l.Sealed
		sealed = &cp
	}
	written := map[string]int64{}
	dates := map[string][]dateSum{}
	cur := map[string]client.TopicSummary{} // the chain after the last date walked
	first := ""
	for _, topic := range client.Topics {
		ts := l.Topics[topic]
		written[topic] = ts.Chain.Sequence
		dates[topic] = slices.Clone(ts.Dates)
		cur[topic] = client.TopicSummary{ClosingBalance: ts.Verified.Balance, Digest: ts.Verified.Digest, LastSequence: ts.Verified.Sequence}
		if len(ts.Dates) > 0 && (first == "" || ts.Dates[0].Date < first) {
			first = ts.Dates[0].Date
		}
	}
	s.mu.Unlock()

	from := first
	if sealed != nil {
		from = addDays(sealed.LedgerDate, 1)
	}
	if from == "" {
		return nil // nothing written yet
	}
	verified, firstVerified := 0, ""
	defer func() {
		if verified > 0 {
			s.sealed.Add(int64(verified))
			s.out.printf("%s: sealed dates %s…%s verified (%d)", id, firstVerified, sealed.LedgerDate, verified)
		}
	}()
	for {
		items, err := s.c.GetDateManifest(ctx, id, from, addDays(from, 365))
		if client.IsNotImplemented(err) || client.IsNotFound(err) {
			s.vmuMu.Lock()
			s.noSeals[id] = true
			s.vmuMu.Unlock()
			s.out.printf("warning: %s: seals not checked: the server has no date manifest (%v)", id, err)
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: date manifest: %w", id, err)
		}
		for _, m := range items {
			if m.State != "closed" {
				return s.commitSealed(id, sealed, cur, verified)
			}
			if m.Seal == "" {
				if sealed == nil {
					continue // before the ledger's first entry: nothing sealed
				}
				return fmt.Errorf("%w: %s %s is closed but has no seal", client.ErrSeal, id, m.LedgerDate)
			}
			claims, err := s.v.ParseSeal(ctx, id, m.LedgerDate, m.Seal)
			if err != nil {
				return err
			}
			if sealed == nil && claims.PrevSeal != "" {
				// The chain of seals begins earlier: a topic not written that
				// far back yet will bring its first date.
				return s.commitSealed(id, sealed, cur, verified)
			}
			got := map[string]client.TopicSummary{}
			for _, topic := range client.Topics {
				want, _ := claims.Topic(topic)
				if want.EntryCount > 0 && want.LastSequence > written[topic] {
					return s.commitSealed(id, sealed, cur, verified) // not all written yet
				}
				ds := dates[topic]
				if len(ds) > 0 && ds[0].Date < m.LedgerDate {
					return fmt.Errorf("%w: %s %s: entries written on %s, a date the server did not seal", client.ErrSeal, id, topic, ds[0].Date)
				}
				if len(ds) > 0 && ds[0].Date == m.LedgerDate {
					got[topic] = ds[0].TopicSummary
					dates[topic] = ds[1:]
				} else {
					c := cur[topic]
					got[topic] = client.TopicSummary{OpeningBalance: c.ClosingBalance, ClosingBalance: c.ClosingBalance, Digest: c.Digest}
				}
			}
			if _, err := s.v.VerifySeal(ctx, id, m.LedgerDate, m.Seal, sealed, got); err != nil {
				return err
			}
			for _, topic := range client.Topics {
				g := got[topic]
				c := cur[topic]
				c.ClosingBalance, c.Digest = g.ClosingBalance, g.Digest
				if g.EntryCount > 0 {
					c.LastSequence = g.LastSequence
				}
				cur[topic] = c
			}
			sealed = &client.Sealed{LedgerDate: m.LedgerDate, Seal: m.Seal}
			if verified == 0 {
				firstVerified = m.LedgerDate
			}
			verified++
		}
		if len(items) < 366 {
			return s.commitSealed(id, sealed, cur, verified)
		}
		from = addDays(items[len(items)-1].LedgerDate, 1)
	}
}

// commitSealed records the last verified date and each topic's chain after
// it, and drops the summaries of the dates it covers.
func (s *syncer) commitSealed(id string, sealed *client.Sealed, cur map[string]client.TopicSummary, verified int) error {
	if verified == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.state.ledger(id)
	l.Sealed = sealed
	for _, topic := range client.Topics {
		ts := l.Topics[topic]
		c := cur[topic]
		ts.Verified.Sequence, ts.Verified.Balance, ts.Verified.Digest = c.LastSequence, c.ClosingBalance, c.Digest
		ts.Dates = slices.DeleteFunc(ts.Dates, func(d dateSum) bool { return d.Date <= sealed.LedgerDate })
	}
	if err := saveState(s.cfg.dir, s.state); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// addDays returns date ("YYYY-MM-DD") plus n days.
func addDays(date string, n int) string {
	t, err := time.Parse("2006-01-02", date)
	if err != nil {
		return date
	}
	return t.AddDate(0, 0, n).Format("2006-01-02")
}
