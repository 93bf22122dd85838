package report

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// readBatch is how many entries one store read returns while writing a file.
const readBatch = 1000

// The columns of an entries file: the item JSON's fields under their JSON
// names (en) plus topic and sequence; nb has Norwegian titles.
var (
	entryColumns = []column{
		{"topic", "tema", kindText},
		{"sequence", "sekvens", kindInt},
		{"pspReference", "PSP-referanse", kindText},
		{"time", "tidspunkt", kindTime},
		{"ledgerDate", "bokføringsdato", kindDate},
		{"entryType", "posteringstype", kindText},
		{"reference", "referanse", kindText},
		{"currency", "valuta", kindText},
		{"amount", "beløp", kindAmount},
		{"balanceBefore", "saldo før", kindAmount},
		{"balanceAfter", "saldo etter", kindAmount},
		{"recipientHandle", "mottaker", kindText},
	}
	gdprColumns = []column{
		{"name", "navn", kindText},
		{"maskedPhoneNo", "maskert telefonnummer", kindText},
		{"message", "melding", kindText},
	}
)

// seqRange returns the first and last sequence of a topic log whose ledger
// dates lie in [from, to]; ok is false when there are none. Dates are
// non-decreasing along a log, so it binary-searches by sequence.
func seqRange(st ledger.EntryReader, id string, t ledger.Topic, from, to ledger.Date) (first, last uint64, ok bool, err error) {
	h, err := st.Head(id, t)
	if err != nil || h.Sequence == 0 {
		return 0, 0, false, err
	}
	// firstAt returns the first sequence whose date is ≥ d (h.Sequence+1 if none).
	firstAt := func(d ledger.Date) (uint64, error) {
		lo, hi := uint64(1), h.Sequence+1
		for lo < hi {
			mid := lo + (hi-lo)/2
			es, err := st.Entries(id, t, mid, 1, ledger.ReadOptions{})
			if err != nil {
				return 0, err
			}
			if len(es) == 0 || es[0].Sequence != mid {
				return 0, fmt.Errorf("%w: ledger %s %s: sequence %d missing", ledger.ErrDamaged, id, t, mid)
			}
			if es[0].LedgerDate >= d {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		return lo, nil
	}
	if first, err = firstAt(from); err != nil {
		return 0, 0, false, err
	}
	end, err := firstAt(to + 1)
	if err != nil {
		return 0, 0, false, err
	}
	if end <= first {
		return first, first - 1, false, nil
	}
	return first, end - 1, true, nil
}

// eachEntry calls fn for every entry of a topic with a date in [from, to],
// in sequence order, and returns the balance before the first date (the
// balance after the last earlier entry, 0 when none).
func eachEntry(ctx context.Context, st ledger.EntryReader, id string, t ledger.Topic, from, to ledger.Date, opt ledger.ReadOptions, fn func(e *ledger.Entry) error) (opening int64, err error) {
	first, last, ok, err := seqRange(st, id, t, from, to)
	if err != nil {
		return 0, err
	}
	if first > 1 {
		es, err := st.Entries(id, t, first-1, 1, ledger.ReadOptions{})
		if err != nil {
			return 0, err
		}
		if len(es) == 1 {
			opening = es[0].BalanceAfter
		}
	}
	if !ok {
		return opening, nil
	}
	// The next batch is read from the store while fn works on this one:
	// on two cores the store's read and decode overlap the formatting.
	type batch struct {
		es  []ledger.Entry
		err error
	}
	batches := make(chan batch, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(batches)
		for seq := first; seq <= last; {
			var es []ledger.Entry
			err := ctx.Err()
			if err == nil {
				es, err = st.Entries(id, t, seq, int(min(readBatch, last-seq+1)), opt)
			}
			if err == nil && len(es) == 0 {
				err = fmt.Errorf("%w: ledger %s %s: sequence %d missing", ledger.ErrDamaged, id, t, seq)
			}
			select {
			case batches <- batch{es, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
			seq = es[len(es)-1].Sequence + 1
		}
	}()
	for b := range batches {
		if b.err != nil {
			return 0, b.err
		}
		for i := range b.es {
			if err := fn(&b.es[i]); err != nil {
				return 0, err
			}
		}
	}
	return opening, nil
}

// writeEntries writes an entries file: per topic (funds first), every entry
// of the dates in append order. It returns the number of rows.
func writeEntries(ctx context.Context, st ledger.EntryReader, f *File, w tableWriter) (int64, error) {
	cols := entryColumns
	if f.GDPR {
		cols = append(slices.Clone(entryColumns), gdprColumns...)
	}
	if err := w.header(cols, f.Language); err != nil {
		return 0, err
	}
	cells := make([]cell, len(cols))
	var rows int64
	for _, t := range f.Topics {
		_, err := eachEntry(ctx, st, f.LedgerID, t, f.From, f.To, ledger.ReadOptions{GDPR: f.GDPR}, func(e *ledger.Entry) error {
			cells[0].s = string(e.Topic)
			cells[1].n = int64(e.Sequence)
			cells[2].s = e.PSPReference
			cells[3].t = e.Time
			cells[4].d = e.LedgerDate
			cells[5].s = e.EntryType
			cells[6].s = e.Reference
			cells[7].s = e.Currency
			cells[8].n = e.Amount
			cells[9].n = e.BalanceBefore
			cells[10].n = e.BalanceAfter
			cells[11].s = ""
			if e.RecipientHandle != nil {
				cells[11].s = *e.RecipientHandle
			}
			if f.GDPR {
				var g ledger.GDPR
				if e.GDPR != nil {
					g = *e.GDPR
				}
				cells[12].s, cells[13].s, cells[14].s = g.Name, g.MaskedPhoneNo, g.Message
			}
			rows++
			return w.row(cells)
		})
		if err != nil {
			return 0, err
		}
	}
	return rows, nil
}

// dateSums is one balances row in the making.
type dateSums struct {
	opening, closing int64
	count            int64
	sums             map[string]int64
}

// balanceColumns are the fixed columns of a balances file; a sum column per
// entry type found goes between opening and closing balance.
var (
	balanceLead = []column{
		{"ledgerDate", "bokføringsdato", kindDate},
		{"topic", "tema", kindText},
		{"currency", "valuta", kindText},
		{"openingBalance", "inngående saldo", kindAmount},
	}
	balanceTail = []column{
		{"closingBalance", "utgående saldo", kindAmount},
		{"entryCount", "antall posteringer", kindInt},
	}
)

// writeBalances writes a balances file: one row per ledger date and topic
// (dates ascending, funds before fees), with the opening balance, the sum
// of each entry type, the closing balance and the entry count. A date with
// no entries has its opening balance as closing balance and count 0.
func writeBalances(ctx context.Context, st ledger.EntryReader, f *File, currency string, w tableWriter) (int64, error) {
	n := int(f.To-f.From) + 1
	per := make(map[ledger.Topic][]dateSums, len(f.Topics))
	types := map[string]bool{}
	for _, t := range f.Topics {
		days := make([]dateSums, n)
		opening, err := eachEntry(ctx, st, f.LedgerID, t, f.From, f.To, ledger.ReadOptions{}, func(e *ledger.Entry) error {
			d := &days[e.LedgerDate-f.From]
			if d.count == 0 {
				d.opening = e.BalanceBefore
				d.sums = map[string]int64{}
			}
			d.count++
			d.closing = e.BalanceAfter
			s, carry := addInt64(d.sums[e.EntryType], e.Amount)
			if carry {
				return fmt.Errorf("%w: the sum of %s on %s does not fit in 64 bits", ledger.ErrInvalid, e.EntryType, e.LedgerDate)
			}
			d.sums[e.EntryType] = s
			types[e.EntryType] = true
			return nil
		})
		if err != nil {
			return 0, err
		}
		bal := opening
		for i := range days {
			if days[i].count == 0 {
				days[i].opening, days[i].closing = bal, bal
			}
			bal = days[i].closing
		}
		per[t] = days
	}
	names := make([]string, 0, len(types))
	for t := range types {
		names = append(names, t)
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(a, b) })
	cols := slices.Clone(balanceLead)
	for _, t := range names {
		cols = append(cols, column{"sum " + t, "sum " + t, kindAmount})
	}
	cols = append(cols, balanceTail...)
	if err := w.header(cols, f.Language); err != nil {
		return 0, err
	}
	cells := make([]cell, len(cols))
	var rows int64
	for i := range n {
		for _, t := range f.Topics {
			d := per[t][i]
			cells[0].d = f.From + ledger.Date(i)
			cells[1].s = string(t)
			cells[2].s = currency
			cells[3].n = d.opening
			for j, name := range names {
				cells[4+j].n = d.sums[name]
			}
			cells[4+len(names)].n = d.closing
			cells[5+len(names)].n = d.count
			rows++
			if err := w.row(cells); err != nil {
				return 0, err
			}
		}
	}
	return rows, nil
}

// addInt64 returns a+b and whether it overflowed.
func addInt64(a, b int64) (int64, bool) {
	s, _ := bits.Add64(uint64(a), uint64(b), 0)
	r := int64(s)
	return r, (a >= 0) == (b >= 0) && (r >= 0) != (a >= 0)
}
