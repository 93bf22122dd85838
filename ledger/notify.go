package ledger

import (
	"context"
	"sync"
)

// watchKey names a (ledger, topic) whose readers are woken after a commit.
type watchKey struct {
	ledgerID string
	topic    Topic
}

// Notifier hands out channels that are closed at the next wake-up of their
// (ledger, topic). Waiters take a channel before they read, so no commit
// between the read and the wait is missed. Both stores build Changed on it;
// the zero value is ready to use.
type Notifier struct {
	mu     sync.Mutex
	chans  map[watchKey]chan struct{}
	closed bool
}

// Wait returns the channel closed at the next Notify of (ledgerID, topic),
// at WakeAll, or at once after CloseAll.
func (n *Notifier) Wait(ledgerID string, topic Topic) <-chan struct{} {
	k := watchKey{ledgerID, topic}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if n.chans == nil {
		n.chans = map[watchKey]chan struct{}{}
	}
	ch, ok := n.chans[k]
	if !ok {
		ch = make(chan struct{})
		n.chans[k] = ch
	}
	return ch
}

// Notify wakes the waiters of (ledgerID, topic).
func (n *Notifier) Notify(ledgerID string, topic Topic) {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := watchKey{ledgerID, topic}
	if ch, ok := n.chans[k]; ok {
		close(ch)
		delete(n.chans, k)
	}
}

// WakeAll wakes every waiter (they read again and wait again): for when
// wake-ups may have been missed.
func (n *Notifier) WakeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, ch := range n.chans {
		close(ch)
		delete(n.chans, k)
	}
}

// CloseAll wakes every waiter, and every later Wait returns a closed
// channel: the store is closing.
func (n *Notifier) CloseAll() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.WakeAll()
}

// Changed returns a channel that is closed after the next commit that
// appends to (ledgerID, topic) or closes one of the ledger's dates, and when
// the store closes. Take the channel first, then read: a commit between the
// two still closes it.
func (s *Store) Changed(ledgerID string, topic Topic) <-chan struct{} {
	return s.watch.Wait(ledgerID, topic)
}

// WaitAppend blocks until (ledgerID, topic) holds an entry with a sequence
// greater than after, ctx ends, or the store closes. It returns the head at
// that moment.
func (s *Store) WaitAppend(ctx context.Context, ledgerID string, topic Topic, after uint64) (Head, error) {
	for {
		ch := s.Changed(ledgerID, topic)
		h, err := s.Head(ledgerID, topic)
		if err != nil || h.Sequence > after {
			return h, err
		}
		select {
		case <-ch:
			if !s.Ready() {
				return h, ErrClosed
			}
		case <-ctx.Done():
			return h, ctx.Err()
		}
	}
}
