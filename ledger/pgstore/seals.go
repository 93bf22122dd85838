package pgstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Close times, seals and the date manifest, answered as the bbolt store
// answers them (ledger/closes.go, seals.go, manifest.go): tables closes and
// seals (migration 0004), summaries summed from entries and dates. Reads
// that look at several tables run in one REPEATABLE READ transaction, so one
// snapshot.

const insertCloses = `INSERT INTO closes (num, open_date, closed_us) SELECT $1, o, $3 FROM unnest($2::integer[]) o
	ON CONFLICT (num, open_date) DO UPDATE SET closed_us = excluded.closed_us`

// defaultManifestDays is how far before the last date a manifest starts
// when the caller names no first date (as in bbolt).
const defaultManifestDays = 30

// sealRow is a stored seal (column seals.body).
type sealRow struct {
	Seal     string              `json:"seal"`
	SealedAt time.Time           `json:"sealedAt"`
	Funds    ledger.TopicSummary `json:"funds"`
	Fees     ledger.TopicSummary `json:"fees"`
}

// ledgerState is what the reads below need of a ledger's row.
type ledgerState struct {
	l   ledger.Ledger
	num int32
}

// readView runs fn in a read-only REPEATABLE READ transaction with the
// ledger's row; an unknown ledger is ErrNotFound.
func (s *Store) readView(ctx context.Context, ledgerID string, fn func(tx pgx.Tx, st *ledgerState) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		st, err := readLedgerState(ctx, tx, ledgerID, false)
		if err != nil {
			return err
		}
		return fn(tx, st)
	})
}

// readLedgerState reads a ledger's row, locking it when lock is set.
func readLedgerState(ctx context.Context, tx pgx.Tx, ledgerID string, lock bool) (*ledgerState, error) {
	q := "SELECT num, " + ledgerCols + " FROM ledgers WHERE id = $1"
	if lock {
		q += " FOR NO KEY UPDATE"
	}
	var st ledgerState
	var (
		id       string
		config   []byte
		open     int32
		cre, upd time.Time
	)
	err := tx.QueryRow(ctx, q, ledgerID).Scan(&st.num, &id, &config, &open, &cre, &upd)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(ledgerID)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(config, &st.l); err != nil {
		return nil, fmt.Errorf("%w: ledger %s: %v", ledger.ErrDamaged, id, err)
	}
	st.l.ID, st.l.OpenDate, st.l.CreatedAt, st.l.UpdatedAt = id, ledger.Date(open), cre.UTC(), upd.UTC()
	return &st, nil
}

// ClosedAt returns when date d of a ledger closed; ok is false while it is
// open (or when it closed before this schema recorded close times).
func (s *Store) ClosedAt(ledgerID string, d ledger.Date) (t time.Time, ok bool, err error) {
	if err := s.checkOpen(); err != nil {
		return t, false, err
	}
	var (
		open int32
		us   *int64
	)
	err = s.pool.QueryRow(context.Background(), `SELECT l.open_date,
		(SELECT c.closed_us FROM closes c WHERE c.num = l.num AND c.open_date > $2 ORDER BY c.open_date LIMIT 1)
		FROM ledgers l WHERE l.id = $1`, ledgerID, int32(d)).Scan(&open, &us)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, false, notFound(ledgerID)
	}
	if err != nil || d >= ledger.Date(open) || us == nil {
		return t, false, err
	}
	return time.UnixMicro(*us).UTC(), true, nil
}

// lastSeal returns the ledger's last sealed date and its seal (0, nil: none).
func lastSeal(ctx context.Context, tx pgx.Tx, st *ledgerState) (ledger.Date, *sealRow, error) {
	var (
		d    int32
		body []byte
	)
	err := tx.QueryRow(ctx, "SELECT ledger_date, body FROM seals WHERE num = $1 ORDER BY ledger_date DESC LIMIT 1", st.num).Scan(&d, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	r, err := unmarshalSeal(body)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: seal of ledger %s date %s: %v", ledger.ErrDamaged, st.l.ID, ledger.Date(d), err)
	}
	return ledger.Date(d), r, nil
}

func unmarshalSeal(b []byte) (*sealRow, error) {
	var r sealRow
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.Seal == "" {
		return nil, errors.New("empty seal")
	}
	return &r, nil
}

// firstDate returns the ledger's first date with an entry in either topic
// (zero when it has none).
func firstDate(ctx context.Context, tx pgx.Tx, num int32) (ledger.Date, error) {
	var d *int32
	if err := tx.QueryRow(ctx, "SELECT min(ledger_date) FROM dates WHERE num = $1", num).Scan(&d); err != nil || d == nil {
		return 0, err
	}
	return ledger.Date(*d), nil
}

// Unsealed returns up to limit closed dates of a ledger that are not sealed
// yet, oldest first, with their summaries. It returns none for a ledger with
// no entries.
func (s *Store) Unsealed(ledgerID string, limit int) (ledger.SealWork, error) {
	var out ledger.SealWork
	err := s.readView(context.Background(), ledgerID, func(tx pgx.Tx, st *ledgerState) error {
		ctx := context.Background()
		out = ledger.SealWork{Ledger: st.l}
		last, prev, err := lastSeal(ctx, tx, st)
		if err != nil {
			return err
		}
		from := last + 1
		if last == 0 {
			if from, err = firstDate(ctx, tx, st.num); err != nil || from == 0 {
				return err
			}
		} else {
			out.PrevDate, out.PrevSeal = last, prev.Seal
		}
		to := min(st.l.OpenDate-1, from+ledger.Date(limit)-1)
		if from > to {
			return nil
		}
		out.Dates, err = summarize(ctx, tx, st, from, to)
		return err
	})
	return out, err
}

// PutSeals stores seals of consecutive closed dates of a ledger, in date
// order, atomically, with the bbolt store's refusals (ErrConflict, nothing
// stored): a date already sealed, not closed, or not the next to seal, or
// prev not the stored previous seal. It holds the ledger's row lock, so
// of two nodes sealing the same date one stores it and the other is
// refused.
func (s *Store) PutSeals(ctx context.Context, ledgerID, prev string, seals []ledger.Seal) error {
	if len(seals) == 0 {
		return nil
	}
	for i, sl := range seals {
		if sl.Seal == "" {
			return &ledger.FieldError{Field: fmt.Sprintf("seals[%d].seal", i), Reason: "required"}
		}
	}
	err := s.checkWrite(ctx)
	if err == nil {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			st, err := readLedgerState(ctx, tx, ledgerID, true)
			if err != nil {
				return err
			}
			last, lastRec, err := lastSeal(ctx, tx, st)
			if err != nil {
				return err
			}
			switch {
			case last == 0 && prev != "":
				return fmt.Errorf("%w: ledger %s has no seal to chain to", ledger.ErrConflict, ledgerID)
			case last != 0 && prev != lastRec.Seal:
				return fmt.Errorf("%w: ledger %s: the previous seal is not the stored seal of %s", ledger.ErrConflict, ledgerID, last)
			}
			want := last + 1
			if last == 0 {
				if want, err = firstDate(ctx, tx, st.num); err != nil {
					return err
				}
			}
			dates := make([]int32, len(seals))
			for i, sl := range seals {
				dates[i] = int32(sl.Date)
			}
			rows, err := tx.Query(ctx, "SELECT ledger_date FROM seals WHERE num = $1 AND ledger_date = ANY($2)", st.num, dates)
			if err != nil {
				return err
			}
			sealed, err := pgx.CollectRows(rows, pgx.RowTo[int32])
			if err != nil {
				return err
			}
			for _, sl := range seals {
				switch {
				case sl.Date >= st.l.OpenDate:
					return fmt.Errorf("%w: ledger %s date %s is not closed", ledger.ErrConflict, ledgerID, sl.Date)
				case slices.Contains(sealed, int32(sl.Date)):
					return fmt.Errorf("%w: ledger %s date %s is sealed already", ledger.ErrConflict, ledgerID, sl.Date)
				case sl.Date != want:
					return fmt.Errorf("%w: ledger %s date %s: the date to seal next is %s", ledger.ErrConflict, ledgerID, sl.Date, want)
				}
				want++
			}
			now := s.now().UTC()
			bodies := make([]string, len(seals))
			for i, sl := range seals {
				bodies[i] = mustJSON(sealRow{Seal: sl.Seal, SealedAt: now, Funds: sl.Funds, Fees: sl.Fees})
			}
			_, err = tx.Exec(ctx, "INSERT INTO seals (num, ledger_date, body) SELECT $1, * FROM unnest($2::integer[], $3::json[])",
				st.num, dates, bodies)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("seal ledger %s: %w", ledgerID, err)
	}
	return nil
}

// SealOf returns the stored seal of a date ("" when it has none).
func (s *Store) SealOf(ledgerID string, d ledger.Date) (string, error) {
	if err := s.checkOpen(); err != nil {
		return "", err
	}
	var body []byte
	err := s.pool.QueryRow(context.Background(), `SELECT s.body FROM ledgers l
		LEFT JOIN seals s ON s.num = l.num AND s.ledger_date = $2 WHERE l.id = $1`, ledgerID, int32(d)).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", notFound(ledgerID)
	}
	if err != nil || body == nil {
		return "", err
	}
	r, err := unmarshalSeal(body)
	if err != nil {
		return "", fmt.Errorf("%w: seal of ledger %s date %s: %v", ledger.ErrDamaged, ledgerID, d, err)
	}
	return r.Seal, nil
}

// Manifest returns the summaries of the dates from..to (inclusive) of a
// ledger, oldest first, with the bbolt store's defaults and limits: to zero
// means the open date, from zero means to minus 30 days, dates after the
// open date are left out, a range of more than ledger.MaxManifestDates
// dates or from after an explicit to is a field error.
func (s *Store) Manifest(ledgerID string, from, to ledger.Date) ([]ledger.DateSummary, error) {
	if from != 0 && to != 0 {
		if err := checkManifestRange(from, to); err != nil {
			return nil, err
		}
	}
	var out []ledger.DateSummary
	err := s.readView(context.Background(), ledgerID, func(tx pgx.Tx, st *ledgerState) error {
		open := st.l.OpenDate
		last := to
		if last == 0 {
			last = open
			if last == 0 || from > last {
				out = []ledger.DateSummary{}
				return nil
			}
		}
		first := from
		if first == 0 {
			first = max(last-defaultManifestDays, 1)
		}
		if err := checkManifestRange(first, last); err != nil {
			return err
		}
		last = min(last, open)
		if first > last {
			out = []ledger.DateSummary{}
			return nil
		}
		var err error
		out, err = summarize(context.Background(), tx, st, first, last)
		return err
	})
	return out, err
}

func checkManifestRange(from, to ledger.Date) error {
	switch {
	case from > to:
		return &ledger.FieldError{Field: "fromLedgerDate", Reason: fmt.Sprintf("%s is after toLedgerDate %s", from, to)}
	case to-from+1 > ledger.MaxManifestDates:
		return &ledger.FieldError{Field: "toLedgerDate", Reason: fmt.Sprintf("the range %s–%s has %d dates; at most %d", from, to, to-from+1, ledger.MaxManifestDates)}
	}
	return nil
}

// topicWalk is a topic's state at the end of the dates summed so far.
type topicWalk struct {
	balance int64
	digest  string // hex; "" before the first entry
}

// summarize sums up the dates from..to (to ≤ the open date) of a ledger, from
// seal rows where there are some and from the entries otherwise.
func summarize(ctx context.Context, tx pgx.Tx, st *ledgerState, from, to ledger.Date) ([]ledger.DateSummary, error) {
	cal, err := st.l.Calendar()
	if err != nil {
		return nil, fmt.Errorf("%w: ledger %s: %v", ledger.ErrDamaged, st.l.ID, err)
	}
	// The state of each topic after its last entry dated before from.
	var walks [2]topicWalk
	for i, t := range ledger.Topics {
		var (
			after int64
			hash  []byte
		)
		err := tx.QueryRow(ctx, `SELECT e.balance_after, e.hash FROM dates d JOIN entries e ON e.num = d.num AND e.topic = d.topic AND e.seq = d.last_seq
			WHERE d.num = $1 AND d.topic = $2 AND d.ledger_date < $3 ORDER BY d.ledger_date DESC LIMIT 1`,
			st.num, topicCode(t), int32(from)).Scan(&after, &hash)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return nil, err
		default:
			walks[i] = topicWalk{balance: after, digest: hex.EncodeToString(hash)}
		}
	}
	// Seals, date rows and close moves of the range.
	seals := map[ledger.Date]*sealRow{}
	rows, err := tx.Query(ctx, "SELECT ledger_date, body FROM seals WHERE num = $1 AND ledger_date BETWEEN $2 AND $3", st.num, int32(from), int32(to))
	if err != nil {
		return nil, err
	}
	var (
		d32  int32
		body []byte
	)
	if _, err := pgx.ForEachRow(rows, []any{&d32, &body}, func() error {
		r, err := unmarshalSeal(body)
		if err != nil {
			return fmt.Errorf("%w: seal of ledger %s date %s: %v", ledger.ErrDamaged, st.l.ID, ledger.Date(d32), err)
		}
		seals[ledger.Date(d32)] = r
		return nil
	}); err != nil {
		return nil, err
	}
	type span struct{ first, last int64 }
	spans := map[ledger.Topic]map[ledger.Date]span{ledger.TopicFunds: {}, ledger.TopicFees: {}}
	lo := map[ledger.Topic]int64{}
	hi := map[ledger.Topic]int64{}
	rows, err = tx.Query(ctx, "SELECT topic, ledger_date, first_seq, last_seq FROM dates WHERE num = $1 AND ledger_date BETWEEN $2 AND $3",
		st.num, int32(from), int32(to))
	if err != nil {
		return nil, err
	}
	var (
		tc          int16
		first, last int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&tc, &d32, &first, &last}, func() error {
		t := ledger.TopicFunds
		if tc == 2 {
			t = ledger.TopicFees
		}
		spans[t][ledger.Date(d32)] = span{first, last}
		if seals[ledger.Date(d32)] == nil { // only unsealed dates are summed from entries
			if lo[t] == 0 || first < lo[t] {
				lo[t] = first
			}
			hi[t] = max(hi[t], last)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	type closeMove struct {
		open ledger.Date
		us   int64
	}
	var moves []closeMove
	rows, err = tx.Query(ctx, "SELECT open_date, closed_us FROM closes WHERE num = $1 AND open_date > $2 ORDER BY open_date LIMIT $3",
		st.num, int32(from), int64(to-from)+2)
	if err != nil {
		return nil, err
	}
	var us int64
	if _, err := pgx.ForEachRow(rows, []any{&d32, &us}, func() error {
		moves = append(moves, closeMove{ledger.Date(d32), us})
		return nil
	}); err != nil {
		return nil, err
	}
	// The entries of the unsealed dates, per topic in sequence order.
	type entryRow struct {
		seq           int64
		etype         string
		amount        int64
		before, after int64
		hash          []byte
	}
	entries := map[ledger.Topic][]entryRow{}
	for _, t := range ledger.Topics {
		if lo[t] == 0 {
			continue
		}
		rows, err := tx.Query(ctx, `SELECT seq, entry_type, amount, balance_before, balance_after, hash FROM entries
			WHERE num = $1 AND topic = $2 AND seq BETWEEN $3 AND $4 ORDER BY seq`, st.num, topicCode(t), lo[t], hi[t])
		if err != nil {
			return nil, err
		}
		var e entryRow
		if _, err := pgx.ForEachRow(rows, []any{&e.seq, &e.etype, &e.amount, &e.before, &e.after, &e.hash}, func() error {
			entries[t] = append(entries[t], e)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	out := make([]ledger.DateSummary, 0, to-from+1)
	mi := 0
	for d := from; d <= to; d++ {
		ds := ledger.DateSummary{Date: d, Closed: d < st.l.OpenDate, Start: cal.Start(d).UTC(), End: cal.End(d).UTC()}
		if ds.Closed {
			for mi < len(moves) && moves[mi].open <= d {
				mi++
			}
			if mi < len(moves) {
				ds.ClosedAt = time.UnixMicro(moves[mi].us).UTC()
			}
		}
		if sr := seals[d]; sr != nil {
			ds.Funds, ds.Fees, ds.Seal, ds.SealedAt = sr.Funds, sr.Fees, sr.Seal, sr.SealedAt
		} else {
			for i, t := range ledger.Topics {
				prev := walks[i]
				ts := ledger.TopicSummary{OpeningBalance: prev.balance, ClosingBalance: prev.balance, Digest: prev.digest}
				if sp, ok := spans[t][d]; ok {
					ts.FirstSequence, ts.LastSequence = uint64(sp.first), uint64(sp.last)
					all := entries[t]
					k, _ := slices.BinarySearchFunc(all, sp.first, func(e entryRow, seq int64) int { return int(e.seq - seq) })
					sums := map[string]*ledger.EntryTypeSum{}
					want := sp.first
					for ; k < len(all) && all[k].seq <= sp.last; k++ {
						e := &all[k]
						if e.seq != want {
							break
						}
						want++
						if e.seq == sp.first {
							ts.OpeningBalance = e.before
						}
						ts.EntryCount++
						s := sums[e.etype]
						if s == nil {
							s = &ledger.EntryTypeSum{EntryType: e.etype}
							sums[e.etype] = s
						}
						s.Count++
						var err error
						if s.Amount, err = ledger.AddToBalance(0, t, s.Amount, e.amount); err != nil {
							return nil, fmt.Errorf("%w: ledger %s %s date %s: the sum of %s amounts overflows int64", ledger.ErrConflict, st.l.ID, t, d, e.etype)
						}
						ts.ClosingBalance = e.after
						ts.Digest = hex.EncodeToString(e.hash)
					}
					if want != sp.last+1 {
						return nil, fmt.Errorf("%w: ledger %s %s sequence %d missing", ledger.ErrDamaged, st.l.ID, t, want)
					}
					ts.EntryTypes = make([]ledger.EntryTypeSum, 0, len(sums))
					for _, s := range sums {
						ts.EntryTypes = append(ts.EntryTypes, *s)
					}
					slices.SortFunc(ts.EntryTypes, func(a, b ledger.EntryTypeSum) int { return strings.Compare(a.EntryType, b.EntryType) })
				}
				*ds.Topic(t) = ts
			}
		}
		for i, t := range ledger.Topics {
			ts := ds.Topic(t)
			walks[i] = topicWalk{balance: ts.ClosingBalance, digest: ts.Digest}
		}
		out = append(out, ds)
	}
	return out, nil
}
