package auth

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Audit queues an audit event to be written to the store's audit log, so
// that a read does not wait for the fsync of its own audit record. Events
// are written in batches, in the order queued. When the queue is full, or
// after Close, the event is written before Audit returns (and so may come
// before events still queued): none is dropped.
// A zero Time is set to now. A failed write is logged.
func (a *Service) Audit(ev ledger.AuditEvent) {
	if ev.Time.IsZero() {
		ev.Time = a.now().UTC()
	}
	a.audit.enqueue(ev)
}

// FlushAudit returns once every event queued before the call is durable in
// the store (or ctx ends). An admin reading the audit log right after an
// action calls it first to see that action.
func (a *Service) FlushAudit(ctx context.Context) error {
	return a.audit.flush(ctx)
}

const maxAuditBatch = 512

// auditGather is how long the writer waits for more events after the first
// of a batch (FlushAudit does not wait).
const auditGather = 5 * time.Millisecond

// auditWriter writes queued audit events in batches. Events wait in
// pending; the writer goroutine is woken once per batch (by the first event,
// a full batch, a flush or close), not once per event: a read's audit costs
// it an append under a mutex, so a commit that answers many long polls at
// once does not also switch to the writer after each answer.
type auditWriter struct {
	a     *Service
	queue int // most events pending; more are written by the caller

	mu      sync.Mutex
	closed  bool
	pending []ledger.AuditEvent
	flushes []chan struct{} // closed once the events before them are written
	wake    chan struct{}   // cap 1: the writer has something to do
	done    chan struct{}

	errMu sync.Mutex
	err   error // the first failed write
}

func (w *auditWriter) start(a *Service, queue int) {
	w.a = a
	w.queue = queue
	w.wake = make(chan struct{}, 1)
	w.done = make(chan struct{})
	go w.run()
}

func (w *auditWriter) signal() {
	select {
	case w.wake <- struct{}{}:
	default: // already signalled: the writer will look
	}
}

func (w *auditWriter) enqueue(ev ledger.AuditEvent) {
	w.mu.Lock()
	if w.closed || len(w.pending) >= w.queue {
		w.mu.Unlock()
		w.write([]ledger.AuditEvent{ev})
		return
	}
	w.pending = append(w.pending, ev)
	n := len(w.pending)
	w.mu.Unlock()
	if n == 1 || n == maxAuditBatch {
		w.signal()
	}
}

func (w *auditWriter) flush(ctx context.Context) error {
	done := make(chan struct{})
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil // close has written everything; later events are written synchronously
	}
	w.flushes = append(w.flushes, done)
	w.mu.Unlock()
	w.signal()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *auditWriter) run() {
	defer close(w.done)
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	for {
		<-w.wake
		// Gather for a moment before writing: under load, one commit (and
		// fsync) then carries many events instead of a few, which is most
		// of what an audited read costs. A flush, close or full batch
		// writes at once.
		w.mu.Lock()
		urgent := w.closed || len(w.flushes) > 0 || len(w.pending) >= maxAuditBatch
		w.mu.Unlock()
		if !urgent {
			gather.Reset(auditGather)
			select {
			case <-gather.C:
			case <-w.wake:
				gather.Stop()
			}
		}
		w.mu.Lock()
		batch, flushes, closed := w.pending, w.flushes, w.closed
		w.pending, w.flushes = nil, nil
		w.mu.Unlock()
		for len(batch) > 0 {
			n := min(len(batch), maxAuditBatch)
			w.write(batch[:n])
			batch = batch[n:]
		}
		for _, f := range flushes {
			close(f)
		}
		if closed {
			return
		}
	}
}

func (w *auditWriter) write(events []ledger.AuditEvent) {
	if len(events) == 0 {
		return
	}
	if err := w.a.store.Audit(context.Background(), events...); err != nil {
		w.a.log.Error("audit write failed", "events", len(events), "err", err)
		w.errMu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.errMu.Unlock()
	}
}

// close stops taking events into the queue and waits until the queued ones
// are written. It returns the first write failure, if any.
func (w *auditWriter) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	w.signal()
	<-w.done
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.err != nil {
		return errors.Join(errors.New("audit: some events were not written"), w.err)
	}
	return nil
}
