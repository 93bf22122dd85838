package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Schedule frequencies.
const (
	Daily   = "daily"
	Weekly  = "weekly" // Monday to Sunday
	Monthly = "monthly"
)

// maxCatchUp bounds how far back the scheduler looks for periods that
// closed while it was not running.
const maxCatchUp = MaxDays

// Schedule makes a file for its client each time a ledger date closes that
// completes a period.
type Schedule struct {
	ID        string         `json:"scheduleId"`
	LedgerID  string         `json:"ledgerId"`
	ClientID  string         `json:"clientId"`
	Frequency string         `json:"frequency"`
	Type      string         `json:"type"`
	Topics    []ledger.Topic `json:"topics"`
	Format    string         `json:"format"`
	Language  string         `json:"language"`
	GDPR      bool           `json:"gdpr,omitempty"`
	CreatedAt time.Time      `json:"createdAt"`
	// FromDate is the ledger's open date when the schedule was made: files
	// are made for periods ending on it or later.
	FromDate ledger.Date `json:"fromDate"`
}

func scheduleKey(ledgerID, id string) string { return ledgerID + "\x00" + id }

// validIdent is the rule of ledger and client ids, for schedule ids.
func validIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-', c == ':':
		default:
			return false
		}
	}
	return true
}

// PutSchedule creates or replaces a schedule (by ledger and id) and reports
// whether it was created. The ledger must exist; the client must exist and
// may read the ledger (with GDPR consent when GDPR columns are asked for).
// A replaced schedule keeps its CreatedAt and FromDate.
func (s *Service) PutSchedule(ctx context.Context, sc Schedule) (Schedule, bool, error) {
	if !validIdent(sc.ID) {
		return Schedule{}, false, fieldErr("scheduleId", "must be 1–64 characters of A–Z a–z 0–9 . _ - :")
	}
	switch sc.Frequency {
	case Daily, Weekly, Monthly:
	case "":
		return Schedule{}, false, fieldErr("frequency", "required: daily, weekly or monthly")
	default:
		return Schedule{}, false, fieldErr("frequency", "%q is not a frequency (daily, weekly or monthly)", sc.Frequency)
	}
	if sc.ClientID == "" {
		return Schedule{}, false, fieldErr("clientId", "required")
	}
	r, err := Request{Type: sc.Type, LedgerID: sc.LedgerID, Topics: sc.Topics, From: 1, To: 1,
		Format: sc.Format, Language: sc.Language, GDPR: sc.GDPR}.normalize()
	if err != nil {
		return Schedule{}, false, err
	}
	sc.Topics, sc.Language = r.Topics, r.Language
	h, err := s.st.Head(sc.LedgerID, ledger.TopicFunds)
	if err != nil {
		return Schedule{}, false, err
	}
	c, err := s.st.GetClient(sc.ClientID)
	if errors.Is(err, ledger.ErrNotFound) {
		return Schedule{}, false, fieldErr("clientId", "client %s does not exist", sc.ClientID)
	}
	if err != nil {
		return Schedule{}, false, err
	}
	g, ok := c.Grant(sc.LedgerID)
	if !ok || !c.HasScope(ledger.ScopeRead) {
		return Schedule{}, false, fieldErr("clientId", "client %s may not read ledger %s (scope read and a grant are needed)", sc.ClientID, sc.LedgerID)
	}
	if sc.GDPR && !g.GDPRConsent {
		return Schedule{}, false, fieldErr("includeGDPRSensitiveData", "client %s has no GDPR consent for ledger %s", sc.ClientID, sc.LedgerID)
	}
	now := s.now().UTC()
	var created bool
	err = s.st.UpdateRecords(ctx, func(tx ledger.RecordTx) error {
		key := scheduleKey(sc.LedgerID, sc.ID)
		v, err := tx.Get(ledger.RecordReportSchedules, key)
		if err != nil {
			return err
		}
		created = v == nil
		if created {
			sc.CreatedAt, sc.FromDate = now, h.OpenDate
			if sc.FromDate == 0 {
				sc.FromDate = dateOf(now)
			}
		} else {
			var old Schedule
			if err := json.Unmarshal(v, &old); err != nil {
				return fmt.Errorf("%w: schedule record: %v", ledger.ErrDamaged, err)
			}
			sc.CreatedAt, sc.FromDate = old.CreatedAt, old.FromDate
		}
		b, _ := json.Marshal(sc)
		return tx.Put(ledger.RecordReportSchedules, key, b)
	})
	if err != nil {
		return Schedule{}, false, err
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return sc, created, nil
}

func dateOf(t time.Time) ledger.Date { return ledger.Date(t.Unix() / 86400) }

// Schedules returns a ledger's schedules, sorted by id. An unknown ledger is
// ErrNotFound.
func (s *Service) Schedules(ledgerID string) ([]Schedule, error) {
	if _, err := s.st.GetLedger(ledgerID); err != nil {
		return nil, err
	}
	out := []Schedule{}
	err := s.st.ScanRecords(ledger.RecordReportSchedules, ledgerID+"\x00", func(_ string, v []byte) error {
		var sc Schedule
		if err := json.Unmarshal(v, &sc); err != nil {
			return fmt.Errorf("%w: schedule record: %v", ledger.ErrDamaged, err)
		}
		out = append(out, sc)
		return nil
	})
	return out, err
}

// DeleteSchedule deletes a schedule; the files it made stay. A missing one
// is ErrNotFound.
func (s *Service) DeleteSchedule(ctx context.Context, ledgerID, id string) error {
	return s.st.UpdateRecords(ctx, func(tx ledger.RecordTx) error {
		key := scheduleKey(ledgerID, id)
		v, err := tx.Get(ledger.RecordReportSchedules, key)
		if err != nil {
			return err
		}
		if v == nil {
			return fmt.Errorf("schedule %s of ledger %s: %w", id, ledgerID, ledger.ErrNotFound)
		}
		return tx.Delete(ledger.RecordReportSchedules, key)
	})
}

// period returns the first and last date of the period of freq holding d.
func period(freq string, d ledger.Date) (ledger.Date, ledger.Date) {
	switch freq {
	case Weekly:
		start := d - (d+3)%7 // 1970-01-01 was a Thursday
		return start, start + 6
	case Monthly:
		y, m, day := d.Civil()
		start := d - ledger.Date(day-1)
		n := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
		return start, start + ledger.Date(n-1)
	}
	return d, d
}

// runSchedules makes the files that are due: for each schedule, each
// period that ends on or after its FromDate and on or before the ledger's
// last closed date, unless made already (a run record keyed by schedule and
// period, written with the file in one transaction: each file is made once).
func (s *Service) runSchedules(ctx context.Context) error {
	var scs []Schedule
	err := s.st.ScanRecords(ledger.RecordReportSchedules, "", func(_ string, v []byte) error {
		var sc Schedule
		if err := json.Unmarshal(v, &sc); err != nil {
			return fmt.Errorf("%w: schedule record: %v", ledger.ErrDamaged, err)
		}
		scs = append(scs, sc)
		return nil
	})
	if err != nil {
		return err
	}
	for _, sc := range scs {
		h, err := s.st.Head(sc.LedgerID, ledger.TopicFunds)
		if errors.Is(err, ledger.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if h.OpenDate == 0 {
			continue
		}
		lastClosed := h.OpenDate - 1
		from := max(sc.FromDate, lastClosed-maxCatchUp)
		for start, end := period(sc.Frequency, from); end <= lastClosed; start, end = period(sc.Frequency, end+1) {
			if end < sc.FromDate {
				continue
			}
			if err := s.makeScheduled(ctx, sc, start, end); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) makeScheduled(ctx context.Context, sc Schedule, start, end ledger.Date) error {
	r := Request{Type: sc.Type, LedgerID: sc.LedgerID, Topics: sc.Topics, From: start, To: end,
		Format: sc.Format, Language: sc.Language, GDPR: sc.GDPR}
	f := s.newFile(sc.ClientID, r, SourceAuto, sc.ID)
	runKey := sc.LedgerID + "\x00" + sc.ID + "\x00" + start.String() + "\x00" + end.String()
	made := false
	err := s.st.UpdateRecords(ctx, func(tx ledger.RecordTx) error {
		made = false
		v, err := tx.Get(ledger.RecordScheduleRuns, runKey)
		if err != nil || v != nil {
			return err
		}
		if err := tx.Put(ledger.RecordScheduleRuns, runKey, []byte(f.key())); err != nil {
			return err
		}
		made = true
		return tx.Put(ledger.RecordReportFiles, f.key(), f.marshal())
	})
	if err == nil && made {
		s.log.Info("scheduled report file", "schedule", sc.ID, "ledger", sc.LedgerID, "from", start, "to", end, "file", f.ID)
		s.enqueue(f.key())
	}
	return err
}

// scheduleLoop runs the schedules now, after every change of a scheduled
// ledger (an append or a date closing; at most once a second), after every
// schedule change and every ScheduleEvery, until ctx ends.
func (s *Service) scheduleLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ScheduleEvery)
	defer t.Stop()
	for {
		// Take the change channels first, then read: a change between the
		// two still wakes the loop.
		changed := make(chan struct{}, 1)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		ledgers, err := s.scheduledLedgers()
		for _, id := range ledgers {
			ch := s.st.Changed(id, ledger.TopicFunds)
			wg.Go(func() {
				select {
				case <-ch:
					select {
					case changed <- struct{}{}:
					default:
					}
				case <-stop:
				}
			})
		}
		if err == nil {
			err = s.runSchedules(ctx)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Error("report schedules", "err", err)
		}
		debounce := false
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-s.kick:
		case <-changed:
			debounce = true
		}
		close(stop)
		wg.Wait()
		if ctx.Err() != nil || !s.st.Ready() {
			return
		}
		if debounce {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// scheduledLedgers returns the ids of the ledgers that have schedules.
func (s *Service) scheduledLedgers() ([]string, error) {
	var out []string
	err := s.st.ScanRecords(ledger.RecordReportSchedules, "", func(k string, _ []byte) error {
		id, _, _ := strings.Cut(k, "\x00")
		if len(out) == 0 || out[len(out)-1] != id {
			out = append(out, id)
		}
		return nil
	})
	return out, err
}
