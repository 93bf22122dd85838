package report

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

func TestPeriod(t *testing.T) {
	for _, c := range []struct {
		freq, day, start, end string
	}{
		{Daily, "2024-03-05", "2024-03-05", "2024-03-05"},
		{Weekly, "2024-03-05", "2024-03-04", "2024-03-10"}, // Tuesday → Monday..Sunday
		{Weekly, "2024-03-10", "2024-03-04", "2024-03-10"}, // Sunday
		{Weekly, "2024-03-11", "2024-03-11", "2024-03-17"}, // Monday
		{Monthly, "2024-02-10", "2024-02-01", "2024-02-29"},
		{Monthly, "2023-12-31", "2023-12-01", "2023-12-31"},
	} {
		s, e := period(c.freq, mustDate(c.day))
		if s.String() != c.start || e.String() != c.end {
			t.Errorf("%s of %s = %s..%s, want %s..%s", c.freq, c.day, s, e, c.start, c.end)
		}
	}
}

// A daily schedule makes one file per date that closes after it was made,
// once, as source auto; the files are the client's.
func TestService_Schedules(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "data"))
	seedLedger(t, st, "302321", "NOK", 2, 3) // closes day0, day0+1; open day0+2
	grantClient(t, st, "acme", "302321")
	s := startService(t, st, filepath.Join(dir, "reports"), func(c *Config) { c.ScheduleEvery = time.Hour })
	ctx := context.Background()

	if _, _, err := s.PutSchedule(ctx, Schedule{ID: "d", LedgerID: "302321", ClientID: "nobody", Frequency: Daily, Type: TypeEntries, Format: FormatCSV}); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("schedule for an unknown client: %v", err)
	}
	if _, _, err := s.PutSchedule(ctx, Schedule{ID: "d", LedgerID: "302321", ClientID: "acme", Frequency: "hourly", Type: TypeEntries, Format: FormatCSV}); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("bad frequency: %v", err)
	}
	sc, created, err := s.PutSchedule(ctx, Schedule{ID: "daily-csv", LedgerID: "302321", ClientID: "acme", Frequency: Daily, Type: TypeBalances, Format: FormatCSV})
	if err != nil || !created || sc.FromDate != day0+2 {
		t.Fatalf("PutSchedule = %+v, %v, %v", sc, created, err)
	}
	if _, created, _ := s.PutSchedule(ctx, sc); created {
		t.Errorf("replacing reported created")
	}
	if l, err := s.Schedules("302321"); err != nil || len(l) != 1 || l[0].ID != "daily-csv" {
		t.Errorf("Schedules = %+v, %v", l, err)
	}

	// Closing day0+2 and day0+3 makes two files, one per date.
	if _, err := st.CloseDate(ctx, "302321", day0+3); err != nil {
		t.Fatal(err)
	}
	files := waitFiles(t, s, "acme", 2)
	got := map[ledger.Date]bool{}
	for _, f := range files {
		if f.Source != SourceAuto || f.ScheduleID != "daily-csv" || f.From != f.To {
			t.Errorf("scheduled file %+v", f)
		}
		got[f.From] = true
		if f = waitDone(t, s, "acme", f.ID); f.Status != StatusSuccessful {
			t.Errorf("scheduled file failed: %s", f.Error)
		}
	}
	if !got[day0+2] || !got[day0+3] {
		t.Errorf("files for %v, want %s and %s", got, day0+2, day0+3)
	}
	// Running the schedules again makes nothing new.
	if err := s.runSchedules(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.List("acme", ListFilter{}); n != 2 {
		t.Errorf("%d files after a second run, want 2", n)
	}
	if err := s.DeleteSchedule(ctx, "302321", "daily-csv"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSchedule(ctx, "302321", "daily-csv"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

// waitFiles waits until client has n files.
func waitFiles(t *testing.T, s *Service, client string, n int) []File {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, files, err := s.List(client, ListFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if c >= n {
			return files
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d files, want %d", c, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
