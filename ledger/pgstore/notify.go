package pgstore

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// channel is the NOTIFY channel; a payload is "ledgerId/topic" (ledger ids
// cannot hold a slash).
const channel = "ledgerfeed_append"

type watchKey struct {
	ledgerID string
	topic    ledger.Topic
}

// listen holds a dedicated connection (outside the pool) in LISTEN and wakes
// the waiters named by each notification, from this node's commits and every
// other node's. After a lost connection it wakes everyone (notifications may
// have been missed) and reconnects.
func (s *Store) listen(ctx context.Context, listening chan<- struct{}) {
	defer s.bg.Done()
	first := true
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, func() {
			if first {
				close(listening)
				first = false
			} else {
				s.watch.WakeAll()
			}
		})
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("postgres store: LISTEN connection lost; reconnecting", "err", err)
		s.watch.WakeAll()
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.poll):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, up func()) error {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	up()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		id, topic, ok := strings.Cut(n.Payload, "/")
		if !ok {
			continue
		}
		s.watch.Notify(id, ledger.Topic(topic))
	}
}

// fallbackPoll wakes every waiter each Poll: the bound on how long a lost
// notification (a LISTEN connection that died unnoticed, a server restart)
// can delay a reader. Each wake costs a waiter one Head read.
func (s *Store) fallbackPoll(ctx context.Context) {
	defer s.bg.Done()
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.watch.WakeAll()
		}
	}
}

// Changed returns a channel that is closed after the next commit (on any
// node) that appends to (ledgerID, topic) or closes one of the ledger's
// dates, when the store closes, and at the latest after Poll (the fallback:
// a caller re-reads and waits again). Take the channel first, then read.
func (s *Store) Changed(ledgerID string, topic ledger.Topic) <-chan struct{} {
	return s.watch.Wait(ledgerID, topic)
}

// WaitAppend blocks until (ledgerID, topic) holds an entry with a sequence
// greater than after, ctx ends, or the store closes. It returns the head at
// that moment.
func (s *Store) WaitAppend(ctx context.Context, ledgerID string, topic ledger.Topic, after uint64) (ledger.Head, error) {
	for {
		ch := s.Changed(ledgerID, topic)
		h, err := s.Head(ledgerID, topic)
		if err != nil || h.Sequence > after {
			return h, err
		}
		select {
		case <-ch:
			if !s.Ready() {
				return h, ledger.ErrClosed
			}
		case <-ctx.Done():
			return h, ctx.Err()
		}
	}
}
