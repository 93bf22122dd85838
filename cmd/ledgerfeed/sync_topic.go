package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ledgerfeed/ledgerfeed/client"
)

// syncCSVHeader is the first line of every date file. Amounts and balances
// are integers in minor units; recipientHandle and the GDPR fields are
// empty when absent; time is UTC with six fraction digits, as on the wire.
var syncCSVHeader = []string{"sequence", "pspReference", "time", "ledgerDate", "entryType", "reference", "currency",
	"amount", "balanceBefore", "balanceAfter", "recipientHandle", "name", "maskedPhoneNo", "message"}

// topicSync mirrors one (ledger, topic) feed into date files.
type topicSync struct {
	s         *syncer
	id, topic string
	st        *topicState // working state, ahead of the committed one until flush
	files     map[string]*dateFile
	buffered  int    // rows waiting in files
	written   int64  // entries written by this run
	committed string // the cursor last committed
}

// dateFile is one date's CSV file: what is on disk and what waits.
type dateFile struct {
	path   string
	onDisk int64 // sequence of the last row on disk (0: none)
	buf    bytes.Buffer
	csv    *csv.Writer
	last   int64 // sequence of the last row in buf
	rows   int   // rows in buf
}

func (ts *topicSync) dir() string { return filepath.Join(ts.s.cfg.dir, ts.id, ts.topic) }

// run follows the feed from the committed cursor until the end of the log
// (once) or until ctx ends, writing rows and committing state at each flush.
func (ts *topicSync) run(ctx context.Context, once bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type fetched struct {
		p   *client.FeedPage
		err error
	}
	// The next pages are fetched while this one is written.
	pages := make(chan fetched, 4)
	go func() {
		defer close(pages)
		req := client.FeedRequest{LedgerID: ts.id, Topic: ts.topic, Cursor: ts.st.Cursor, PageSize: ts.s.cfg.pageSize, GDPR: ts.s.cfg.gdpr}
		for {
			p, err := ts.s.c.GetFeed(ctx, req)
			select {
			case pages <- fetched{p, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || (once && p.TryLater) {
				return
			}
			if p.Cursor != "" {
				req.Cursor = p.Cursor
			}
			req.Wait = 0
			if p.TryLater {
				req.Wait = ts.s.cfg.wait
			}
		}
	}()
	for f := range pages {
		if f.err != nil {
			if ctx.Err() != nil && !once {
				return ts.flush(context.WithoutCancel(ctx))
			}
			ferr := ts.flush(context.WithoutCancel(ctx))
			return errors.Join(f.err, ferr)
		}
		if err := ts.add(f.p); err != nil {
			return err
		}
		if f.p.TryLater || ts.buffered >= ts.s.cfg.flushRows {
			if err := ts.flush(ctx); err != nil {
				return err
			}
		}
		if once && f.p.TryLater {
			return nil
		}
	}
	return ts.flush(context.WithoutCancel(ctx))
}

// add takes one page: checks and numbers its entries and buffers their
// rows; rows already on disk (after a crash) are skipped.
func (ts *topicSync) add(p *client.FeedPage) error {
	for i := range p.Items {
		e := &p.Items[i]
		if err := ts.st.Chain.Add(e); err != nil {
			return err
		}
		seq := ts.st.Chain.Sequence
		ts.sum(e, seq)
		f, err := ts.file(e.LedgerDate)
		if err != nil {
			return err
		}
		if seq <= f.onDisk {
			continue
		}
		switch {
		case f.last != 0 && seq != f.last+1, f.last == 0 && f.onDisk != 0 && seq != f.onDisk+1:
			return fmt.Errorf("%s: sequence %d after %d: a gap (was the file edited?)", f.path, seq, max(f.last, f.onDisk))
		case f.last == 0 && f.onDisk == 0 && seq != ts.st.Dates[len(ts.st.Dates)-1].FirstSequence:
			return fmt.Errorf("%s: missing, but rows up to sequence %d of its date were written (remove %s to sync afresh)", f.path, seq-1, statePath(ts.s.cfg.dir))
		}
		f.csv.Write(entryRow(seq, e))
		f.last = seq
		f.rows++
		ts.buffered++
	}
	if p.Cursor != "" {
		ts.st.Cursor = p.Cursor
	}
	return nil
}

// sum adds entry seq (already in Chain) to its date's summary.
func (ts *topicSync) sum(e *client.Entry, seq int64) {
	n := len(ts.st.Dates)
	if n == 0 || ts.st.Dates[n-1].Date != e.LedgerDate {
		ts.st.Dates = append(ts.st.Dates, dateSum{Date: e.LedgerDate, TopicSummary: client.TopicSummary{
			FirstSequence: seq, OpeningBalance: e.BalanceBefore,
		}})
		n++
	}
	d := &ts.st.Dates[n-1]
	d.EntryCount++
	d.LastSequence, d.ClosingBalance, d.Digest = seq, e.BalanceAfter, ts.st.Chain.Digest
}

func entryRow(seq int64, e *client.Entry) []string {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return []string{
		strconv.FormatInt(seq, 10), e.PSPReference, e.Time.UTC().Format(client.TimeFormat), e.LedgerDate, e.EntryType,
		e.Reference, e.Currency, strconv.FormatInt(e.Amount, 10), strconv.FormatInt(e.BalanceBefore, 10),
		strconv.FormatInt(e.BalanceAfter, 10), str(e.RecipientHandle), str(e.Name), str(e.MaskedPhoneNo), str(e.Message),
	}
}

// file returns the date file of date, reading the sequence of its last row
// when it is first used.
func (ts *topicSync) file(date string) (*dateFile, error) {
	if f := ts.files[date]; f != nil {
		return f, nil
	}
	if _, err := time.Parse("2006-01-02", date); err != nil {
		return nil, fmt.Errorf("%s %s: the server sent ledgerDate %q", ts.id, ts.topic, date)
	}
	f := &dateFile{path: filepath.Join(ts.dir(), date+".csv")}
	f.csv = csv.NewWriter(&f.buf)
	last, err := lastSequence(f.path)
	if err != nil {
		return nil, err
	}
	f.onDisk = last
	if ts.files == nil {
		ts.files = map[string]*dateFile{}
	}
	ts.files[date] = f
	return f, nil
}

// lastSequence returns the sequence of the last row of a date file (0 when
// it does not exist or has only its header).
func lastSequence(path string) (int64, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.ReuseRecord = true
	r.FieldsPerRecord = len(syncCSVHeader)
	var last int64
	for line := 0; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return last, nil
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		if line == 0 {
			continue
		}
		if last, err = strconv.ParseInt(rec[0], 10, 64); err != nil {
			return 0, fmt.Errorf("%s: line %d: sequence %q", path, line+1, rec[0])
		}
	}
}

// flush writes every buffered row (run flushes when --flush-rows are
// waiting, at the end of the log and when it stops) (each date file replaced atomically),
// then commits the working state.
func (ts *topicSync) flush(ctx context.Context) error {
	written := 0
	var lastDate string
	for date, f := range ts.files {
		if date > lastDate {
			lastDate = date
		}
		f.csv.Flush()
		if err := f.csv.Error(); err != nil {
			return err
		}
		if f.buf.Len() == 0 {
			continue
		}
		old, err := os.Open(f.path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		err = writeAtomic(f.path, old, func(w io.Writer) error {
			if old == nil {
				cw := csv.NewWriter(w)
				cw.Write(syncCSVHeader)
				cw.Flush()
				if err := cw.Error(); err != nil {
					return err
				}
			}
			_, err := w.Write(f.buf.Bytes())
			return err
		})
		if old != nil {
			old.Close()
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
		written += f.rows
		f.onDisk, f.last, f.rows = f.last, 0, 0
		f.buf.Reset()
	}
	// Earlier dates get no more entries (a date's entries are contiguous).
	for date := range ts.files {
		if date != lastDate {
			delete(ts.files, date)
		}
	}
	ts.buffered = 0
	ts.written += int64(written)
	if ts.st.Cursor == ts.committed {
		return nil // nothing new: the state file stays as it is
	}
	if err := ts.s.commit(ctx, ts, written); err != nil {
		return err
	}
	ts.committed = ts.st.Cursor
	return nil
}
