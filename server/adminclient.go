package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// AdminClient talks to a running server over its admin socket. Its Verify
// and Backup answer as the same methods of *ledger.Store do, so a command can
// use either.
type AdminClient struct {
	http *http.Client
}

// NewAdminClient returns a client for the admin socket at path. It does not
// connect until a call.
func NewAdminClient(path string) *AdminClient {
	var d net.Dialer
	return &AdminClient{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		DisableCompression: true,
	}}}
}

// Close releases idle connections.
func (c *AdminClient) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// Backup streams the server's backup into w. It fails unless the archive
// arrived complete; w may then hold part of one.
func (c *AdminClient) Backup(ctx context.Context, w io.Writer) (ledger.BackupInfo, error) {
	resp, err := c.do(ctx, http.MethodGet, "/backup")
	if err != nil {
		return ledger.BackupInfo{}, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return ledger.BackupInfo{}, fmt.Errorf("backup over admin socket: %w", err)
	}
	if msg := resp.Trailer.Get(trailerError); msg != "" {
		return ledger.BackupInfo{}, fmt.Errorf("backup over admin socket: server: %s", msg)
	}
	sent, err1 := strconv.ParseInt(resp.Trailer.Get(trailerArchiveBytes), 10, 64)
	bytes, err2 := strconv.ParseInt(resp.Trailer.Get(trailerBackupBytes), 10, 64)
	txid, err3 := strconv.ParseUint(resp.Trailer.Get(trailerBackupTxID), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return ledger.BackupInfo{}, errors.New("backup over admin socket: the server did not confirm a complete archive")
	}
	if sent != n {
		return ledger.BackupInfo{}, fmt.Errorf("backup over admin socket: received %d bytes, the server sent %d", n, sent)
	}
	return ledger.BackupInfo{Bytes: bytes, TxID: txid}, nil
}

// Verify runs Verify in the server, calling progress for each progress
// line. A damaged store answers a *ledger.VerifyError, as Store.Verify does.
func (c *AdminClient) Verify(ctx context.Context, progress func(ledger.VerifyProgress)) (ledger.VerifyReport, error) {
	resp, err := c.do(ctx, http.MethodPost, "/verify")
	if err != nil {
		return ledger.VerifyReport{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l verifyLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return ledger.VerifyReport{}, fmt.Errorf("verify over admin socket: bad answer line: %w", err)
		}
		switch l.Kind {
		case "progress":
			if progress != nil {
				progress(ledger.VerifyProgress{LedgerID: l.LedgerID, Topic: ledger.Topic(l.Topic), Entries: l.Entries})
			}
		case "ok":
			return ledger.VerifyReport{Ledgers: l.Ledgers, Entries: l.Entries}, nil
		case "error":
			if l.Error != "" {
				return ledger.VerifyReport{}, fmt.Errorf("verify over admin socket: server: %s", l.Error)
			}
			return ledger.VerifyReport{}, &ledger.VerifyError{LedgerID: l.LedgerID, Topic: ledger.Topic(l.Topic), Sequence: l.Sequence, Reason: l.Reason}
		}
	}
	if err := sc.Err(); err != nil {
		return ledger.VerifyReport{}, fmt.Errorf("verify over admin socket: %w", err)
	}
	return ledger.VerifyReport{}, errors.New("verify over admin socket: the server ended the answer without a result")
}

func (c *AdminClient) do(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://ledgerfeed"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("admin socket: %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}
