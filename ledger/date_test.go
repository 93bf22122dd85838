package ledger

import (
	"math/rand/v2"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestCalendar_Start(t *testing.T) {
	tests := []struct {
		zone, cutoff, date string
		start              string // the first instant of the date, UTC
	}{
		// Oslo, midnight cutoff, across both 2026 changes: a 23 h and a 25 h date.
		{"Europe/Oslo", "00:00", "2026-03-28", "2026-03-27T23:00:00Z"},
		{"Europe/Oslo", "00:00", "2026-03-29", "2026-03-28T23:00:00Z"},
		{"Europe/Oslo", "00:00", "2026-03-30", "2026-03-29T22:00:00Z"},
		{"Europe/Oslo", "00:00", "2026-10-25", "2026-10-24T22:00:00Z"},
		{"Europe/Oslo", "00:00", "2026-10-26", "2026-10-25T23:00:00Z"},
		// Oslo, 04:00 cutoff.
		{"Europe/Oslo", "04:00", "2026-03-28", "2026-03-28T03:00:00Z"},
		{"Europe/Oslo", "04:00", "2026-03-29", "2026-03-29T02:00:00Z"},
		{"Europe/Oslo", "04:00", "2026-10-24", "2026-10-24T02:00:00Z"},
		{"Europe/Oslo", "04:00", "2026-10-25", "2026-10-25T03:00:00Z"},
		{"Europe/Oslo", "04:00", "2026-10-26", "2026-10-26T03:00:00Z"},
		// A cutoff inside the spring gap starts at the jump; inside the
		// autumn overlap, at its first occurrence.
		{"Europe/Oslo", "02:30", "2026-03-29", "2026-03-29T01:00:00Z"},
		{"Europe/Oslo", "02:30", "2026-10-25", "2026-10-25T00:30:00Z"},
		// Auckland: DST ends 2026-04-05 03:00 (+13 → +12), starts 2026-09-27 02:00 (+12 → +13).
		{"Pacific/Auckland", "00:00", "2026-04-05", "2026-04-04T11:00:00Z"},
		{"Pacific/Auckland", "00:00", "2026-04-06", "2026-04-05T12:00:00Z"},
		{"Pacific/Auckland", "00:00", "2026-09-27", "2026-09-26T12:00:00Z"},
		{"Pacific/Auckland", "00:00", "2026-09-28", "2026-09-27T11:00:00Z"},
		{"Pacific/Auckland", "04:00", "2026-04-05", "2026-04-04T16:00:00Z"},
		{"UTC", "00:00", "2026-06-01", "2026-06-01T00:00:00Z"},
		{"UTC", "04:00", "2026-06-01", "2026-06-01T04:00:00Z"},
		{"Europe/Helsinki", "00:00", "2026-03-29", "2026-03-28T22:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.zone+"/"+tt.cutoff+"/"+tt.date, func(t *testing.T) {
			cal, err := NewCalendar(tt.zone, tt.cutoff)
			if err != nil {
				t.Fatal(err)
			}
			d := mustDate(t, tt.date)
			start := cal.Start(d)
			if want := utc(tt.start); !start.Equal(want) {
				t.Fatalf("Start(%s) = %s, want %s", d, start.UTC(), want)
			}
			// The cutoff instant itself belongs to the date; the instant
			// before it to the date before.
			if got := cal.DateOf(start); got != d {
				t.Errorf("DateOf(%s) = %s, want %s", start.UTC(), got, d)
			}
			if got := cal.DateOf(start.Add(-time.Microsecond)); got != d-1 {
				t.Errorf("DateOf(%s) = %s, want %s", start.Add(-time.Microsecond).UTC(), got, d-1)
			}
		})
	}
}

func TestCalendar_Lengths(t *testing.T) {
	tests := []struct {
		zone, cutoff, date string
		hours              float64
	}{
		{"Europe/Oslo", "00:00", "2026-03-29", 23},
		{"Europe/Oslo", "00:00", "2026-10-25", 25},
		{"Europe/Oslo", "04:00", "2026-03-28", 23}, // 04:00 on the 28th to 04:00 on the 29th spans the jump
		{"Europe/Oslo", "04:00", "2026-10-24", 25}, // 04:00 CEST on the 24th to 04:00 CET on the 25th
		{"Europe/Oslo", "04:00", "2026-10-25", 24},
		{"Europe/Oslo", "00:00", "2026-06-15", 24},
		{"Pacific/Auckland", "00:00", "2026-04-05", 25},
		{"Pacific/Auckland", "00:00", "2026-09-27", 23},
		{"UTC", "00:00", "2026-03-29", 24},
	}
	for _, tt := range tests {
		cal, err := NewCalendar(tt.zone, tt.cutoff)
		if err != nil {
			t.Fatal(err)
		}
		d := mustDate(t, tt.date)
		if got := cal.End(d).Sub(cal.Start(d)).Hours(); got != tt.hours {
			t.Errorf("%s %s %s lasts %v h, want %v", tt.zone, tt.cutoff, tt.date, got, tt.hours)
		}
	}
}

// TestCalendar_DateOfProperty checks Start(DateOf(t)) ≤ t < Start(DateOf(t)+1)
// for random instants in zones with odd offsets and changes.
func TestCalendar_DateOfProperty(t *testing.T) {
	seed := rand.Uint64()
	r := rand.New(rand.NewPCG(seed, 1))
	zones := []string{"Europe/Oslo", "Pacific/Auckland", "UTC", "America/St_Johns", "Asia/Kathmandu", "Australia/Lord_Howe", "America/Santiago"}
	cutoffs := []string{"00:00", "04:00", "02:30", "23:59", "01:00"}
	base := utc("2024-01-01T00:00:00Z")
	for i := 0; i < 20000; i++ {
		cal, err := NewCalendar(zones[r.IntN(len(zones))], cutoffs[r.IntN(len(cutoffs))])
		if err != nil {
			t.Fatal(err)
		}
		ts := base.Add(time.Duration(r.Int64N(int64(3 * 365 * 24 * time.Hour))))
		d := cal.DateOf(ts)
		if ts.Before(cal.Start(d)) || !ts.Before(cal.Start(d+1)) {
			t.Fatalf("seed %d: %s %s: DateOf(%s) = %s but that date runs %s–%s",
				seed, cal.Location(), cal.Cutoff(), ts, d, cal.Start(d), cal.Start(d+1))
		}
	}
}
