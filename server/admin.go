package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// The admin socket is a unix socket in the data directory (mode 0600, so
// only the owner of the data can use it) that serves HTTP/1.1 to the verify
// and backup commands while a server holds the store's lock:
//
//	GET  /backup  200, a tar archive as Store.Backup writes it, chunked; the
//	              trailers Ledgerfeed-Archive-Bytes (the length of the
//	              archive), Ledgerfeed-Backup-Bytes and -Txid (BackupInfo)
//	              are set when the archive is complete, Ledgerfeed-Error when
//	              it is not.
//	POST /verify  200, JSON lines: progress lines {"kind":"progress",...} at
//	              most once a second, then one {"kind":"ok",...} or
//	              {"kind":"error",...} line.
//
// AdminClient is the other end.

// Trailers of GET /backup.
const (
	trailerArchiveBytes = "Ledgerfeed-Archive-Bytes"
	trailerBackupBytes  = "Ledgerfeed-Backup-Bytes"
	trailerBackupTxID   = "Ledgerfeed-Backup-Txid"
	trailerError        = "Ledgerfeed-Error"
)

// maxSocketPath is the longest unix socket path Linux binds (sun_path holds
// 108 bytes with the terminating NUL).
const maxSocketPath = 107

// verifyLine is one line of the POST /verify answer.
type verifyLine struct {
	Kind     string `json:"kind"` // progress, ok or error
	LedgerID string `json:"ledgerId,omitempty"`
	Topic    string `json:"topic,omitempty"`
	Sequence uint64 `json:"sequence,omitempty"`
	Entries  uint64 `json:"entries,omitempty"`
	Ledgers  int    `json:"ledgers,omitempty"`
	// Reason is a *ledger.VerifyError's reason (with LedgerID, Topic,
	// Sequence); Error is the text of any other error.
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
}

// verifyProgressEvery is how often POST /verify sends a progress line.
const verifyProgressEvery = time.Second

// listenAdmin listens on path with mode 0600. Whatever is at path is stale
// and removed: the caller holds the store's lock, so no server listens there.
// Between bind and chmod the socket has the umask's mode; the data
// directory, 0700 when the store made it, keeps others out then too.
func listenAdmin(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale admin socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket listen: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return ln, nil
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", s.handleAdminBackup)
	mux.HandleFunc("POST /verify", s.handleAdminVerify)
	return mux
}

// localFiles is the store as local files, or an error saying that this
// store has none to back up or verify.
func (s *Server) localFiles() (ledger.Files, error) {
	f, ok := s.store.(ledger.Files)
	if !ok {
		return nil, errors.New("this store keeps no local file to back up or verify: use the database's own tools")
	}
	return f, nil
}

func (s *Server) handleAdminBackup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Trailer", trailerArchiveBytes+", "+trailerBackupBytes+", "+trailerBackupTxID+", "+trailerError)
	start := time.Now()
	cw := &countingWriter{w: w}
	files, err := s.localFiles()
	if err != nil {
		w.Header().Set(trailerError, err.Error())
		return
	}
	info, err := files.Backup(r.Context(), cw)
	if err != nil {
		s.log.Error("backup over admin socket failed", "err", err)
		w.Header().Set(trailerError, oneLine(err.Error()))
		return
	}
	w.Header().Set(trailerArchiveBytes, strconv.FormatInt(cw.n, 10))
	w.Header().Set(trailerBackupBytes, strconv.FormatInt(info.Bytes, 10))
	w.Header().Set(trailerBackupTxID, strconv.FormatUint(info.TxID, 10))
	s.log.Info("backup over admin socket", "archive_bytes", cw.n, "bytes", info.Bytes, "txid", info.TxID, "took", time.Since(start).String())
}

func (s *Server) handleAdminVerify(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	enc := json.NewEncoder(w)
	flush := func() { http.NewResponseController(w).Flush() }

	var last time.Time
	progress := func(p ledger.VerifyProgress) {
		if now := time.Now(); now.Sub(last) >= verifyProgressEvery {
			last = now
			enc.Encode(verifyLine{Kind: "progress", LedgerID: p.LedgerID, Topic: string(p.Topic), Entries: p.Entries})
			flush()
		}
	}
	start := time.Now()
	var rep ledger.VerifyReport
	files, err := s.localFiles()
	if err == nil {
		rep, err = files.Verify(r.Context(), progress)
	}
	var line verifyLine
	var ve *ledger.VerifyError
	switch {
	case err == nil:
		line = verifyLine{Kind: "ok", Ledgers: rep.Ledgers, Entries: rep.Entries}
		s.log.Info("verify over admin socket: ok", "ledgers", rep.Ledgers, "entries", rep.Entries, "took", time.Since(start).String())
	case errors.As(err, &ve):
		line = verifyLine{Kind: "error", LedgerID: ve.LedgerID, Topic: string(ve.Topic), Sequence: ve.Sequence, Reason: ve.Reason}
		s.log.Error("verify over admin socket: store damaged", "err", err)
	default:
		line = verifyLine{Kind: "error", Error: oneLine(err.Error())}
		s.log.Error("verify over admin socket failed", "err", err)
	}
	enc.Encode(line)
	flush()
}

// oneLine makes s fit an HTTP header value or a one-line message.
func oneLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
