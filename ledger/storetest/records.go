package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Other packages' records (package report's jobs, schedules, tokens).

func scanAll(t *testing.T, s ledger.Records, kind ledger.RecordKind, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var last string
	if err := s.ScanRecords(kind, prefix, func(k string, v []byte) error {
		if k <= last {
			t.Errorf("scan out of order: %q after %q", k, last)
		}
		last = k
		out[k] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func testRecordsPutGetScanDelete(t *testing.T, h Harness) {
	ctx := context.Background()
	st := h.New(t)
	s := st.Open(t, Options{})
	err := s.UpdateRecords(ctx, func(tx ledger.RecordTx) error {
		for _, k := range []string{"acme\x00b", "acme\x00a", "acme2\x00c", "zed\x00d"} {
			if err := tx.Put(ledger.RecordReportFiles, k, []byte("v-"+k)); err != nil {
				return err
			}
		}
		return tx.Put(ledger.RecordDownloadTokens, "tok", []byte("t"))
	})
	if err != nil {
		t.Fatal(err)
	}
	got := scanAll(t, s, ledger.RecordReportFiles, "acme\x00")
	if len(got) != 2 || got["acme\x00a"] != "v-acme\x00a" || got["acme\x00b"] != "v-acme\x00b" {
		t.Errorf("scan of prefix acme\\x00 = %q", got)
	}
	if n := len(scanAll(t, s, ledger.RecordReportFiles, "")); n != 4 {
		t.Errorf("scan of all files: %d records, want 4", n)
	}
	if n := len(scanAll(t, s, ledger.RecordReportSchedules, "")); n != 0 {
		t.Errorf("kinds are apart: %d schedules, want 0", n)
	}
	if v, err := s.GetRecord(ledger.RecordDownloadTokens, "tok"); err != nil || string(v) != "t" {
		t.Errorf("GetRecord = %q, %v", v, err)
	}
	if _, err := s.GetRecord(ledger.RecordDownloadTokens, "nope"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("GetRecord of a missing key: %v, want ErrNotFound", err)
	}

	// Durable across a reopen.
	s.Close()
	s = st.Open(t, Options{})
	if v, err := s.GetRecord(ledger.RecordReportFiles, "zed\x00d"); err != nil || string(v) != "v-zed\x00d" {
		t.Errorf("after reopen: %q, %v", v, err)
	}
	if err := s.UpdateRecords(ctx, func(tx ledger.RecordTx) error { return tx.Delete(ledger.RecordReportFiles, "zed\x00d") }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRecord(ledger.RecordReportFiles, "zed\x00d"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
}

func testUpdateRecordsErrorChangesNothing(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t).Open(t, Options{})
	if err := s.UpdateRecords(ctx, func(tx ledger.RecordTx) error { return tx.Put(ledger.RecordScheduleRuns, "k", []byte("1")) }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := s.UpdateRecords(ctx, func(tx ledger.RecordTx) error {
		old, err := tx.Get(ledger.RecordScheduleRuns, "k")
		if err != nil || string(old) != "1" {
			t.Errorf("Get in tx = %q, %v", old, err)
		}
		if err := tx.Put(ledger.RecordScheduleRuns, "k", []byte("2")); err != nil {
			return err
		}
		if err := tx.Put(ledger.RecordScheduleRuns, "other", []byte("x")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateRecords = %v, want boom", err)
	}
	if got := scanAll(t, s, ledger.RecordScheduleRuns, ""); len(got) != 1 || got["k"] != "1" {
		t.Errorf("after a failed update: %q, want only k=1", got)
	}
}

func testRecordsErrInvalid(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t).Open(t, Options{})
	for name, fn := range map[string]func(tx ledger.RecordTx) error{
		"unknown kind": func(tx ledger.RecordTx) error { return tx.Put("nope", "k", nil) },
		"empty key":    func(tx ledger.RecordTx) error { return tx.Put(ledger.RecordReportFiles, "", nil) },
	} {
		if err := s.UpdateRecords(ctx, fn); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.GetRecord("nope", "k"); !errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("GetRecord of an unknown kind: %v", err)
	}
}
