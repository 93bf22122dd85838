package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/time/rate"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// tokenRecord is a download token as stored under its own value: which
// client may use it, for which file, until when.
type tokenRecord struct {
	ClientID string    `json:"clientId"`
	FileID   string    `json:"fileId"`
	Expires  time.Time `json:"expires"`
}

// errNoDownload is the one answer to a token that is unknown, expired,
// another client's, or whose file is gone: the caller cannot tell them apart.
var errNoDownload = fmt.Errorf("report file download: %w (the link is unknown or expired; get a fresh one from GET /report/v2/files/{id})", ledger.ErrNotFound)

// WithDownloads gives each successful file among files a download token
// valid for at least half the token TTL: the one it has, or a new one.
// New tokens of all the files are stored in one write. Files are updated in
// place (Token, TokenExpires).
func (s *Service) WithDownloads(ctx context.Context, files []File) error {
	now := s.now().UTC()
	var fresh []int
	for i := range files {
		f := &files[i]
		if f.Status == StatusSuccessful && f.TokenExpires.Sub(now) < s.cfg.TokenTTL/2 {
			fresh = append(fresh, i)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	exp := now.Add(s.cfg.TokenTTL).Truncate(time.Second)
	toks := make([]string, len(fresh))
	for j := range toks {
		toks[j] = newID()
	}
	err := s.st.UpdateRecords(ctx, func(tx ledger.RecordTx) error {
		for j, i := range fresh {
			f := files[i]
			v, err := tx.Get(ledger.RecordReportFiles, f.key())
			if err != nil {
				return err
			}
			if v == nil {
				continue // deleted meanwhile
			}
			stored, err := unmarshalFile(v)
			if err != nil {
				return err
			}
			stored.Token, stored.TokenExpires = toks[j], exp
			if err := tx.Put(ledger.RecordReportFiles, f.key(), stored.marshal()); err != nil {
				return err
			}
			rec, _ := json.Marshal(tokenRecord{ClientID: f.ClientID, FileID: f.ID, Expires: exp})
			if err := tx.Put(ledger.RecordDownloadTokens, toks[j], rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for j, i := range fresh {
		files[i].Token, files[i].TokenExpires = toks[j], exp
	}
	return nil
}

// AllowDownload takes one download from clientID's hourly allowance. When
// none is left it returns false and how long until the next one.
func (s *Service) AllowDownload(clientID string) (bool, time.Duration) {
	n := s.cfg.DownloadsPerHour
	if n < 0 {
		return true, 0
	}
	s.lmu.Lock()
	l, ok := s.limits[clientID]
	if !ok {
		l = rate.NewLimiter(rate.Every(time.Hour/time.Duration(n)), n)
		s.limits[clientID] = l
	}
	s.lmu.Unlock()
	now := s.now()
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Download is an open file ready to be served: Read, Seek and Close, as
// http.ServeContent takes it (Range requests included), from Dir or, with
// a shared store, from its blobs.
type Download struct {
	io.ReadSeekCloser
	Info File
}

// OpenDownload resolves a download token of clientID and opens its file;
// with a shared store, reads of it run under ctx. A token that is unknown,
// expired or another client's, and a file that is gone, all answer the
// same ErrNotFound. The caller closes the file.
func (s *Service) OpenDownload(ctx context.Context, clientID, token string) (*Download, error) {
	if !validID(token) {
		return nil, errNoDownload
	}
	v, err := s.st.GetRecord(ledger.RecordDownloadTokens, token)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, errNoDownload
	}
	if err != nil {
		return nil, err
	}
	var tr tokenRecord
	if err := json.Unmarshal(v, &tr); err != nil {
		return nil, fmt.Errorf("%w: download token record: %v", ledger.ErrDamaged, err)
	}
	if tr.ClientID != clientID || !s.now().Before(tr.Expires) {
		return nil, errNoDownload
	}
	f, err := s.Get(clientID, tr.FileID)
	if errors.Is(err, ledger.ErrNotFound) || (err == nil && f.Status != StatusSuccessful) {
		return nil, errNoDownload
	}
	if err != nil {
		return nil, err
	}
	rc, err := s.files.open(ctx, f.object())
	if err != nil {
		return nil, err
	}
	return &Download{ReadSeekCloser: rc, Info: f}, nil
}
