package feed

import (
	"context"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Follow sends the feed of (ledgerID, topic) from sequence from, page by
// page: first the backlog, then a page as soon as entries are committed.
// Followers at the same position share each page's read (fanout.go): a
// page sent may be shared (Page.Shared, Page.Memo), its Entries read-only.
// After heartbeat without a page it calls beat with the current position.
// It returns nil when stop is closed, ctx's error when ctx ends,
// ledger.ErrClosed when the store closes, or the first error of send or
// beat. Each page's Next is where to resume after it; a page holding fewer
// than limit entries reached the end of the log as it was read (TryLater).
func (r *Reader) Follow(ctx context.Context, ledgerID string, topic ledger.Topic, from uint64, limit int, opt ledger.ReadOptions,
	heartbeat time.Duration, stop <-chan struct{}, send func(Page) error, beat func(next uint64) error) error {
	from = max(from, 1)
	hb := time.NewTimer(heartbeat)
	defer hb.Stop()
	for {
		rd := r.fan.join(ledgerID, topic, from, limit, opt)
		p, err := r.await(ctx, ledgerID, topic, rd, from, hb, heartbeat, stop, beat)
		if err != nil || p == nil {
			return err
		}
		p.TryLater = len(p.Entries) < limit
		if err := send(*p); err != nil {
			return err
		}
		from = p.Next
		hb.Reset(heartbeat)
	}
}

// await waits for rd's page, beating at each heartbeat. It returns nil and
// nil when stop is closed.
func (r *Reader) await(ctx context.Context, ledgerID string, topic ledger.Topic, rd *round, from uint64,
	hb *time.Timer, heartbeat time.Duration, stop <-chan struct{}, beat func(next uint64) error) (*Page, error) {
	for {
		select {
		case <-rd.done:
			if rd.err != nil {
				return nil, rd.err
			}
			p := rd.page
			return &p, nil
		case <-hb.C:
			if err := beat(from); err != nil {
				r.fan.leave(ledgerID, topic, rd)
				return nil, err
			}
			hb.Reset(heartbeat)
		case <-stop:
			r.fan.leave(ledgerID, topic, rd)
			return nil, nil
		case <-ctx.Done():
			r.fan.leave(ledgerID, topic, rd)
			return nil, ctx.Err()
		}
	}
}
