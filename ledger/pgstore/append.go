package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Append appends a batch of entries to one topic of a ledger, atomically and
// idempotently, with exactly the bbolt store's semantics (ledger.Store.Append):
// an entry whose entryId is already stored with the same content is
// acknowledged as a duplicate and not posted again; one with other content
// fails the whole batch with ErrConflict naming the field; nothing of a
// failed batch is written. The call returns after the batch's transaction
// has committed (synchronous_commit on: flushed to the WAL on disk).
//
// Concurrent Appends to one ledger on this node are committed together in
// one transaction (group commit): each is planned against the state the
// ones before it leave, and one that fails does not fail the others. Across
// nodes, the ledger's row lock serializes the transactions (read.go says why
// that keeps readers from seeing gaps).
func (s *Store) Append(ctx context.Context, ledgerID string, topic ledger.Topic, in []ledger.EntryInput) (ledger.AppendResult, error) {
	if _, err := ledger.ParseTopic(string(topic)); err != nil {
		return ledger.AppendResult{}, err
	}
	norm, gdpr, err := ledger.NormalizeBatch(in, s.now())
	if err != nil {
		return ledger.AppendResult{}, err
	}
	r := &appendReq{topic: topic, in: norm, gdpr: gdpr, done: make(chan struct{})}
	if err := ctx.Err(); err != nil {
		return ledger.AppendResult{}, err
	}
	if err := s.checkOpen(); err != nil {
		return ledger.AppendResult{}, err
	}
	// Once queued, the caller waits for the outcome even if ctx ends, so the
	// answer always says what happened.
	s.enqueue(ledgerID, r)
	<-r.done
	if r.err != nil {
		return ledger.AppendResult{}, fmt.Errorf("append %s/%s: %w", ledgerID, topic, r.err)
	}
	return r.res, nil
}

type appendReq struct {
	topic ledger.Topic
	in    []ledger.EntryInput // normalized
	gdpr  []ledger.GDPR
	res   ledger.AppendResult
	err   error
	done  chan struct{}
}

// group holds a ledger's appends waiting for the next commit; while one
// runs, the next ones gather.
type group struct {
	mu      sync.Mutex
	pending []*appendReq
	running bool
}

const maxGroupEntries = 20000

func (s *Store) enqueue(ledgerID string, r *appendReq) {
	v, _ := s.groups.LoadOrStore(ledgerID, &group{})
	g := v.(*group)
	g.mu.Lock()
	g.pending = append(g.pending, r)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead {
		go s.lead(ledgerID, g)
	}
}

// lead commits g's pending appends, a group at a time, until none is left.
func (s *Store) lead(ledgerID string, g *group) {
	for {
		g.mu.Lock()
		n, entries := 0, 0
		for n < len(g.pending) && (n == 0 || entries+len(g.pending[n].in) <= maxGroupEntries) {
			entries += len(g.pending[n].in)
			n++
		}
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		if n == 0 {
			g.running = false
			g.pending = nil
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		s.commit(ledgerID, batch)
		for _, r := range batch {
			close(r.done)
		}
	}
}

// commit runs one group; when the transaction itself fails (not one
// request's rule), it retries each request alone so one cannot sink others.
func (s *Store) commit(ledgerID string, reqs []*appendReq) {
	err := s.tryCommit(ledgerID, reqs)
	if err == nil {
		return
	}
	if len(reqs) == 1 {
		reqs[0].err = err
		return
	}
	s.log.Warn("postgres store: group commit failed; committing one by one", "requests", len(reqs), "err", err)
	for _, r := range reqs {
		r.res, r.err = ledger.AppendResult{}, nil
		if err := s.tryCommit(ledgerID, []*appendReq{r}); err != nil {
			r.err = err
		}
	}
}

// topicState is a topic log's head as of the group's planned writes.
type topicState struct {
	seq     uint64
	balance int64
	hash    [32]byte
	date    ledger.Date
}

type idKey struct {
	topic int16
	id    string
}

// known is an entry already stored, or planned earlier in this group.
type known struct {
	e    ledger.Entry
	gdpr *ledger.GDPR // nil: none posted, or erased (e.HasGDPR says which)
}

// rows accumulates the group's new rows as column arrays for unnest.
type rows struct {
	topic     []int16
	seq       []int64
	entryID   []string
	psp       []string
	timeUS    []int64
	date      []int32
	etype     []string
	ref       []string
	amount    []int64
	before    []int64
	after     []int64
	handle    []*string
	hash      [][]byte
	hasGDPR   []bool
	gTopic    []int16
	gSeq      []int64
	gSealed   [][]byte
	gKey      [][]byte
	dTopic    []int16
	dDate     []int32
	dFirst    []int64
	dLast     []int64
	dateIndex map[dateKey]int
}

type dateKey struct {
	topic int16
	date  ledger.Date
}

const lockLedger = `SELECT num, currency, time_zone, cutoff, open_date, has_entries FROM ledgers WHERE id = $1 FOR NO KEY UPDATE`

// tryCommit commits one group. It first assumes that none of the group's
// entry ids is stored yet (the usual case: reposts are retries after a lost
// answer) and skips reading them: entry_ids' primary key still refuses any
// stored one, which aborts the whole transaction with nothing written, and
// the group is then planned again, this time against the stored entries it
// names. A group that refuses a request is planned again the same way,
// since a refusal may concern a repost. Skipping the read saves an index
// probe per entry, about a tenth of a 1000-entry batch's database time.
func (s *Store) tryCommit(ledgerID string, reqs []*appendReq) error {
	err := s.tryCommitMode(ledgerID, reqs, false)
	if errors.Is(err, errReadIDs) || isStoredIDConflict(err) {
		err = s.tryCommitMode(ledgerID, reqs, true)
	}
	return err
}

// errReadIDs rolls back a group planned without reading its stored ids
// that refused a request: it is planned again knowing them.
var errReadIDs = errors.New("pgstore: plan again with the stored entry ids")

// isStoredIDConflict reports whether err is entry_ids' primary key refusing
// an entry id that is stored already.
func isStoredIDConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "entry_ids_pkey"
}

// tryCommitMode commits one group; readIDs says whether to read the stored
// entries the group's entry ids name (see tryCommit).
func (s *Store) tryCommitMode(ledgerID string, reqs []*appendReq, readIDs bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var touched []watchKey
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		touched = touched[:0]
		var ids []string // of both topics: the few stored under the other topic are read and ignored
		for _, r := range reqs {
			r.res, r.err = ledger.AppendResult{}, nil
			if readIDs {
				for _, e := range r.in {
					ids = append(ids, e.EntryID)
				}
			}
		}
		// One round trip: lock the ledger row (every later statement of this
		// READ COMMITTED transaction then sees whatever committed before the
		// lock was granted), read both heads and the stored entries whose
		// entryIds the group posts.
		b := &pgx.Batch{}
		var (
			num                    int32
			currency, zone, cutoff string
			open32                 int32
			hasEntries             bool
		)
		var lockErr error
		b.Queue(lockLedger, ledgerID).QueryRow(func(row pgx.Row) error {
			lockErr = row.Scan(&num, &currency, &zone, &cutoff, &open32, &hasEntries)
			return nil
		})
		heads := map[int16]*topicState{}
		b.Queue(`SELECT h.topic, h.seq, h.balance, h.hash, h.ledger_date FROM heads h JOIN ledgers l ON l.num = h.num WHERE l.id = $1`, ledgerID).
			Query(func(rs pgx.Rows) error {
				for rs.Next() {
					var t int16
					var seq int64
					var hash []byte
					var date int32
					st := &topicState{}
					if err := rs.Scan(&t, &seq, &st.balance, &hash, &date); err != nil {
						return err
					}
					st.seq, st.date = uint64(seq), ledger.Date(date)
					copy(st.hash[:], hash)
					heads[t] = st
				}
				return rs.Err()
			})
		// Entry ids already stored: the entry_ids index alone answers.
		var dupTopics []int16
		var dupSeqs []int64
		if readIDs {
			b.Queue(`SELECT topic, seq FROM entry_ids WHERE entry_id = ANY($2::text[])
			AND num = (SELECT num FROM ledgers WHERE id = $1)`, ledgerID, ids).
				Query(func(rs pgx.Rows) error {
					for rs.Next() {
						var t int16
						var seq int64
						if err := rs.Scan(&t, &seq); err != nil {
							return err
						}
						dupTopics, dupSeqs = append(dupTopics, t), append(dupSeqs, seq)
					}
					return rs.Err()
				})
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if errors.Is(lockErr, pgx.ErrNoRows) {
			for _, r := range reqs {
				r.err = notFound(ledgerID)
			}
			return nil
		}
		if lockErr != nil {
			return lockErr
		}
		stored := map[idKey]*known{}
		if len(dupSeqs) > 0 {
			// Reposts (retries): read the stored entries to compare.
			rs, err := tx.Query(ctx, `SELECT q.t, `+entryCols+`, g.sealed, k.key
				FROM unnest($2::smallint[], $3::bigint[]) q(t, s)
				CROSS JOIN LATERAL (SELECT * FROM entries WHERE num = $1 AND topic = q.t AND seq = q.s LIMIT 1) e
				LEFT JOIN gdpr g ON g.num = e.num AND g.topic = e.topic AND g.seq = e.seq
				LEFT JOIN gdpr_keys k ON k.num = e.num AND k.topic = e.topic AND k.seq = e.seq`, num, dupTopics, dupSeqs)
			if err != nil {
				return err
			}
			for rs.Next() {
				var t int16
				k := &known{}
				sealed, key, err := scanEntry(prefixRow{rs, []any{&t}}, &k.e, true)
				if err != nil {
					rs.Close()
					return err
				}
				k.e.LedgerID, k.e.Topic, k.e.Currency = ledgerID, topicOfCode(t), currency
				if k.gdpr, err = openEntryGDPR(&k.e, num, sealed, key); err != nil {
					rs.Close()
					return err
				}
				stored[idKey{t, k.e.EntryID}] = k
			}
			rs.Close()
			if err := rs.Err(); err != nil {
				return err
			}
		}
		cal, err := (&ledger.Ledger{TimeZone: zone, Cutoff: cutoff}).Calendar()
		if err != nil {
			return fmt.Errorf("%w: ledger %s: %v", ledger.ErrDamaged, ledgerID, err)
		}
		if heads[1] == nil || heads[2] == nil {
			return fmt.Errorf("%w: ledger %s has no head rows", ledger.ErrDamaged, ledgerID)
		}
		open := ledger.Date(open32)
		origOpen := open
		w := &rows{dateIndex: map[dateKey]int{}}
		appended := false
		var moves []int32 // the open dates moved to, for the closes table
		for _, r := range reqs {
			st := *heads[topicCode(r.topic)]
			newOpen, err := s.plan(r, ledgerID, currency, num, cal, open, &st, stored, w)
			var ab abortError
			if errors.As(err, &ab) {
				return ab.err // w may hold part of r: the whole group rolls back
			}
			if err != nil {
				if !readIDs {
					// The refusal may be wrong: a repost of a stored entry
					// is acknowledged, not checked as new (e.g. against
					// its date, closed since). Plan again knowing them.
					return errReadIDs
				}
				r.err = err
				continue
			}
			if newOpen != open && open != 0 { // dates before the first never opened: not closed
				moves = append(moves, int32(newOpen))
			}
			open = newOpen
			if r.res.Appended > 0 {
				*heads[topicCode(r.topic)] = st
				touched = append(touched, watchKey{ledgerID, r.topic})
				appended = true
			}
		}
		if !appended && open == origOpen {
			return nil // nothing to write: duplicates and refusals only
		}
		// One round trip for every write of the group.
		wb := &pgx.Batch{}
		if len(w.seq) >= copyRows {
			// COPY is the fastest way in for many rows; it is its own round trip.
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"entries"}, entryColNames, w.copySource(num)); err != nil {
				return err
			}
		} else if len(w.seq) > 0 {
			wb.Queue(`INSERT INTO entries (num, topic, seq, entry_id, psp_reference, time_us, ledger_date, entry_type,
				reference, amount, balance_before, balance_after, recipient_handle, hash, has_gdpr)
				SELECT $1, * FROM unnest($2::smallint[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::integer[],
					$8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::text[], $14::bytea[], $15::boolean[])`,
				num, w.topic, w.seq, w.entryID, w.psp, w.timeUS, w.date, w.etype, w.ref, w.amount, w.before, w.after, w.handle, w.hash, w.hasGDPR)
		}
		if len(w.seq) > 0 {
			wb.Queue(`INSERT INTO entry_ids (entry_id, num, topic, seq) SELECT e, $1, t, s FROM unnest($2::text[], $3::smallint[], $4::bigint[]) x(e, t, s)`,
				num, w.entryID, w.topic, w.seq)
		}
		if len(w.gSeq) > 0 {
			wb.Queue(`INSERT INTO gdpr (num, topic, seq, sealed) SELECT $1, * FROM unnest($2::smallint[], $3::bigint[], $4::bytea[])`,
				num, w.gTopic, w.gSeq, w.gSealed)
			wb.Queue(`INSERT INTO gdpr_keys (num, topic, seq, key) SELECT $1, * FROM unnest($2::smallint[], $3::bigint[], $4::bytea[])`,
				num, w.gTopic, w.gSeq, w.gKey)
		}
		if len(w.dDate) > 0 {
			wb.Queue(`INSERT INTO dates (num, topic, ledger_date, first_seq, last_seq)
				SELECT $1, * FROM unnest($2::smallint[], $3::integer[], $4::bigint[], $5::bigint[])
				ON CONFLICT (num, topic, ledger_date) DO UPDATE SET last_seq = EXCLUDED.last_seq`,
				num, w.dTopic, w.dDate, w.dFirst, w.dLast)
		}
		for t, st := range heads {
			wb.Queue(`UPDATE heads SET seq = $3, balance = $4, hash = $5, ledger_date = $6 WHERE num = $1 AND topic = $2 AND seq <> $3`,
				num, t, int64(st.seq), st.balance, st.hash[:], int32(st.date))
		}
		if appended && !hasEntries {
			wb.Queue(`UPDATE ledgers SET has_entries = true WHERE num = $1`, num)
		}
		if open != origOpen {
			now := s.now().UTC().Truncate(time.Microsecond)
			wb.Queue(`UPDATE ledgers SET open_date = $2, updated_at = $3 WHERE num = $1`, num, int32(open), now)
			if len(moves) > 0 {
				wb.Queue(insertCloses, num, moves, now.UnixMicro())
			}
			touched = append(touched, bothTopics(ledgerID)...)
		}
		payloads := make([]string, len(touched))
		for i, k := range touched {
			payloads[i] = k.ledgerID + "/" + string(k.topic)
		}
		if len(payloads) > 0 {
			wb.Queue("SELECT pg_notify('"+channel+"', p) FROM (SELECT DISTINCT unnest($1::text[]) p) x", payloads)
		}
		return tx.SendBatch(ctx, wb).Close()
	})
	if err != nil {
		return err
	}
	s.wakeLocal(touched)
	n := 0
	for _, r := range reqs {
		n += r.res.Appended
	}
	s.countAppended(n)
	return nil
}

// countAppended triggers an ANALYZE of the store's tables when the entries
// this Store appended since Open cross 1000, 10,000, 100,000 … (counted in
// requests' entries). The planner needs statistics that say a log is long
// and references are selective, or it scans whole logs; autovacuum gathers
// them too, but only a minute or more later and after 10% growth, so a
// fresh database being filled would run without them.
func (s *Store) countAppended(n int) {
	total := s.appended.Add(int64(n))
	next := s.analyzeAt.Load()
	if total < next || !s.Ready() || !s.analyzeAt.CompareAndSwap(next, next*10) {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := s.pool.Exec(ctx, "ANALYZE ledgers, heads, entries, entry_ids, dates, gdpr, gdpr_keys"); err != nil && s.Ready() {
			s.log.Warn("postgres store: analyze", "err", err)
		}
	}()
}

func topicOfCode(t int16) ledger.Topic {
	if t == 2 {
		return ledger.TopicFees
	}
	return ledger.TopicFunds
}

// plan decides the fate of each entry of r against st (the topic's head as
// of the group so far), the open date and the known entries, as the bbolt
// store's append does. On success it fills r.res, adds r's new rows to w and
// its entries to stored, advances st and returns the new open date; on
// failure it changes nothing but st (which the caller discards).
func (s *Store) plan(r *appendReq, ledgerID, currency string, num int32, cal ledger.Calendar, open ledger.Date,
	st *topicState, stored map[idKey]*known, w *rows) (ledger.Date, error) {
	type planned struct {
		e    ledger.Entry
		gdpr ledger.GDPR
		dup  bool
	}
	tc := topicCode(r.topic)
	plan := make([]planned, len(r.in))
	inBatch := make(map[string]int, len(r.in))
	var dc ledger.DateCache
	now := s.now()
	for i, e := range r.in {
		if j, ok := inBatch[e.EntryID]; ok {
			if err := ledger.CheckRepeat(i, e, r.gdpr[i], &plan[j].e, &plan[j].gdpr); err != nil {
				return open, err
			}
			plan[i] = planned{e: plan[j].e, dup: true}
			continue
		}
		inBatch[e.EntryID] = i
		if k, ok := stored[idKey{tc, e.EntryID}]; ok {
			if err := ledger.CheckRepost(i, e, r.gdpr[i], &k.e, k.gdpr); err != nil {
				return open, err
			}
			plan[i] = planned{e: k.e, gdpr: r.gdpr[i], dup: true}
			continue
		}
		d := e.LedgerDate
		if d != 0 {
			if err := ledger.CheckNamedDate(i, cal, open, d, now); err != nil {
				return open, err
			}
		} else {
			d = max(open, dc.DateOf(cal, e.Time))
		}
		open = max(open, d)
		after, err := ledger.AddToBalance(i, r.topic, st.balance, e.Amount)
		if err != nil {
			return open, err
		}
		st.seq++
		ent := ledger.Entry{
			LedgerID: ledgerID, Topic: r.topic, Sequence: st.seq, EntryID: e.EntryID,
			PSPReference: e.PSPReference, Time: e.Time, LedgerDate: d, EntryType: e.EntryType,
			Reference: e.Reference, Currency: currency, Amount: e.Amount,
			BalanceBefore: st.balance, BalanceAfter: after, RecipientHandle: e.RecipientHandle,
			HasGDPR: r.gdpr[i] != ledger.GDPR{},
		}
		ent.Hash = ledger.ChainHash(st.hash, &ent)
		st.balance, st.hash, st.date = after, ent.Hash, d
		if r.topic == ledger.TopicFunds && ledger.IsPayout(e.EntryType) {
			open = d + 1
		}
		plan[i] = planned{e: ent, gdpr: r.gdpr[i]}
	}
	// The request stands: record its rows and answer.
	res := ledger.AppendResult{Sequences: make([]uint64, len(plan))}
	for i := range plan {
		p := &plan[i]
		res.Record(i, p.e.Sequence, p.dup)
		if p.dup {
			continue
		}
		if err := w.add(num, tc, &p.e, p.gdpr); err != nil {
			return open, abortError{err}
		}
		k := &known{e: p.e}
		if p.e.HasGDPR {
			g := p.gdpr
			k.gdpr = &g
		}
		stored[idKey{tc, p.e.EntryID}] = k
	}
	r.res = res
	return open, nil
}

// abortError fails a whole group's transaction (commit then retries each
// request alone): plan met it after adding some of a request's rows.
type abortError struct{ err error }

func (e abortError) Error() string { return e.err.Error() }

// add appends one new entry's rows. It fails only when sealing does (no
// randomness), after the request's earlier entries were added.
func (w *rows) add(num int32, tc int16, e *ledger.Entry, g ledger.GDPR) error {
	if e.HasGDPR {
		key, sealed, err := sealGDPR(g, gdprAAD(num, tc, e.Sequence))
		if err != nil {
			return err
		}
		w.gTopic = append(w.gTopic, tc)
		w.gSeq = append(w.gSeq, int64(e.Sequence))
		w.gSealed = append(w.gSealed, sealed)
		w.gKey = append(w.gKey, key)
	}
	h := e.Hash
	w.topic = append(w.topic, tc)
	w.seq = append(w.seq, int64(e.Sequence))
	w.entryID = append(w.entryID, e.EntryID)
	w.psp = append(w.psp, e.PSPReference)
	w.timeUS = append(w.timeUS, e.Time.UnixMicro())
	w.date = append(w.date, int32(e.LedgerDate))
	w.etype = append(w.etype, e.EntryType)
	w.ref = append(w.ref, e.Reference)
	w.amount = append(w.amount, e.Amount)
	w.before = append(w.before, e.BalanceBefore)
	w.after = append(w.after, e.BalanceAfter)
	w.handle = append(w.handle, e.RecipientHandle)
	w.hash = append(w.hash, h[:])
	w.hasGDPR = append(w.hasGDPR, e.HasGDPR)
	k := dateKey{tc, e.LedgerDate}
	if i, ok := w.dateIndex[k]; ok {
		w.dLast[i] = int64(e.Sequence)
	} else {
		// first_seq of a date already in the table is kept by the upsert.
		w.dateIndex[k] = len(w.dDate)
		w.dTopic = append(w.dTopic, tc)
		w.dDate = append(w.dDate, int32(e.LedgerDate))
		w.dFirst = append(w.dFirst, int64(e.Sequence))
		w.dLast = append(w.dLast, int64(e.Sequence))
	}
	return nil
}

// copyRows is the group size from which new entries are COPYed rather than
// INSERTed from arrays.
const copyRows = 64

var entryColNames = []string{"num", "topic", "seq", "entry_id", "psp_reference", "time_us", "ledger_date", "entry_type",
	"reference", "amount", "balance_before", "balance_after", "recipient_handle", "hash", "has_gdpr"}

func (w *rows) copySource(num int32) pgx.CopyFromSource {
	i := -1
	return pgx.CopyFromFunc(func() ([]any, error) {
		i++
		if i >= len(w.seq) {
			return nil, nil
		}
		return []any{num, w.topic[i], w.seq[i], w.entryID[i], w.psp[i], w.timeUS[i], w.date[i], w.etype[i],
			w.ref[i], w.amount[i], w.before[i], w.after[i], w.handle[i], w.hash[i], w.hasGDPR[i]}, nil
	})
}
