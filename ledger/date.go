package ledger

import (
	"fmt"
	"time"
)

// Date is a ledger date: a calendar day counted from 1970-01-01 (day 0).
// The zero Date is 1970-01-01 and doubles as "no date" where a field is
// optional; ledgers cannot hold dates before 1970-01-02.
type Date int32

// ParseDate parses "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || len(s) != 10 {
		return 0, fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
	}
	d := dateOfCivil(t.Year(), t.Month(), t.Day())
	if d <= 0 {
		return 0, fmt.Errorf("%q is before 1970-01-02", s)
	}
	return d, nil
}

func dateOfCivil(y int, m time.Month, day int) Date {
	return Date(time.Date(y, m, day, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// Civil returns the year, month and day of d.
func (d Date) Civil() (int, time.Month, int) {
	return time.Unix(int64(d)*86400, 0).UTC().Date()
}

// String formats d as "YYYY-MM-DD".
func (d Date) String() string {
	return string(d.AppendFormat(make([]byte, 0, 10)))
}

// AppendFormat appends "YYYY-MM-DD" to b.
func (d Date) AppendFormat(b []byte) []byte {
	y, m, day := d.Civil()
	if y < 0 || y > 9999 {
		return fmt.Appendf(b, "%04d-%02d-%02d", y, int(m), day)
	}
	return append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(m)/10), byte('0'+int(m)%10), '-', byte('0'+day/10), byte('0'+day%10))
}

// IsZero reports whether d is unset.
func (d Date) IsZero() bool { return d == 0 }

// Calendar maps instants to ledger dates for one time zone and daily cutoff:
// with cutoff 04:00, date D runs from D 04:00 to D+1 04:00, local time.
type Calendar struct {
	loc    *time.Location
	cutoff int // minutes after local midnight, 0 ≤ cutoff < 1440
}

// NewCalendar returns the calendar of an IANA zone and a cutoff "HH:MM".
func NewCalendar(zone, cutoff string) (Calendar, error) {
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "" || zone == "Local" {
		return Calendar{}, fieldErr("timeZone", "%q is not an IANA time zone", zone)
	}
	m, err := parseCutoff(cutoff)
	if err != nil {
		return Calendar{}, err
	}
	return Calendar{loc: loc, cutoff: m}, nil
}

func parseCutoff(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, fieldErr("cutoff", "%q is not a time of day (HH:MM)", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Start returns the first instant of date d: the instant the local wall clock
// reads the cutoff on that day. Where the cutoff falls in a daylight-saving gap
// it is the instant the clocks jump over it; where it falls in an overlap (the
// wall clock reads it twice), the first of the two.
func (c Calendar) Start(d Date) time.Time {
	y, m, day := d.Civil()
	wall := time.Date(y, m, day, c.cutoff/60, c.cutoff%60, 0, 0, time.UTC)
	var offs [3]int
	for i, probe := range []time.Duration{-14 * time.Hour, 0, 14 * time.Hour} {
		_, offs[i] = wall.Add(probe).In(c.loc).Zone()
	}
	var best time.Time
	for _, off := range offs {
		cand := wall.Add(-time.Duration(off) * time.Second)
		if _, o := cand.In(c.loc).Zone(); o == off && (best.IsZero() || cand.Before(best)) {
			best = cand
		}
	}
	if !best.IsZero() {
		return best
	}
	// The wall time does not exist: find the jump between the two offsets.
	lo := wall.Add(-time.Duration(max(offs[0], offs[2])) * time.Second) // before the jump
	hi := wall.Add(-time.Duration(min(offs[0], offs[2])) * time.Second) // after the jump
	_, offLo := lo.In(c.loc).Zone()
	for hi.Sub(lo) > time.Nanosecond {
		mid := lo.Add(hi.Sub(lo) / 2)
		if _, o := mid.In(c.loc).Zone(); o == offLo {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// End returns the first instant after date d, which is Start(d+1).
func (c Calendar) End(d Date) time.Time { return c.Start(d + 1) }

// DateOf returns the ledger date that instant t falls in:
// the D with Start(D) ≤ t < Start(D+1).
func (c Calendar) DateOf(t time.Time) Date {
	l := t.In(c.loc)
	d := dateOfCivil(l.Date())
	if l.Hour()*60+l.Minute() < c.cutoff {
		d--
	}
	// The wall-clock guess can be off by one around a daylight-saving change
	// that moves the cutoff itself; settle it against the boundaries.
	if t.Before(c.Start(d)) {
		d--
	} else if !t.Before(c.Start(d + 1)) {
		d++
	}
	return d
}

// Location returns the calendar's time zone.
func (c Calendar) Location() *time.Location { return c.loc }

// Cutoff returns the cutoff as "HH:MM".
func (c Calendar) Cutoff() string { return fmt.Sprintf("%02d:%02d", c.cutoff/60, c.cutoff%60) }
