package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// modelGrace is the store's default grace period (Options.Grace left zero).
const modelGrace = time.Hour

// modelLedgers are the ledgers the test may create; the last is never created.
var modelLedgers = []struct{ id, currency, zone, cutoff string }{
	{"302321", "NOK", "Europe/Oslo", ""},
	{"302322", "NZD", "Pacific/Auckland", "00:00"},
	{"302323", "EUR", "UTC", "04:00"},
	{"302324", "NOK", "Europe/Oslo", "04:00"},
	{"302325", "NZD", "Pacific/Auckland", "02:30"}, // cutoff inside the DST change hour
	{"302326", "SEK", "Europe/Oslo", "02:30"},
	{"302399", "NOK", "UTC", ""}, // never created: everything on it is ErrNotFound
}

var (
	modelCurrencies = []string{"NOK", "NZD", "EUR", "SEK", "JPY", "KWD"}
	modelZones      = []string{"Europe/Oslo", "Pacific/Auckland", "UTC"}
	modelCutoffs    = []string{"", "00:00", "04:00", "02:30"}
	modelHandles    = []string{"NO:123456", "NO:654321", "SE:112233"}
	modelNames      = []string{"Ola Nordmann", "Åse Øvrebø", "李雷", "Kari"}
	modelMessages   = []string{"thanks", "Takk for maten!", "😀 gift", "for the pizza"}
	fundsTypes      = []string{"capture", "capture", "capture", "refund", "fees-retained", "payout-aborted", "retained-disputed-capture", "returned-disputed-capture", "correction", "top-up", "credit-note", "brand-new-type"}
	feesTypes       = []string{"capture-fee", "capture-fee", "fees-retained", "fees-invoiced", "credit-note", "service-fee", "correction", "scheduled-for-payout"}
	// Start instants: some lie just before a daylight-saving change in Oslo
	// or Auckland, so short runs cross one too.
	modelStarts = []time.Time{
		time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 27, 21, 30, 0, 0, time.UTC),
		time.Date(2026, 4, 3, 11, 0, 0, 0, time.UTC),
		time.Date(2026, 9, 25, 8, 15, 0, 0, time.UTC),
		time.Date(2026, 10, 23, 23, 45, 0, 0, time.UTC),
	}
)

// ---- the model ----

// mCal is the model's own calendar: Start found by scanning the wall clock,
// not by the store's offset arithmetic.
type mCal struct {
	loc    *time.Location
	cutoff int // minutes
	starts map[ledger.Date]time.Time
}

func civilOf(d ledger.Date) (int, time.Month, int) { return time.Unix(int64(d)*86400, 0).UTC().Date() }

func dateOfWall(l time.Time) ledger.Date {
	return ledger.Date(time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// start is the first instant at which the local wall clock reads the cutoff
// on date d or later (in a gap: the jump; in an overlap: the first reading).
func (c *mCal) start(d ledger.Date) time.Time {
	if s, ok := c.starts[d]; ok {
		return s
	}
	y, m, day := civilOf(d)
	target := time.Date(y, m, day, c.cutoff/60, c.cutoff%60, 0, 0, time.UTC)
	reached := func(t time.Time) bool {
		l := t.In(c.loc)
		wall := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
		return !wall.Before(target)
	}
	t := target.Add(-15 * time.Hour) // no zone is 15 h ahead: not reached yet
	for !reached(t) {
		t = t.Add(time.Hour)
	}
	// The first hourly probe that reached it is at most 2 h late (an overlap
	// turns the clock back 1 h); find the first minute.
	for u := t.Add(-3 * time.Hour); ; u = u.Add(time.Minute) {
		if reached(u) {
			t = u
			break
		}
	}
	c.starts[d] = t
	return t
}

func (c *mCal) dateOf(t time.Time) ledger.Date {
	l := t.In(c.loc)
	d := dateOfWall(l)
	if l.Hour()*60+l.Minute() < c.cutoff {
		d--
	}
	for t.Before(c.start(d)) {
		d--
	}
	for !t.Before(c.start(d + 1)) {
		d++
	}
	return d
}

type mEntry struct {
	raw     ledger.EntryInput // as first posted, for retries
	in      ledger.EntryInput // normalized: time in UTC, to the µs
	seq     uint64
	date    ledger.Date
	before  int64
	after   int64
	gdpr    ledger.GDPR // as stored: phone masked
	hasGDPR bool
	erased  bool
	hash    [32]byte
}

type mTopic struct {
	entries []*mEntry
	byID    map[string]*mEntry
}

func (tp *mTopic) balance() int64 {
	if len(tp.entries) == 0 {
		return 0
	}
	return tp.entries[len(tp.entries)-1].after
}

func (tp *mTopic) lastHash() [32]byte {
	if len(tp.entries) == 0 {
		return [32]byte{}
	}
	return tp.entries[len(tp.entries)-1].hash
}

type mLedger struct {
	id         string
	base       int // index in modelLedgers
	exists     bool
	cfg        ledger.Ledger // as stored, with OpenDate, CreatedAt, UpdatedAt
	hasEntries bool
	topics     map[ledger.Topic]*mTopic
}

func (l *mLedger) open() ledger.Date { return l.cfg.OpenDate }

func (e *mEntry) entry(l *mLedger, topic ledger.Topic) ledger.Entry {
	return ledger.Entry{
		LedgerID: l.id, Topic: topic, Sequence: e.seq, EntryID: e.in.EntryID,
		PSPReference: e.in.PSPReference, Time: e.in.Time, LedgerDate: e.date,
		EntryType: e.in.EntryType, Reference: e.in.Reference, Currency: l.cfg.Currency,
		Amount: e.in.Amount, BalanceBefore: e.before, BalanceAfter: e.after,
		RecipientHandle: e.in.RecipientHandle,
	}
}

// ---- the harness ----

type modelTest struct {
	t       *testing.T
	seed    int64
	step    int
	r       *rand.Rand
	clock   *Clock
	h       Harness
	storage Storage
	opts    Options
	s       ledger.Backend
	ctx     context.Context
	ledgers []*mLedger
	cals    map[string]*mCal
	nextID  int
	pending *pendingBatch
	stats   map[string]int
	kinds   map[string]int // read mismatches by kind
	last    string         // the current operation, for failure messages
}

type pendingBatch struct {
	l       *mLedger
	topic   ledger.Topic
	batch   []genEntry
	wantSeq []uint64 // a full retry of a batch that succeeded: the same sequences
}

type genEntry struct {
	in  ledger.EntryInput
	bad string // the field normalize refuses; "" when the entry is well formed
}

func (mt *modelTest) fatalf(format string, args ...any) {
	mt.t.Helper()
	mt.t.Fatalf("seed %d step %d: %s: %s", mt.seed, mt.step, mt.last, fmt.Sprintf(format, args...))
}

// mismatch reports a read that disagrees with the model. Each kind is
// reported once (with its first example) and counted afterwards, so one bug
// does not hide the others; the model's state is not affected by a read.
func (mt *modelTest) mismatch(kind, format string, args ...any) {
	mt.t.Helper()
	if mt.kinds[kind]++; mt.kinds[kind] == 1 {
		mt.t.Errorf("seed %d step %d: %s: [%s] %s", mt.seed, mt.step, mt.last, kind, fmt.Sprintf(format, args...))
	}
	if len(mt.kinds) > 20 {
		mt.t.FailNow()
	}
}

func (mt *modelTest) chance(p float64) bool { return mt.r.Float64() < p }

func (mt *modelTest) cal(l *mLedger) *mCal {
	key := l.cfg.TimeZone + "|" + l.cfg.Cutoff
	if c := mt.cals[key]; c != nil {
		return c
	}
	loc, err := time.LoadLocation(l.cfg.TimeZone)
	if err != nil {
		mt.fatalf("model: zone %q: %v", l.cfg.TimeZone, err)
	}
	var hh, mm int
	if _, err := fmt.Sscanf(l.cfg.Cutoff, "%d:%d", &hh, &mm); err != nil {
		mt.fatalf("model: cutoff %q: %v", l.cfg.Cutoff, err)
	}
	c := &mCal{loc: loc, cutoff: hh*60 + mm, starts: map[ledger.Date]time.Time{}}
	mt.cals[key] = c
	return c
}

// testModel runs random operations against a real store and a tiny
// in-memory model of it, and compares the two after every step. Rerun a
// failure with the seed it prints: LEDGERFEED_MODEL_SEED=N.
func testModel(t *testing.T, h Harness) {
	seed := envInt(t, "LEDGERFEED_MODEL_SEED", 0)
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	steps := int(envInt(t, "LEDGERFEED_MODEL_STEPS", int64(h.ModelSteps)))
	if soak() {
		steps *= 10
	}
	t.Logf("seed %d (rerun with LEDGERFEED_MODEL_SEED=%d)", seed, seed)
	r := rand.New(rand.NewPCG(uint64(seed), uint64(seed)>>32^0x9e3779b97f4a7c15))
	clock := NewClock(modelStarts[r.IntN(len(modelStarts))])
	mt := &modelTest{
		t: t, seed: seed, r: r, clock: clock,
		h:       h,
		storage: h.New(t),
		opts:    Options{Now: clock.Now},
		ctx:     context.Background(),
		cals:    map[string]*mCal{},
		stats:   map[string]int{},
		kinds:   map[string]int{},
	}
	t.Cleanup(func() {
		if t.Failed() { // also after a failure reported by a helper
			t.Logf("seed %d: failed (stopped at step %d); rerun with LEDGERFEED_MODEL_SEED=%d", seed, mt.step, seed)
		}
	})
	mt.s = mt.storage.Open(t, mt.opts)
	for i, b := range modelLedgers {
		l := &mLedger{id: b.id, base: i, topics: map[ledger.Topic]*mTopic{}}
		for _, tp := range ledger.Topics {
			l.topics[tp] = &mTopic{byID: map[string]*mEntry{}}
		}
		mt.ledgers = append(mt.ledgers, l)
	}
	t.Logf("clock starts at %s", clock.Now().Format(time.RFC3339))

	began := time.Now()
	var tOps, tHeads, tFull time.Duration // where the time goes
	for mt.step = 1; mt.step <= steps; mt.step++ {
		t0 := time.Now()
		mt.randomOp()
		t1 := time.Now()
		mt.last = "check after " + mt.last
		mt.checkHeads()
		t2 := time.Now()
		if mt.step%100 == 0 {
			mt.checkFull(false)
		}
		tOps, tHeads, tFull = tOps+t1.Sub(t0), tHeads+t2.Sub(t1), tFull+time.Since(t2)
	}
	mt.step--
	mt.last = "final check"
	mt.checkFull(true)
	mt.checkFinal()

	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(mt.stats)) {
		fmt.Fprintf(&sb, " %s=%d", k, mt.stats[k])
	}
	t.Logf("%d steps in %s (operations %s, Head checks %s, full checks %s), clock ends at %s;%s", steps,
		time.Since(began).Round(time.Millisecond), tOps.Round(time.Millisecond), tHeads.Round(time.Millisecond),
		tFull.Round(time.Millisecond), clock.Now().Format(time.RFC3339), sb.String())
	for _, k := range slices.Sorted(maps.Keys(mt.kinds)) {
		n := mt.kinds[k]
		t.Logf("seed %d: mismatch kind %q seen %d times", seed, k, n)
	}
}

func (mt *modelTest) randomOp() {
	type op struct {
		weight int
		fn     func()
	}
	ops := []op{
		{450, mt.opAppend},
		{50, mt.opPutLedger},
		{160, mt.opAdvance},
		{50, mt.opCloseDate},
		{90, mt.opCloseDue},
		{50, mt.opErase},
		{5, mt.opReopen},
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	n := mt.r.IntN(total)
	for _, o := range ops {
		if n < o.weight {
			o.fn()
			return
		}
		n -= o.weight
	}
}

// pickLedger picks a ledger; the never-created one rarely.
func (mt *modelTest) pickLedger() *mLedger {
	if mt.chance(0.03) {
		return mt.ledgers[len(mt.ledgers)-1]
	}
	return mt.ledgers[mt.r.IntN(len(mt.ledgers)-1)]
}

// ---- clock ----

func (mt *modelTest) opAdvance() {
	var d time.Duration
	// About 80 minutes on average: 10,000 steps span three to four months.
	switch x := mt.r.Float64(); {
	case x < 0.75:
		d = time.Duration(1+mt.r.IntN(59))*time.Minute + time.Duration(mt.r.IntN(60))*time.Second
	case x < 0.99:
		d = time.Duration(1+mt.r.IntN(3))*time.Hour + time.Duration(mt.r.IntN(3600))*time.Second
	default:
		d = time.Duration(20+mt.r.IntN(29)) * time.Hour
	}
	if mt.chance(0.1) {
		d += time.Duration(mt.r.IntN(1e9)) // sub-second clock
	}
	mt.last = "advance clock " + d.String()
	mt.clock.Add(d)
	mt.stats["clock.advance"]++
}

// ---- ledgers ----

func normLedger(l ledger.Ledger) ledger.Ledger {
	if l.Cutoff == "" {
		l.Cutoff = "00:00"
	}
	if l.SettlesForRecipientHandles == nil {
		l.SettlesForRecipientHandles = []string{}
	}
	if l.SalesUnits == nil {
		l.SalesUnits = []ledger.SalesUnit{}
	}
	return l
}

func (mt *modelTest) compareLedger(what string, got, want ledger.Ledger) {
	mt.t.Helper()
	g, w := got, want
	if mt.h.MicrosecondTimes {
		w.CreatedAt, w.UpdatedAt = w.CreatedAt.Truncate(time.Microsecond), w.UpdatedAt.Truncate(time.Microsecond)
	}
	if !g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) {
		mt.fatalf("%s: ledger %s createdAt/updatedAt %s/%s, want %s/%s", what, want.ID, g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt)
	}
	g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		mt.fatalf("%s: ledger\n got %+v\nwant %+v", what, g, w)
	}
}

func (mt *modelTest) opPutLedger() {
	l := mt.ledgers[mt.r.IntN(len(mt.ledgers)-1)]
	b := modelLedgers[l.base]
	now := mt.clock.Now()
	var in ledger.Ledger
	if !l.exists {
		in = ledger.Ledger{ID: l.id, Currency: b.currency, TimeZone: b.zone, Cutoff: b.cutoff}
		if mt.chance(0.2) {
			in.Currency = modelCurrencies[mt.r.IntN(len(modelCurrencies))]
			in.TimeZone = modelZones[mt.r.IntN(len(modelZones))]
			in.Cutoff = modelCutoffs[mt.r.IntN(len(modelCutoffs))]
		}
	} else {
		in = l.cfg
		in.SettlesForRecipientHandles = slices.Clone(in.SettlesForRecipientHandles)
		in.SalesUnits = slices.Clone(in.SalesUnits)
		if in.Cutoff == "00:00" && mt.chance(0.3) {
			in.Cutoff = "" // the default: the same cutoff
		}
		if mt.chance(0.35) {
			switch mt.r.IntN(3) {
			case 0:
				in.Currency = modelCurrencies[mt.r.IntN(len(modelCurrencies))]
			case 1:
				in.TimeZone = modelZones[mt.r.IntN(len(modelZones))]
			case 2:
				in.Cutoff = modelCutoffs[mt.r.IntN(len(modelCutoffs))]
			}
		}
	}
	// Fields that may change at any time.
	if mt.chance(0.5) {
		in.Owner = ledger.Account{Scheme: "business:NO:ORG", ID: fmt.Sprintf("9%08d", mt.r.IntN(1e8))}
		in.PayoutBankAccount = ledger.Account{Scheme: "BBAN:NO", ID: fmt.Sprintf("1234%07d", mt.r.IntN(1e7))}
	}
	if mt.chance(0.4) {
		in.SettlesForRecipientHandles = nil
		for _, h := range modelHandles {
			if mt.chance(0.5) {
				in.SettlesForRecipientHandles = append(in.SettlesForRecipientHandles, h)
			}
		}
		in.SalesUnits = nil
		if mt.chance(0.5) {
			in.SalesUnits = []ledger.SalesUnit{{Name: "Pizzeria Ø", RecipientHandle: modelHandles[0], BusinessIdentifier: ledger.Account{Scheme: "business:NO:ORG", ID: "987654321"}}}
		}
	}
	// The store keeps its own state fields whatever the caller sends.
	in.OpenDate = ledger.Date(mt.r.IntN(30000))
	in.CreatedAt = now.Add(-time.Duration(mt.r.IntN(1e6)) * time.Second)
	in.UpdatedAt = time.Time{}

	bad := ""
	if mt.chance(0.08) {
		switch mt.r.IntN(7) {
		case 0:
			in.Currency, bad = []string{"XXX", "nok", ""}[mt.r.IntN(3)], "currency"
		case 1:
			in.TimeZone, bad = []string{"Mars/Olympus_Mons", "Local", ""}[mt.r.IntN(3)], "timeZone"
		case 2:
			in.Cutoff, bad = []string{"24:00", "4:00", "04:00:00", "ab:cd"}[mt.r.IntN(4)], "cutoff"
		case 3:
			in.Owner, bad = ledger.Account{Scheme: "business:NO:ORG"}, "owner"
		case 4:
			in.SettlesForRecipientHandles, bad = []string{"NO:1", "NO:1"}, "settlesForRecipientHandles[1]"
		case 5:
			in.SalesUnits, bad = []ledger.SalesUnit{{Name: "x", RecipientHandle: "no handle"}}, "salesUnits[0].recipientHandle"
		case 6:
			in.ID, bad = "bad id", "ledgerId"
		}
	}
	mt.last = fmt.Sprintf("put ledger %s (currency %s zone %s cutoff %q, bad %q)", in.ID, in.Currency, in.TimeZone, in.Cutoff, bad)

	want := normLedger(in)
	conflict := ""
	if bad == "" && l.exists && l.hasEntries {
		switch {
		case want.Currency != l.cfg.Currency:
			conflict = "currency"
		case want.TimeZone != l.cfg.TimeZone:
			conflict = "timeZone"
		case want.Cutoff != l.cfg.Cutoff:
			conflict = "cutoff"
		}
	}
	got, created, err := mt.s.PutLedger(mt.ctx, in)
	switch {
	case bad != "":
		var fe *ledger.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ledger.ErrInvalid) || fe.Field != bad {
			mt.fatalf("got %v, want a *FieldError on %q wrapping ErrInvalid", err, bad)
		}
		mt.stats["put.invalid"]++
	case conflict != "":
		if !errors.Is(err, ledger.ErrConflict) || !strings.Contains(err.Error(), conflict) {
			mt.fatalf("changing %s of a ledger with entries: got %v, want ErrConflict naming %s", conflict, err, conflict)
		}
		mt.stats["put.conflict"]++
	default:
		if err != nil {
			mt.fatalf("got %v, want success", err)
		}
		if created != !l.exists {
			mt.fatalf("created %v, want %v", created, !l.exists)
		}
		want.OpenDate, want.UpdatedAt = l.cfg.OpenDate, now
		want.CreatedAt = now
		if l.exists {
			want.CreatedAt = l.cfg.CreatedAt
			mt.stats["put.updated"]++
		} else {
			mt.stats["put.created"]++
		}
		mt.compareLedger("PutLedger answer", got, want)
		l.cfg, l.exists = want, true
	}
	mt.checkLedger(l)
}

func (mt *modelTest) checkLedger(l *mLedger) {
	mt.t.Helper()
	got, err := mt.s.GetLedger(l.id)
	if !l.exists {
		if !errors.Is(err, ledger.ErrNotFound) {
			mt.fatalf("GetLedger(%s) of a ledger never created: %v, want ErrNotFound", l.id, err)
		}
		return
	}
	if err != nil {
		mt.fatalf("GetLedger(%s): %v", l.id, err)
	}
	mt.compareLedger("GetLedger", got, l.cfg)
}

// ---- dates ----

func (mt *modelTest) setOpen(l *mLedger, d ledger.Date) {
	if d > l.cfg.OpenDate {
		l.cfg.OpenDate = d
		l.cfg.UpdatedAt = mt.clock.Now()
	}
}

func (mt *modelTest) opCloseDate() {
	l := mt.pickLedger()
	now := mt.clock.Now()
	var d ledger.Date
	if l.exists {
		c := mt.cal(l)
		today := c.dateOf(now)
		cands := []ledger.Date{today - 1, today, today, today + 1}
		if o := l.open(); o != 0 {
			cands = append(cands, o-1, o, o+1)
		}
		d = cands[mt.r.IntN(len(cands))]
	} else {
		d = ledger.Date(20000 + mt.r.IntN(600))
	}
	if mt.chance(0.04) {
		d = ledger.Date(-mt.r.IntN(2)) // 0 or -1: not a date
	}
	mt.last = fmt.Sprintf("close date %s (%d) of ledger %s", d, d, l.id)
	got, err := mt.s.CloseDate(mt.ctx, l.id, d)
	var fe *ledger.FieldError
	switch {
	case d <= 0:
		if !errors.As(err, &fe) || fe.Field != "ledgerDate" || !errors.Is(err, ledger.ErrInvalid) {
			mt.fatalf("got %v, want a *FieldError on ledgerDate", err)
		}
		mt.stats["close.invalid"]++
	case !l.exists:
		if !errors.Is(err, ledger.ErrNotFound) {
			mt.fatalf("got %v, want ErrNotFound", err)
		}
		mt.stats["close.notfound"]++
	case mt.cal(l).start(d).After(now.Add(15 * time.Minute)):
		if !errors.As(err, &fe) || fe.Field != "ledgerDate" || !errors.Is(err, ledger.ErrInvalid) {
			mt.fatalf("closing a date that has not begun (starts %s, now %s): got %v, want a *FieldError on ledgerDate", mt.cal(l).start(d), now, err)
		}
		mt.stats["close.notbegun"]++
	default:
		if err != nil {
			mt.fatalf("got %v, want success", err)
		}
		before := l.open()
		mt.setOpen(l, d+1)
		if got != l.open() {
			mt.fatalf("CloseDate answered open date %s, want %s", got, l.open())
		}
		if l.open() != before {
			mt.stats["close.moved"]++
		} else {
			mt.stats["close.noop"]++
		}
	}
	mt.checkLedger(l)
}

func (mt *modelTest) opCloseDue() {
	now := mt.clock.Now()
	mt.last = "CloseDue at " + now.Format(time.RFC3339Nano)
	if err := mt.s.CloseDue(mt.ctx); err != nil {
		mt.fatalf("CloseDue: %v", err)
	}
	for _, l := range mt.ledgers {
		if !l.exists || l.open() == 0 {
			continue
		}
		c := mt.cal(l)
		d := l.open()
		// A date closes once its end (the next date's start) + grace has passed.
		for !c.start(d + 1).Add(modelGrace).After(now) {
			d++
		}
		if d > l.open() {
			mt.stats["closedue.moved"]++
		}
		mt.setOpen(l, d)
		mt.checkLedger(l)
	}
}

// ---- GDPR ----

func (mt *modelTest) opErase() {
	l := mt.pickLedger()
	var by ledger.Erasure
	var all []*mEntry
	for _, tp := range ledger.Topics {
		all = append(all, l.topics[tp].entries...)
	}
	switch x := mt.r.Float64(); {
	case x < 0.05:
		by = ledger.Erasure{Reference: "order-1", PSPReference: "psp-1"}
	case x < 0.1:
		by = ledger.Erasure{}
	case x < 0.55:
		if len(all) > 0 && mt.chance(0.8) {
			by.Reference = all[mt.r.IntN(len(all))].in.Reference
		}
		if by.Reference == "" {
			by.Reference = mt.reference()
			if by.Reference == "" {
				by.Reference = "order-1"
			}
		}
	default:
		if len(all) > 0 && mt.chance(0.9) {
			by.PSPReference = all[mt.r.IntN(len(all))].in.PSPReference
		} else {
			by.PSPReference = "psp-no-such"
		}
	}
	mt.last = fmt.Sprintf("erase GDPR of ledger %s by %+v", l.id, by)
	n, err := mt.s.EraseGDPR(mt.ctx, l.id, by)
	switch {
	case (by.Reference == "") == (by.PSPReference == ""):
		var fe *ledger.FieldError
		if !errors.As(err, &fe) || fe.Field != "reference" || !errors.Is(err, ledger.ErrInvalid) {
			mt.fatalf("got %v, want a *FieldError on reference", err)
		}
		mt.stats["erase.invalid"]++
	case !l.exists:
		if !errors.Is(err, ledger.ErrNotFound) {
			mt.fatalf("got %v, want ErrNotFound", err)
		}
		mt.stats["erase.notfound"]++
	default:
		if err != nil {
			mt.fatalf("got %v, want success", err)
		}
		want := 0
		for _, e := range all {
			match := by.Reference != "" && e.in.Reference == by.Reference || by.PSPReference != "" && e.in.PSPReference == by.PSPReference
			if match && e.hasGDPR && !e.erased {
				e.erased = true
				want++
			}
		}
		if n != want {
			mt.fatalf("erased %d entries, want %d", n, want)
		}
		mt.stats["erase.entries"] += n
		mt.stats["erase.ok"]++
	}
}

// ---- close and reopen ----

func (mt *modelTest) opReopen() {
	mt.last = "close and reopen the store"
	if err := mt.s.Close(); err != nil {
		mt.fatalf("Close: %v", err)
	}
	if err := mt.s.Close(); err != nil {
		mt.fatalf("second Close: %v", err)
	}
	in := []ledger.EntryInput{{EntryID: "after-close", PSPReference: "p", Time: mt.clock.Now(), EntryType: "capture", Amount: 1}}
	if _, err := mt.s.Append(mt.ctx, mt.ledgers[0].id, ledger.TopicFunds, in); !errors.Is(err, ledger.ErrClosed) {
		mt.fatalf("Append on a closed store: %v, want ErrClosed", err)
	}
	if _, err := mt.s.Head(mt.ledgers[0].id, ledger.TopicFunds); !errors.Is(err, ledger.ErrClosed) {
		mt.fatalf("Head on a closed store: %v, want ErrClosed", err)
	}
	mt.s = mt.storage.Open(mt.t, mt.opts)
	mt.stats["reopen"]++
}

// ---- append ----

func (mt *modelTest) reference() string {
	switch x := mt.r.Float64(); {
	case x < 0.08:
		return ""
	case x < 0.1:
		return "ordre-ø-" + fmt.Sprint(mt.r.IntN(3))
	default:
		return fmt.Sprintf("order-%d", 1+mt.r.IntN(25))
	}
}

func (mt *modelTest) phone() string {
	digits := fmt.Sprintf("9%07d", mt.r.IntN(1e7))
	switch mt.r.IntN(3) {
	case 0:
		return "+47 " + digits[:3] + " " + digits[3:5] + " " + digits[5:]
	case 1:
		return digits
	}
	return "0047-" + digits
}

// maskModel masks a phone number as the model expects: "xxxx" and the last
// four digits.
func maskModel(p string) string {
	if p == "" {
		return ""
	}
	var d []byte
	for i := 0; i < len(p); i++ {
		if p[i] >= '0' && p[i] <= '9' {
			d = append(d, p[i])
		}
	}
	return "xxxx " + string(d[len(d)-4:])
}

func (mt *modelTest) entryTime(now time.Time) time.Time {
	var t time.Time
	switch x := mt.r.Float64(); {
	case x < 0.85:
		t = now.Add(-time.Duration(mt.r.Int64N(int64(36 * time.Hour))))
	case x < 0.9:
		t = now.Add(time.Duration(mt.r.Int64N(int64(15 * time.Minute))))
	case x < 0.93:
		t = now.Add(-time.Duration(30+mt.r.IntN(400)) * 24 * time.Hour)
	case x < 0.95:
		t = now.Add(15 * time.Minute) // the latest allowed
	default:
		t = now
	}
	if mt.chance(0.8) {
		t = t.Truncate(time.Microsecond)
	}
	if mt.chance(0.3) {
		t = t.In(time.FixedZone("X", 3600*(mt.r.IntN(25)-12))) // stored in UTC whatever the zone
	}
	return t
}

func (mt *modelTest) amount(bal int64) int64 {
	r := mt.r
	switch x := r.Float64(); {
	case x < 0.012: // exactly at, or one past, a limit
		past := r.IntN(2) == 1
		if r.IntN(2) == 0 {
			if bal < 0 {
				return math.MaxInt64
			}
			a := math.MaxInt64 - bal
			if past && a < math.MaxInt64 {
				a++
			}
			return max(a, 1)
		}
		if bal > 0 {
			return math.MinInt64
		}
		a := math.MinInt64 - bal
		if past && a > math.MinInt64 {
			a--
		}
		return min(a, -1)
	case x < 0.03:
		a := int64(1e17) + r.Int64N(math.MaxInt64/2)
		if r.IntN(2) == 0 {
			a = -a
		}
		return a
	case x < 0.035:
		return []int64{math.MaxInt64, math.MinInt64, math.MinInt64 + 1}[r.IntN(3)]
	}
	// Pull a balance back from a limit, or a small amount.
	if bal > math.MaxInt64-int64(1e12) {
		return -int64(1e18) - r.Int64N(1e12)
	}
	if bal < math.MinInt64+int64(1e12) {
		return int64(1e18) + r.Int64N(1e12)
	}
	a := 1 + r.Int64N(1_000_000)
	if r.Float64() < 0.3 {
		a = -a
	}
	return a
}

func (mt *modelTest) newEntryID(l *mLedger, topic ledger.Topic, inBatch map[string]bool) string {
	if mt.chance(0.1) {
		// An id used in another topic or ledger is a new entry here.
		o := mt.ledgers[mt.r.IntN(len(mt.ledgers))]
		ot := o.topics[ledger.Topics[mt.r.IntN(2)]]
		if n := len(ot.entries); n > 0 {
			id := ot.entries[mt.r.IntN(n)].in.EntryID
			if l.topics[topic].byID[id] == nil && !inBatch[id] {
				return id
			}
		}
	}
	mt.nextID++
	switch x := mt.r.Float64(); {
	case x < 0.01: // the longest allowed
		id := fmt.Sprintf("long-%d-", mt.nextID)
		return id + strings.Repeat("z", 128-len(id))
	case x < 0.2:
		return fmt.Sprintf("evt:%d.%s_x-%d", mt.nextID, topic, mt.r.IntN(100))
	}
	return fmt.Sprintf("e%d", mt.nextID)
}

func (mt *modelTest) genNew(l *mLedger, topic ledger.Topic, bal int64, inBatch map[string]bool) ledger.EntryInput {
	now := mt.clock.Now()
	in := ledger.EntryInput{
		EntryID:   mt.newEntryID(l, topic, inBatch),
		Time:      mt.entryTime(now),
		Reference: mt.reference(),
		Amount:    mt.amount(bal),
	}
	if mt.chance(0.01) { // the longest allowed
		in.Reference = strings.Repeat("r", 256)
	}
	mt.nextID++
	if mt.chance(0.8) {
		in.PSPReference = fmt.Sprintf("psp-%d", mt.nextID)
	} else {
		in.PSPReference = fmt.Sprintf("psp-shared-%d", mt.r.IntN(5))
	}
	if topic == ledger.TopicFunds {
		in.EntryType = fundsTypes[mt.r.IntN(len(fundsTypes))]
		if mt.chance(0.012) {
			in.EntryType = []string{"scheduled-for-payout", "payout-scheduled"}[mt.r.IntN(2)]
		}
	} else {
		in.EntryType = feesTypes[mt.r.IntN(len(feesTypes))]
	}
	if mt.chance(0.7) {
		in.RecipientHandle = strp(modelHandles[mt.r.IntN(len(modelHandles))])
	}
	if mt.chance(0.4) {
		for in.Name == "" && in.PhoneNumber == "" && in.Message == "" {
			if mt.chance(0.6) {
				in.Name = modelNames[mt.r.IntN(len(modelNames))]
			}
			if mt.chance(0.5) {
				in.PhoneNumber = mt.phone()
			}
			if mt.chance(0.4) {
				in.Message = modelMessages[mt.r.IntN(len(modelMessages))]
			}
		}
	}
	if l.exists && mt.chance(0.04) {
		c := mt.cal(l)
		today := c.dateOf(now)
		cands := []ledger.Date{today - 1, today, today, today + 1}
		if o := l.open(); o > 0 {
			cands = append(cands, o-1, o, o, o+1, o+2)
		}
		if d := cands[mt.r.IntN(len(cands))]; d > 0 {
			in.LedgerDate = d
		}
	}
	return in
}

// corrupt breaks one field of a well-formed entry and returns its name.
func (mt *modelTest) corrupt(in *ledger.EntryInput) string {
	now := mt.clock.Now()
	switch mt.r.IntN(11) {
	case 0:
		in.EntryID = []string{"", "has space", strings.Repeat("x", 129), "ünïcode"}[mt.r.IntN(4)]
		return "entryId"
	case 1:
		in.PSPReference = []string{"", "psp\x01", strings.Repeat("p", 257)}[mt.r.IntN(3)]
		return "pspReference"
	case 2:
		if mt.chance(0.5) {
			// In the future: refused now, but maybe not when retried later
			// (predictAppend checks it against the clock).
			in.Time = []time.Time{now.Add(15*time.Minute + time.Microsecond), now.Add(2 * time.Hour)}[mt.r.IntN(2)]
			return ""
		}
		in.Time = []time.Time{{}, time.Unix(3600, 0)}[mt.r.IntN(2)]
		return "time"
	case 3:
		in.LedgerDate = -1 - ledger.Date(mt.r.IntN(5))
		return "ledgerDate"
	case 4:
		in.EntryType = []string{"", "Capture", "pay out", strings.Repeat("a", 65)}[mt.r.IntN(4)]
		return "entryType"
	case 5:
		in.Reference = []string{"bad\nref", "\xff\xfe", strings.Repeat("r", 257)}[mt.r.IntN(3)]
		return "reference"
	case 6:
		in.RecipientHandle = strp([]string{"", "bad handle", "NO/1"}[mt.r.IntN(3)])
		return "recipientHandle"
	case 7:
		in.Name = []string{"tab\there", strings.Repeat("n", 257), "\x7f"}[mt.r.IntN(3)]
		return "name"
	case 8:
		in.Message = []string{"nul\x00", strings.Repeat("m", 1025), "\xc3"}[mt.r.IntN(3)]
		return "message"
	case 9:
		in.PhoneNumber = []string{"1234", "12a45678", "+", "123456789012345678901", "47+12345"}[mt.r.IntN(5)]
		return "phoneNumber"
	}
	in.Time = time.Time{}
	return "time"
}

// retry returns a stored entry as posted again, with changes that keep it
// the same content.
func (mt *modelTest) retry(st *mEntry) ledger.EntryInput {
	in := st.raw
	if mt.chance(0.2) {
		in.Time = st.in.Time.Add(time.Duration(mt.r.IntN(1000))) // same µs
	}
	if mt.chance(0.15) {
		in.LedgerDate = st.date
	}
	if in.PhoneNumber != "" && mt.chance(0.2) {
		in.PhoneNumber = "+47" + strings.TrimPrefix(maskModel(in.PhoneNumber), "xxxx ") // same last four digits
	}
	if st.hasGDPR && st.erased && mt.chance(0.4) {
		in.Name, in.PhoneNumber, in.Message = "someone else", mt.phone(), "" // nothing left to compare
	}
	return in
}

// conflicting returns a stored entry posted again with one field changed.
func (mt *modelTest) conflicting(st *mEntry) ledger.EntryInput {
	in := st.raw
	for {
		switch mt.r.IntN(11) {
		case 0:
			in.Amount ^= 1
		case 1:
			in.PSPReference += "-x"
		case 2:
			in.Time = in.Time.Add(-time.Second)
		case 3:
			if in.EntryType == "correction" {
				in.EntryType = "capture"
			} else {
				in.EntryType = "correction"
			}
		case 4:
			if in.Reference += "-x"; len(in.Reference) > 256 {
				in.Reference = "order-x"
			}
		case 5:
			if in.RecipientHandle == nil {
				in.RecipientHandle = strp("NO:999")
			} else {
				in.RecipientHandle = nil
			}
		case 6:
			in.LedgerDate = st.date + 1 + ledger.Date(mt.r.IntN(2))
		case 7, 8, 9:
			if st.hasGDPR && st.erased {
				continue
			}
			switch mt.r.IntN(3) {
			case 0:
				in.Name += "x"
			case 1:
				in.Message += "!"
			default:
				in.PhoneNumber = mt.phone()
				if maskModel(in.PhoneNumber) == st.gdpr.MaskedPhoneNo {
					continue
				}
			}
		case 10:
			in.Amount = -in.Amount
			if in.Amount == st.raw.Amount {
				continue
			}
		}
		return in
	}
}

func (mt *modelTest) genBatch(l *mLedger, topic ledger.Topic) []genEntry {
	tp := l.topics[topic]
	n := 1 + mt.r.IntN(6) // 1–20, mostly small
	if mt.chance(0.3) {
		n = 1 + mt.r.IntN(20)
	}
	invalidAt, conflictAt := -1, -1
	if mt.chance(0.06) {
		invalidAt = mt.r.IntN(n)
	}
	if len(tp.entries) > 0 && mt.chance(0.06) {
		conflictAt = mt.r.IntN(n)
	}
	pickStored := func() *mEntry {
		k := len(tp.entries)
		if mt.chance(0.5) {
			return tp.entries[k-1-mt.r.IntN(min(k, 30))]
		}
		return tp.entries[mt.r.IntN(k)]
	}
	bal := tp.balance()
	inBatch := map[string]bool{}
	batch := make([]genEntry, 0, n)
	for i := range n {
		var g genEntry
		switch {
		case i == invalidAt:
			g.in = mt.genNew(l, topic, bal, inBatch)
			g.bad = mt.corrupt(&g.in)
		case i == conflictAt:
			g.in = mt.conflicting(pickStored())
		case len(tp.entries) > 0 && mt.chance(0.08):
			g.in = mt.retry(pickStored())
		case i > 0 && mt.chance(0.05):
			g = batch[mt.r.IntN(i)] // the same entry twice in one batch
			if mt.chance(0.2) {
				g.in.Amount ^= 2 // same id, other content
			}
		default:
			g.in = mt.genNew(l, topic, bal, inBatch)
			if sum, ok := addModel(bal, g.in.Amount); ok {
				bal = sum
			}
		}
		inBatch[g.in.EntryID] = true
		batch = append(batch, g)
	}
	return batch
}

// predicted is what the model expects of an Append.
type predicted struct {
	kind     string   // ok, invalid, conflict, notfound
	at       int      // index of the failing entry
	field    string   // invalid: FieldError.Field
	fields   []string // conflict: the message names entries[at]. and one of these
	contains string   // conflict: the message must also hold this
	why      string   // for the stats
	res      ledger.AppendResult
	news     []*mEntry
	open     ledger.Date
}

// diffFields lists the fields in which in (with GDPR fields g) differs from
// an entry with content ref, date d and GDPR fields rg; GDPR fields are not
// compared when skipGDPR.
func diffFields(in ledger.EntryInput, g ledger.GDPR, ref ledger.EntryInput, d ledger.Date, rg ledger.GDPR, skipGDPR bool) []string {
	var f []string
	if in.PSPReference != ref.PSPReference {
		f = append(f, "pspReference")
	}
	if !in.Time.Equal(ref.Time) {
		f = append(f, "time")
	}
	if in.LedgerDate != 0 && in.LedgerDate != d {
		f = append(f, "ledgerDate")
	}
	if in.EntryType != ref.EntryType {
		f = append(f, "entryType")
	}
	if in.Reference != ref.Reference {
		f = append(f, "reference")
	}
	if in.Amount != ref.Amount {
		f = append(f, "amount")
	}
	if (in.RecipientHandle == nil) != (ref.RecipientHandle == nil) || in.RecipientHandle != nil && *in.RecipientHandle != *ref.RecipientHandle {
		f = append(f, "recipientHandle")
	}
	if !skipGDPR {
		if g.Name != rg.Name {
			f = append(f, "name")
		}
		if g.MaskedPhoneNo != rg.MaskedPhoneNo {
			f = append(f, "phoneNumber")
		}
		if g.Message != rg.Message {
			f = append(f, "message")
		}
	}
	return f
}

// addModel adds two balances, reporting false where the sum leaves int64.
func addModel(a, b int64) (int64, bool) {
	if b > 0 && a > math.MaxInt64-b || b < 0 && a < math.MinInt64-b {
		return 0, false
	}
	return a + b, true
}

func (mt *modelTest) predictAppend(l *mLedger, topic ledger.Topic, batch []genEntry) predicted {
	now := mt.clock.Now()
	for i, g := range batch {
		bad := g.bad
		if bad == "" && time.UnixMicro(g.in.Time.UnixMicro()).After(now.Add(15*time.Minute)) {
			bad = "time" // in the future
		}
		if bad != "" {
			return predicted{kind: "invalid", at: i, field: fmt.Sprintf("entries[%d].%s", i, bad), why: "invalid." + bad}
		}
	}
	if !l.exists {
		return predicted{kind: "notfound", why: "notfound"}
	}
	c := mt.cal(l)
	tp := l.topics[topic]
	open := l.open()
	seq := uint64(len(tp.entries))
	bal := tp.balance()
	prev := tp.lastHash()
	type first struct {
		in   ledger.EntryInput
		g    ledger.GDPR
		seq  uint64
		date ledger.Date
	}
	seen := map[string]first{}
	p := predicted{kind: "ok", why: "ok", res: ledger.AppendResult{Sequences: make([]uint64, len(batch))}}
	for i, ge := range batch {
		in := ge.in
		in.Time = time.UnixMicro(in.Time.UnixMicro()).UTC()
		g := ledger.GDPR{Name: in.Name, MaskedPhoneNo: maskModel(in.PhoneNumber), Message: in.Message}
		conflict := func(why string, fields []string, contains string) predicted {
			return predicted{kind: "conflict", at: i, fields: fields, contains: contains, why: "conflict." + why}
		}
		if f, ok := seen[in.EntryID]; ok {
			if d := diffFields(in, g, f.in, f.date, f.g, false); len(d) > 0 {
				return conflict("inbatch", append(d, "entryId"), "")
			}
			p.res.Sequences[i] = f.seq
			p.res.Duplicates++
			continue
		}
		if st := tp.byID[in.EntryID]; st != nil {
			if d := diffFields(in, g, st.in, st.date, st.gdpr, st.hasGDPR && st.erased); len(d) > 0 {
				return conflict("content", d, "")
			}
			seen[in.EntryID] = first{in, g, st.seq, st.date}
			p.res.Sequences[i] = st.seq
			p.res.Duplicates++
			continue
		}
		var d ledger.Date
		if in.LedgerDate != 0 {
			if in.LedgerDate < open {
				return conflict("closeddate", []string{"ledgerDate"}, open.String())
			}
			if c.start(in.LedgerDate).After(now.Add(15 * time.Minute)) {
				return predicted{kind: "invalid", at: i, field: fmt.Sprintf("entries[%d].ledgerDate", i), why: "invalid.notbegun"}
			}
			d = in.LedgerDate
		} else {
			d = max(open, c.dateOf(in.Time))
		}
		open = max(open, d)
		if _, ok := addModel(bal, in.Amount); !ok {
			return conflict("overflow", []string{"amount"}, "")
		}
		seq++
		e := &mEntry{
			raw: ge.in, in: in, seq: seq, date: d, before: bal, after: bal + in.Amount,
			gdpr: g, hasGDPR: g != ledger.GDPR{},
		}
		e.in.PhoneNumber = ""
		ent := e.entry(l, topic)
		e.hash = ledger.ChainHash(prev, &ent)
		prev, bal = e.hash, e.after
		if topic == ledger.TopicFunds && (in.EntryType == "scheduled-for-payout" || in.EntryType == "payout-scheduled") {
			open = d + 1 // a payout is the last entry of its date
		}
		seen[in.EntryID] = first{in, g, seq, d}
		p.news = append(p.news, e)
		p.res.Sequences[i] = seq
		p.res.Appended++
	}
	p.res.FirstSequence, p.res.LastSequence = slices.Min(p.res.Sequences), slices.Max(p.res.Sequences)
	p.open = open
	return p
}

// badBatch posts a batch that is refused as a whole: empty, too large, or to
// a topic that does not exist.
func (mt *modelTest) badBatch() {
	l := mt.pickLedger()
	var topic ledger.Topic = ledger.TopicFees
	var in []ledger.EntryInput
	field := "entries"
	switch mt.r.IntN(3) {
	case 0:
	case 1:
		in = make([]ledger.EntryInput, 10001)
	case 2:
		topic, field = "payouts", "topic"
		in = []ledger.EntryInput{mt.genNew(l, ledger.TopicFunds, 0, nil)}
	}
	mt.last = fmt.Sprintf("append %d entries to %s/%s", len(in), l.id, topic)
	_, err := mt.s.Append(mt.ctx, l.id, topic, in)
	var fe *ledger.FieldError
	if !errors.As(err, &fe) || fe.Field != field || !errors.Is(err, ledger.ErrInvalid) {
		mt.fatalf("got %v, want a *FieldError on %s", err, field)
	}
	mt.stats["append.invalid.batch"]++
}

// check compares an Append's answer with the prediction; it returns what
// differs, or "" when nothing does.
func (p predicted) check(res ledger.AppendResult, err error) string {
	switch p.kind {
	case "invalid":
		var fe *ledger.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ledger.ErrInvalid) || fe.Field != p.field {
			return fmt.Sprintf("got %v, want a *FieldError on %s wrapping ErrInvalid", err, p.field)
		}
	case "notfound":
		if !errors.Is(err, ledger.ErrNotFound) {
			return fmt.Sprintf("got %v, want ErrNotFound", err)
		}
	case "conflict":
		if !errors.Is(err, ledger.ErrConflict) {
			return fmt.Sprintf("got %v, want ErrConflict (%s at entries[%d], fields %v)", err, p.why, p.at, p.fields)
		}
		named := false
		for _, f := range p.fields {
			named = named || strings.Contains(err.Error(), fmt.Sprintf("entries[%d].%s", p.at, f))
		}
		if !named || !strings.Contains(err.Error(), p.contains) {
			return fmt.Sprintf("conflict %q does not name entries[%d] and one of %v (and %q)", err, p.at, p.fields, p.contains)
		}
	case "ok":
		if err != nil {
			return fmt.Sprintf("got %v, want %s", err, p.res)
		}
		if !reflect.DeepEqual(res, p.res) {
			return fmt.Sprintf("result %+v, want %+v", res, p.res)
		}
	}
	return ""
}

// apply records a successful append in the model.
func (mt *modelTest) apply(l *mLedger, topic ledger.Topic, p predicted) {
	tp := l.topics[topic]
	for _, e := range p.news {
		tp.entries = append(tp.entries, e)
		tp.byID[e.in.EntryID] = e
	}
	if len(p.news) > 0 {
		l.hasEntries = true
	}
	mt.setOpen(l, p.open)
}

// ledgerState is what an append changes in a model ledger, for undoing a
// prediction.
type ledgerState struct {
	cfg        ledger.Ledger
	hasEntries bool
	n          map[ledger.Topic]int
}

func (l *mLedger) save() ledgerState {
	st := ledgerState{cfg: l.cfg, hasEntries: l.hasEntries, n: map[ledger.Topic]int{}}
	for t, tp := range l.topics {
		st.n[t] = len(tp.entries)
	}
	return st
}

func (l *mLedger) restore(st ledgerState) {
	l.cfg, l.hasEntries = st.cfg, st.hasEntries
	for t, tp := range l.topics {
		for _, e := range tp.entries[st.n[t]:] {
			delete(tp.byID, e.in.EntryID)
		}
		tp.entries = tp.entries[:st.n[t]]
	}
}

func describeBatch(l *mLedger, topic ledger.Topic, batch []genEntry, now time.Time) string {
	var sb strings.Builder
	for i, g := range batch {
		in := g.in
		fmt.Fprintf(&sb, "\n  [%d] id=%s time=%s date=%s type=%s amount=%d ref=%q bad=%q", i, in.EntryID, in.Time.UTC().Format(time.RFC3339Nano), in.LedgerDate, in.EntryType, in.Amount, in.Reference, g.bad)
	}
	return fmt.Sprintf("open date %s, head %d, now %s; batch:%s", l.open(), len(l.topics[topic].entries), now.Format(time.RFC3339Nano), sb.String())
}

func inputsOf(batch []genEntry) []ledger.EntryInput {
	in := make([]ledger.EntryInput, len(batch))
	for i := range batch {
		in[i] = batch[i].in
	}
	return in
}

func (mt *modelTest) countAppend(topic ledger.Topic, p predicted) {
	mt.stats["append."+p.why]++
	if p.kind != "ok" {
		return
	}
	mt.stats["entries.appended"] += p.res.Appended
	mt.stats["entries.duplicate"] += p.res.Duplicates
	for _, e := range p.news {
		if e.raw.LedgerDate != 0 {
			mt.stats["entries.nameddate"]++
		}
		if topic == ledger.TopicFunds && (e.in.EntryType == "scheduled-for-payout" || e.in.EntryType == "payout-scheduled") {
			mt.stats["entries.payout"]++
		}
	}
}

func (mt *modelTest) opAppend() {
	var l *mLedger
	var topic ledger.Topic
	var batch []genEntry
	var wantSeq []uint64
	retried := false
	switch {
	case mt.chance(0.01):
		mt.badBatch()
		return
	case mt.chance(0.08):
		mt.appendPair()
		return
	}
	if pb := mt.pending; pb != nil && mt.chance(0.7) {
		l, topic, batch, wantSeq = pb.l, pb.topic, pb.batch, pb.wantSeq
		retried = true
	} else {
		l = mt.pickLedger()
		topic = ledger.Topics[mt.r.IntN(2)]
		batch = mt.genBatch(l, topic)
	}
	mt.pending = nil
	mt.last = fmt.Sprintf("append %d entries to %s/%s (retry %v)", len(batch), l.id, topic, retried)
	p := mt.predictAppend(l, topic, batch)
	res, err := mt.s.Append(mt.ctx, l.id, topic, inputsOf(batch))
	if d := p.check(res, err); d != "" {
		mt.fatalf("%s; %s", d, describeBatch(l, topic, batch, mt.clock.Now()))
	}
	mt.countAppend(topic, p)
	if p.kind == "ok" {
		if wantSeq != nil && !slices.Equal(res.Sequences, wantSeq) {
			mt.fatalf("retried batch got sequences %v, first answer was %v", res.Sequences, wantSeq)
		}
		if p.open > l.open() {
			mt.stats["append.openmoved"]++
		}
		mt.apply(l, topic, p)
		if !retried && mt.chance(0.05) {
			mt.pending = &pendingBatch{l: l, topic: topic, batch: batch, wantSeq: res.Sequences}
		}
	}
	// A client fixes a refused batch by dropping the offending entry.
	if (p.kind == "invalid" || p.kind == "conflict") && len(batch) > 1 && mt.chance(0.5) {
		fixed := append(slices.Clone(batch[:p.at]), batch[p.at+1:]...)
		mt.pending = &pendingBatch{l: l, topic: topic, batch: fixed}
	}
	mt.checkLedger(l)
}

// appendPair posts two batches at the same moment from two goroutines, so
// that the writer may take both into one group commit (one transaction,
// shared caches). Which runs first is up to the scheduler, not the seed: the
// model predicts both orders and accepts either.
func (mt *modelTest) appendPair() {
	type req struct {
		l     *mLedger
		topic ledger.Topic
		batch []genEntry
		res   ledger.AppendResult
		err   error
	}
	a := &req{l: mt.pickLedger(), topic: ledger.Topics[mt.r.IntN(2)]}
	b := &req{l: a.l, topic: ledger.Topics[mt.r.IntN(2)]} // often the same log
	if mt.chance(0.5) {
		b.l = mt.pickLedger()
	}
	a.batch = mt.genBatch(a.l, a.topic)
	b.batch = mt.genBatch(b.l, b.topic)
	mt.last = fmt.Sprintf("append %d entries to %s/%s and %d to %s/%s at once", len(a.batch), a.l.id, a.topic, len(b.batch), b.l.id, b.topic)

	// predict returns the predictions of x then y and the heads of a's and
	// b's logs after both, and leaves the model as it was.
	predict := func(x, y *req) (px, py predicted, heads [2]ledger.Head) {
		sx, sy := x.l.save(), y.l.save()
		px = mt.predictAppend(x.l, x.topic, x.batch)
		if px.kind == "ok" {
			mt.apply(x.l, x.topic, px)
		}
		py = mt.predictAppend(y.l, y.topic, y.batch)
		if py.kind == "ok" {
			mt.apply(y.l, y.topic, py)
		}
		heads = [2]ledger.Head{modelHead(a.l, a.topic), modelHead(b.l, b.topic)}
		y.l.restore(sy)
		x.l.restore(sx)
		return px, py, heads
	}
	pa1, pb1, heads1 := predict(a, b) // a first
	pb2, pa2, heads2 := predict(b, a) // b first

	// A write that changes nothing goes first: while the writer commits it,
	// the two appends queue up and are taken together.
	done := make(chan struct{})
	var blockErr error
	var blockN int
	go func() {
		blockN, blockErr = mt.s.EraseGDPR(mt.ctx, a.l.id, ledger.Erasure{PSPReference: "psp-no-such"})
		done <- struct{}{}
	}()
	for _, r := range []*req{a, b} {
		go func() {
			r.res, r.err = mt.s.Append(mt.ctx, r.l.id, r.topic, inputsOf(r.batch))
			done <- struct{}{}
		}()
	}
	for range 3 {
		<-done
	}
	if blockN != 0 || blockErr != nil && !(errors.Is(blockErr, ledger.ErrNotFound) && !a.l.exists) {
		mt.fatalf("erasing an unknown pspReference: %d, %v", blockN, blockErr)
	}
	var heads [2]ledger.Head
	for i, r := range []*req{a, b} {
		if r.l.exists {
			h, err := mt.s.Head(r.l.id, r.topic)
			if err != nil {
				mt.fatalf("Head(%s, %s): %v", r.l.id, r.topic, err)
			}
			heads[i] = h
		}
	}

	// The answers and the heads tell which order the writer took (both
	// orders may answer alike, e.g. a payout in one log moving the date of
	// the other's entries).
	d1 := pa1.check(a.res, a.err) + pb1.check(b.res, b.err)
	d2 := pb2.check(b.res, b.err) + pa2.check(a.res, a.err)
	first, second, pf, ps := a, b, pa1, pb1
	switch {
	case d1 == "" && heads == heads1:
	case d2 == "" && heads == heads2:
		first, second, pf, ps = b, a, pb2, pa2
	default:
		mt.fatalf("neither order explains the answers and heads %+v.\n a first: %s heads %+v\n b first: %s heads %+v\na: %s\nb: %s",
			heads, d1, heads1, d2, heads2,
			describeBatch(a.l, a.topic, a.batch, mt.clock.Now()), describeBatch(b.l, b.topic, b.batch, mt.clock.Now()))
	}
	for _, x := range []struct {
		r *req
		p predicted
	}{{first, pf}, {second, ps}} {
		mt.countAppend(x.r.topic, x.p)
		if x.p.kind == "ok" {
			mt.apply(x.r.l, x.r.topic, x.p)
		}
	}
	mt.stats["append.pair"]++
	mt.checkLedger(a.l)
	mt.checkLedger(b.l)
}

// ---- checks ----

// modelHead is the head of a log as the model has it (zero for a ledger
// that does not exist).
func modelHead(l *mLedger, topic ledger.Topic) ledger.Head {
	if !l.exists {
		return ledger.Head{}
	}
	tp := l.topics[topic]
	h := ledger.Head{Sequence: uint64(len(tp.entries)), Balance: tp.balance(), Hash: tp.lastHash(), OpenDate: l.open()}
	if n := len(tp.entries); n > 0 {
		h.LedgerDate = tp.entries[n-1].date
	}
	return h
}

func (mt *modelTest) checkHeads() {
	for _, l := range mt.ledgers {
		for _, topic := range ledger.Topics {
			h, err := mt.s.Head(l.id, topic)
			if !l.exists {
				if !errors.Is(err, ledger.ErrNotFound) {
					mt.fatalf("Head(%s, %s) of a ledger never created: %v, want ErrNotFound", l.id, topic, err)
				}
				continue
			}
			if err != nil {
				mt.fatalf("Head(%s, %s): %v", l.id, topic, err)
			}
			if want := modelHead(l, topic); h != want {
				mt.fatalf("Head(%s, %s) = seq %d balance %d date %s open %s hash %x, want seq %d balance %d date %s open %s hash %x",
					l.id, topic, h.Sequence, h.Balance, h.LedgerDate, h.OpenDate, h.Hash[:6],
					want.Sequence, want.Balance, want.LedgerDate, want.OpenDate, want.Hash[:6])
			}
		}
	}
}

// entryAt names an entry in failure messages.
type entryAt struct {
	ledger string
	topic  ledger.Topic
	seq    uint64
}

func (a entryAt) String() string { return fmt.Sprintf("%s/%s sequence %d", a.ledger, a.topic, a.seq) }

func (mt *modelTest) compareEntry(l *mLedger, topic ledger.Topic, got ledger.Entry, e *mEntry, withGDPR bool) {
	where := entryAt{l.id, topic, e.seq}
	want := e.entry(l, topic)
	want.Hash = e.hash
	g := got
	if !g.Time.Equal(want.Time) || g.Time.Location() != time.UTC {
		mt.mismatch("entry.time", "%s: time %s, want %s in UTC", where, g.Time, want.Time)
	}
	if (g.RecipientHandle == nil) != (want.RecipientHandle == nil) || g.RecipientHandle != nil && *g.RecipientHandle != *want.RecipientHandle {
		mt.mismatch("entry.recipientHandle", "%s: recipientHandle %v, want %v", where, g.RecipientHandle, want.RecipientHandle)
	}
	// HasGDPR: "whether GDPR fields were posted with the entry; they may
	// since have been erased".
	if g.HasGDPR != e.hasGDPR {
		mt.mismatch("entry.HasGDPR", "%s: HasGDPR %v, want %v (erased %v)", where, g.HasGDPR, e.hasGDPR, e.erased)
	}
	switch {
	case !withGDPR || !e.hasGDPR || e.erased:
		if g.GDPR != nil {
			mt.mismatch("entry.GDPR", "%s: GDPR %+v, want none (read with GDPR %v, posted %v, erased %v)", where, *g.GDPR, withGDPR, e.hasGDPR, e.erased)
		}
	case g.GDPR == nil || *g.GDPR != e.gdpr:
		mt.mismatch("entry.GDPR", "%s: GDPR %+v, want %+v", where, g.GDPR, e.gdpr)
	}
	g.Time, want.Time = time.Time{}, time.Time{}
	g.RecipientHandle, want.RecipientHandle = nil, nil
	g.HasGDPR, g.GDPR = false, nil
	if g != want {
		mt.fatalf("%s:\n got %+v\nwant %+v", where, g, want)
	}
}

// checkFull compares everything readable: ledgers, every entry, the date
// index, the reference indexes and the time index.
func (mt *modelTest) checkFull(final bool) {
	for _, l := range mt.ledgers {
		mt.checkLedger(l)
		if !l.exists {
			if _, err := mt.s.Entries(l.id, ledger.TopicFunds, 1, 10, ledger.ReadOptions{}); !errors.Is(err, ledger.ErrNotFound) {
				mt.fatalf("Entries of a ledger never created: %v, want ErrNotFound", err)
			}
			continue
		}
		dates := map[ledger.Date]bool{l.open() - 1: true, l.open(): true, l.open() + 1: true}
		for _, topic := range ledger.Topics {
			tp := l.topics[topic]
			mt.checkEntries(l, topic, true, final)
			if final {
				mt.checkEntries(l, topic, false, false)
			}
			for _, e := range tp.entries {
				dates[e.date] = true
			}
		}
		for _, topic := range ledger.Topics {
			tp := l.topics[topic]
			ranges := map[ledger.Date][2]uint64{}
			for _, e := range tp.entries {
				r, ok := ranges[e.date]
				if !ok {
					r[0] = e.seq
				}
				r[1] = e.seq
				ranges[e.date] = r
			}
			for _, d := range slices.Sorted(maps.Keys(dates)) {
				if d <= 0 {
					continue
				}
				first, last, ok, err := mt.s.DateRange(l.id, topic, d)
				if err != nil {
					mt.fatalf("DateRange(%s, %s, %s): %v", l.id, topic, d, err)
				}
				r, want := ranges[d]
				if ok != want || first != r[0] || last != r[1] {
					mt.mismatch("DateRange", "DateRange(%s, %s, %s) = %d–%d %v, want %d–%d %v", l.id, topic, d, first, last, ok, r[0], r[1], want)
				}
			}
			mt.checkLookups(l, topic, final)
		}
	}
}

func (mt *modelTest) checkEntries(l *mLedger, topic ledger.Topic, withGDPR, canonical bool) {
	tp := l.topics[topic]
	var got []ledger.Entry
	for from := uint64(1); ; {
		page, err := mt.s.Entries(l.id, topic, from, 1+mt.r.IntN(3000), ledger.ReadOptions{GDPR: withGDPR})
		if err != nil {
			mt.fatalf("Entries(%s, %s, %d): %v", l.id, topic, from, err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		from = page[len(page)-1].Sequence + 1
	}
	if len(got) != len(tp.entries) {
		mt.fatalf("Entries(%s, %s) returned %d entries, the model has %d", l.id, topic, len(got), len(tp.entries))
	}
	// The model chained its entries with ChainHash as it appended them:
	// comparing Hash compares the whole chain.
	for i := range got {
		mt.compareEntry(l, topic, got[i], tp.entries[i], withGDPR)
	}
	if canonical {
		// The chain again, from what was read and from the documented
		// encoding alone.
		var prev [32]byte
		for i := range got {
			e := got[i]
			if h := ledger.ChainHash(prev, &e); h != e.Hash {
				mt.mismatch("hashchain", "%s/%s sequence %d: hash %x, recomputed %x", l.id, topic, e.Sequence, e.Hash[:6], h[:6])
			}
			prev = e.Hash
		}
		prev = [32]byte{}
		for i := range got {
			e := got[i]
			c := modelCanonical(&e)
			if !slices.Equal(ledger.Canonical(&e), c) {
				mt.mismatch("canonical", "%s/%s sequence %d: Canonical differs from its documented encoding", l.id, topic, e.Sequence)
			}
			if h := sha256.Sum256(append(prev[:], c...)); h != e.Hash {
				mt.mismatch("hashchain.documented", "%s/%s sequence %d: hash %x, SHA-256(prev ‖ documented encoding) %x", l.id, topic, e.Sequence, e.Hash[:6], h[:6])
			}
			prev = e.Hash
		}
	}
}

// modelCanonical is the canonical encoding as Canonical's doc comment
// describes it, written independently.
func modelCanonical(e *ledger.Entry) []byte {
	var b bytes.Buffer
	str := func(s string) {
		binary.Write(&b, binary.BigEndian, uint32(len(s)))
		b.WriteString(s)
	}
	i64 := func(v int64) { binary.Write(&b, binary.BigEndian, v) }
	b.WriteByte(1)
	str(e.LedgerID)
	str(string(e.Topic))
	binary.Write(&b, binary.BigEndian, e.Sequence)
	str(e.PSPReference)
	i64(e.Time.UnixMicro())
	str(time.Unix(int64(e.LedgerDate)*86400, 0).UTC().Format("2006-01-02"))
	str(e.EntryType)
	str(e.Reference)
	str(e.Currency)
	i64(e.Amount)
	i64(e.BalanceBefore)
	i64(e.BalanceAfter)
	if e.RecipientHandle != nil {
		b.WriteByte(1)
		str(*e.RecipientHandle)
	} else {
		b.WriteByte(0)
		str("")
	}
	return b.Bytes()
}

func (mt *modelTest) checkLookups(l *mLedger, topic ledger.Topic, final bool) {
	tp := l.topics[topic]
	byRef, byPSP := map[string][]uint64{"no-such-ref": nil}, map[string][]uint64{"psp-no-such": nil}
	for _, e := range tp.entries {
		if e.in.Reference != "" { // "entries with an empty reference are not indexed by it"
			byRef[e.in.Reference] = append(byRef[e.in.Reference], e.seq)
		}
		byPSP[e.in.PSPReference] = append(byPSP[e.in.PSPReference], e.seq)
	}
	byRef[""] = nil
	// Values of the other topic must not be found in this one.
	other := ledger.TopicFunds
	if topic == ledger.TopicFunds {
		other = ledger.TopicFees
	}
	for _, e := range l.topics[other].entries {
		if _, ok := byRef[e.in.Reference]; !ok && e.in.Reference != "" {
			byRef[e.in.Reference] = nil
		}
	}
	check := func(idx ledger.Index, name, v string, want []uint64) {
		got, err := mt.s.Lookup(l.id, topic, idx, v, 0, 1<<30)
		if err != nil {
			mt.fatalf("Lookup(%s, %s, %s, %q): %v", l.id, topic, name, v, err)
		}
		if !slices.Equal(got, want) {
			mt.mismatch("Lookup", "Lookup(%s, %s, %s, %q) = %v, want %v", l.id, topic, name, v, got, want)
		}
		if len(want) > 1 {
			k := mt.r.IntN(len(want))
			after, limit := want[k], 1+mt.r.IntN(3)
			got, err := mt.s.Lookup(l.id, topic, idx, v, after, limit)
			w := want[k+1:]
			w = w[:min(limit, len(w))]
			if err != nil || !slices.Equal(got, w) {
				mt.mismatch("Lookup.page", "Lookup(%s, %s, %s, %q, after %d, limit %d) = %v %v, want %v", l.id, topic, name, v, after, limit, got, err, w)
			}
		}
	}
	// Every value at the end; a random sample before. (Sorted first: map
	// order must not decide what the seeded generator draws next.)
	sample := func(m map[string][]uint64, n int) []string {
		keys := slices.Sorted(maps.Keys(m))
		if !final {
			mt.r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			keys = keys[:min(n, len(keys))]
		}
		return keys
	}
	for _, v := range sample(byRef, 10) {
		check(ledger.ByReference, "reference", v, byRef[v])
	}
	for _, v := range sample(byPSP, 8) {
		check(ledger.ByPSPReference, "pspReference", v, byPSP[v])
	}
	// The time index, over a few windows.
	for range 3 {
		if len(tp.entries) == 0 {
			break
		}
		from := tp.entries[mt.r.IntN(len(tp.entries))].in.Time.UnixMicro() - mt.r.Int64N(3e9)
		to := from + mt.r.Int64N(int64(48*time.Hour/time.Microsecond))
		limit := 1 + mt.r.IntN(50)
		var want []*mEntry
		for _, e := range tp.entries {
			if us := e.in.Time.UnixMicro(); us >= from && us < to {
				want = append(want, e)
			}
		}
		sort.SliceStable(want, func(i, j int) bool { return want[i].in.Time.Before(want[j].in.Time) })
		var ws []uint64
		for _, e := range want[:min(limit, len(want))] {
			ws = append(ws, e.seq)
		}
		got, err := mt.s.LookupTime(l.id, topic, from, to, limit)
		if err != nil || !slices.Equal(got, ws) {
			mt.mismatch("LookupTime", "LookupTime(%s, %s, %d, %d, %d) = %v %v, want %v", l.id, topic, from, to, limit, got, err, ws)
		}
	}
}

func (mt *modelTest) checkFinal() {
	var want []string
	var entries uint64
	for _, l := range mt.ledgers {
		if l.exists {
			want = append(want, l.id)
			entries += uint64(len(l.topics[ledger.TopicFunds].entries) + len(l.topics[ledger.TopicFees].entries))
		}
	}
	sort.Strings(want)
	got, err := mt.s.ListLedgers("", 100)
	if err != nil {
		mt.fatalf("ListLedgers: %v", err)
	}
	var ids []string
	for _, g := range got {
		ids = append(ids, g.ID)
	}
	if !slices.Equal(ids, want) {
		mt.fatalf("ListLedgers: %v, want %v", ids, want)
	}
	// Reads of a topic that does not exist.
	const bad ledger.Topic = "payouts"
	id := mt.ledgers[0].id
	_, herr := mt.s.Head(id, bad)
	_, eerr := mt.s.Entries(id, bad, 1, 10, ledger.ReadOptions{})
	_, _, _, derr := mt.s.DateRange(id, bad, 20000)
	_, lerr := mt.s.Lookup(id, bad, ledger.ByReference, "order-1", 0, 10)
	_, terr := mt.s.LookupTime(id, bad, 0, math.MaxInt64, 10)
	for i, err := range []error{herr, eerr, derr, lerr, terr} {
		var fe *ledger.FieldError
		if !errors.As(err, &fe) || fe.Field != "topic" {
			mt.fatalf("read %d of topic %q: %v, want a *FieldError on topic", i, bad, err)
		}
	}
	f, ok := mt.s.(ledger.Files)
	if !ok {
		return // the entries were checked above, chain and all
	}
	rep, err := f.Verify(mt.ctx, nil)
	if err != nil {
		mt.fatalf("Verify: %v", err)
	}
	if rep.Ledgers != len(want) || rep.Entries != entries {
		mt.fatalf("Verify checked %d ledgers and %d entries, want %d and %d", rep.Ledgers, rep.Entries, len(want), entries)
	}
}
