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

// notifier hands out channels that are closed at the next commit touching
// their key. Waiters take a channel before they read, so no commit between
// the read and the wait is missed.
type notifier struct {
	mu     sync.Mutex
	chans  map[watchKey]chan struct{}
	closed bool
}

func (n *notifier) wait(k watchKey) <-chan struct{} {
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

func (n *notifier) notify(k watchKey) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ch, ok := n.chans[k]; ok {
		close(ch)
		delete(n.chans, k)
	}
}

func (n *notifier) closeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for k, ch := range n.chans {
		close(ch)
		delete(n.chans, k)
	}
}

// Changed returns a channel that is closed after the next commit that
// appends to (ledgerID, topic) or closes one of the ledger's dates, and when
// the store closes. Take the channel first, then read: a commit between the
// two still closes it.
func (s *Store) Changed(ledgerID string, topic Topic) <-chan struct{} {
	return s.watch.wait(watchKey{ledgerID, topic})
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
