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

type auditItem struct {
	ev    ledger.AuditEvent
	flush chan struct{} // set on a flush marker instead of an event
}

type auditWriter struct {
	a *Service

	mu     sync.RWMutex // held for writing only to close ch
	closed bool
	ch     chan auditItem
	done   chan struct{}

	errMu sync.Mutex
	err   error // the first failed write
}

func (w *auditWriter) start(a *Service, queue int) {
	w.a = a
	w.ch = make(chan auditItem, queue)
	w.done = make(chan struct{})
	go w.run()
}

func (w *auditWriter) enqueue(ev ledger.AuditEvent) {
	w.mu.RLock()
	if !w.closed {
		select {
		case w.ch <- auditItem{ev: ev}:
			w.mu.RUnlock()
			return
		default:
		}
	}
	w.mu.RUnlock()
	w.write([]ledger.AuditEvent{ev})
}

func (w *auditWriter) flush(ctx context.Context) error {
	done := make(chan struct{})
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return nil // Close has written everything; later events are written synchronously
	}
	select {
	case w.ch <- auditItem{flush: done}:
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	w.mu.RUnlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *auditWriter) run() {
	defer close(w.done)
	batch := make([]ledger.AuditEvent, 0, maxAuditBatch)
	var flushes []chan struct{}
	add := func(it auditItem) {
		if it.flush != nil {
			flushes = append(flushes, it.flush)
		} else {
			batch = append(batch, it.ev)
		}
	}
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	for it := range w.ch {
		add(it)
		// Gather for a moment before writing: under load, one commit (and
		// fsync) then carries many events instead of a few, which is most
		// of what an audited read costs. A flush request writes at once.
		gather.Reset(auditGather)
	wait:
		for len(batch) < maxAuditBatch && len(flushes) == 0 {
			select {
			case it, ok := <-w.ch:
				if !ok {
					break wait
				}
				add(it)
			case <-gather.C:
				break wait
			}
		}
		gather.Stop()
	more:
		for len(batch) < maxAuditBatch {
			select {
			case it, ok := <-w.ch:
				if !ok {
					break more
				}
				add(it)
			default:
				break more
			}
		}
		w.write(batch)
		for _, f := range flushes {
			close(f)
		}
		batch, flushes = batch[:0], flushes[:0]
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
	close(w.ch)
	w.mu.Unlock()
	<-w.done
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.err != nil {
		return errors.Join(errors.New("audit: some events were not written"), w.err)
	}
	return nil
}
