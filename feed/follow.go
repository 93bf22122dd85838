package feed

import (
	"context"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Follow sends the feed of (ledgerID, topic) from sequence from, page by
// page: first the backlog, then a page as soon as entries are committed
// (woken by the store's Changed). After heartbeat without a page it calls
// beat with the current position. It returns nil when stop is closed, ctx's
// error when ctx ends, ledger.ErrClosed when the store closes, or the first
// error of send or beat. Each page's Next is where to resume after it.
func (r *Reader) Follow(ctx context.Context, ledgerID string, topic ledger.Topic, from uint64, limit int, opt ledger.ReadOptions,
	heartbeat time.Duration, stop <-chan struct{}, send func(Page) error, beat func(next uint64) error) error {
	from = max(from, 1)
	hb := time.NewTimer(heartbeat)
	defer hb.Stop()
	for {
		ch := r.store.Changed(ledgerID, topic) // before the read: no commit is missed
		p, err := r.Feed(ledgerID, topic, from, limit, opt)
		if err != nil {
			return err
		}
		if len(p.Entries) > 0 {
			// A short page reached the end of the log as it was read.
			p.TryLater = len(p.Entries) < limit
			if err := send(p); err != nil {
				return err
			}
			from = p.Next
			hb.Reset(heartbeat)
			if !p.TryLater {
				continue
			}
		}
		select {
		case <-ch:
			if !r.store.Ready() {
				return ledger.ErrClosed
			}
		case <-hb.C:
			if err := beat(from); err != nil {
				return err
			}
			hb.Reset(heartbeat)
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
