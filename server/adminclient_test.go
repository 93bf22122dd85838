package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// fakeAdmin serves h on a unix socket in a temp dir and returns a client of
// it. It stands in for a server that misbehaves in ways a real store cannot
// be made to on demand.
func fakeAdmin(t *testing.T, h http.HandlerFunc) *AdminClient {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := NewAdminClient(path)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestAdminClient_Verify(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     string
		wantRep  ledger.VerifyReport
		wantProg int
		wantErr  string // substring; "" = no error
		damaged  bool
	}{
		{
			name:     "ok",
			body:     `{"kind":"progress","ledgerId":"1","topic":"funds","entries":5}` + "\n" + `{"kind":"ok","ledgers":2,"entries":9}` + "\n",
			wantRep:  ledger.VerifyReport{Ledgers: 2, Entries: 9},
			wantProg: 1,
		},
		{
			name:    "damaged",
			body:    `{"kind":"error","ledgerId":"302321","topic":"fees","sequence":17,"reason":"hash mismatch"}` + "\n",
			wantErr: (&ledger.VerifyError{LedgerID: "302321", Topic: "fees", Sequence: 17, Reason: "hash mismatch"}).Error(),
			damaged: true,
		},
		{
			name:    "other error",
			body:    `{"kind":"error","error":"store closed"}` + "\n",
			wantErr: "server: store closed",
		},
		{
			name:     "cut short",
			body:     `{"kind":"progress","ledgerId":"1","topic":"funds","entries":5}` + "\n",
			wantErr:  "without a result",
			wantProg: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeAdmin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tc.body) })
			var prog int
			rep, err := c.Verify(context.Background(), func(ledger.VerifyProgress) { prog++ })
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if got := errors.Is(err, ledger.ErrDamaged); got != tc.damaged {
				t.Errorf("errors.Is(err, ErrDamaged) = %v, want %v", got, tc.damaged)
			}
			if rep != tc.wantRep || prog != tc.wantProg {
				t.Errorf("report %+v with %d progress calls, want %+v with %d", rep, prog, tc.wantRep, tc.wantProg)
			}
		})
	}
}

func TestAdminClient_Backup(t *testing.T) {
	for _, tc := range []struct {
		name     string
		trailers map[string]string
		wantErr  string
	}{
		{"complete", map[string]string{trailerArchiveBytes: "7", trailerBackupBytes: "5", trailerBackupTxID: "3"}, ""},
		{"server error", map[string]string{trailerError: "disk on fire"}, "disk on fire"},
		{"no confirmation", nil, "did not confirm"},
		{"size mismatch", map[string]string{trailerArchiveBytes: "8", trailerBackupBytes: "5", trailerBackupTxID: "3"}, "received 7 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeAdmin(t, func(w http.ResponseWriter, r *http.Request) {
				for k := range tc.trailers {
					w.Header().Add("Trailer", k)
				}
				io.WriteString(w, "archive")
				for k, v := range tc.trailers {
					w.Header().Set(k, v)
				}
			})
			var buf bytes.Buffer
			info, err := c.Backup(context.Background(), &buf)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if info != (ledger.BackupInfo{Bytes: 5, TxID: 3}) || buf.String() != "archive" {
					t.Errorf("info %+v, body %q", info, buf.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
