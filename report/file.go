package report

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Status of a report file job.
type Status string

const (
	StatusPending    Status = "pending"
	StatusRunning    Status = "running"
	StatusSuccessful Status = "successful"
	StatusFailed     Status = "failed"
)

// Report types, formats, languages and sources.
const (
	TypeEntries  = "entries"  // one row per entry
	TypeBalances = "balances" // one row per ledger date and topic

	FormatCSV  = "csv"
	FormatXLSX = "xlsx"

	LangEN = "en"
	LangNB = "nb"

	SourceManual = "manual" // requested by the client
	SourceAuto   = "auto"   // made by a schedule
)

// MaxDays is the longest date range of one file.
const MaxDays = 366

// Request describes a file to make.
type Request struct {
	Type     string         // TypeEntries or TypeBalances
	LedgerID string         //
	Topics   []ledger.Topic // empty: both
	From, To ledger.Date    // inclusive
	Format   string         // FormatCSV or FormatXLSX
	Language string         // LangEN (default) or LangNB
	GDPR     bool           // add the GDPR-sensitive columns
}

// File is a report file job as stored, and its result.
type File struct {
	ID          string         `json:"id"` // random; not a download credential
	ClientID    string         `json:"clientId"`
	Status      Status         `json:"status"`
	Type        string         `json:"type"`
	LedgerID    string         `json:"ledgerId"`
	Topics      []ledger.Topic `json:"topics"`
	From        ledger.Date    `json:"from"`
	To          ledger.Date    `json:"to"`
	Format      string         `json:"format"`
	Language    string         `json:"language"`
	GDPR        bool           `json:"gdpr,omitempty"`
	Source      string         `json:"source"`
	ScheduleID  string         `json:"scheduleId,omitempty"`
	CreatedAt   time.Time      `json:"createdAt"`
	StartedAt   time.Time      `json:"startedAt,omitzero"`
	CompletedAt time.Time      `json:"completedAt,omitzero"`
	FileName    string         `json:"fileName"`
	Size        int64          `json:"size,omitempty"`
	Rows        int64          `json:"rows,omitempty"`
	Error       string         `json:"error,omitempty"`
	Attempts    int            `json:"attempts,omitempty"`

	// While running: the node whose worker runs the job, and until when
	// its claim holds unless renewed (lease.go). Kept afterwards, so a
	// finished file names the node that made it.
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
	// Object is the name the finished file is stored under (storage.go);
	// empty for files made before it was recorded: diskName.
	Object string `json:"object,omitempty"`

	// The newest download token of the file and its expiry (download.go).
	Token        string    `json:"token,omitempty"`
	TokenExpires time.Time `json:"tokenExpires,omitzero"`
}

// Finished reports whether the job has ended, well or not.
func (f *File) Finished() bool { return f.Status == StatusSuccessful || f.Status == StatusFailed }

// ContentType is the media type of the file.
func (f *File) ContentType() string {
	if f.Format == FormatXLSX {
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "text/csv; charset=utf-8; header=present"
}

// key is the file's record key: by client, so that a client's files are one
// range and a lookup by id alone cannot reach another client's file.
func (f *File) key() string { return fileKey(f.ClientID, f.ID) }

func fileKey(clientID, id string) string { return clientID + "\x00" + id }

// diskName is the name of the finished file in the service's directory.
func (f *File) diskName() string { return f.ID + "." + f.Format }

// object is the name the finished file is stored under.
func (f *File) object() string {
	if f.Object != "" {
		return f.Object
	}
	return f.diskName()
}

func (f *File) marshal() []byte {
	b, err := json.Marshal(f)
	if err != nil {
		panic(err) // plain struct: cannot fail
	}
	return b
}

func unmarshalFile(b []byte) (*File, error) {
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: report file record: %v", ledger.ErrDamaged, err)
	}
	return &f, nil
}

// newID returns a random id: 26 characters of base32, 128 bits of entropy.
func newID() string { return strings.ToLower(rand.Text()) }

// validID reports whether s has the shape of an id or token of newID.
func validID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// fieldErr is an input error naming its field.
func fieldErr(field, format string, args ...any) error {
	return &ledger.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// normalize checks r and fills its defaults. It does not look at the store.
func (r Request) normalize() (Request, error) {
	switch r.Type {
	case TypeEntries, TypeBalances:
	case "":
		return r, fieldErr("type", "required: entries or balances")
	default:
		return r, fieldErr("type", "%q is not a report type (entries or balances)", r.Type)
	}
	if r.LedgerID == "" {
		return r, fieldErr("ledgerId", "required")
	}
	switch r.Format {
	case FormatCSV, FormatXLSX:
	case "":
		return r, fieldErr("format", "required: csv or xlsx")
	default:
		return r, fieldErr("format", "%q is not a format (csv or xlsx)", r.Format)
	}
	switch r.Language {
	case "":
		r.Language = LangEN
	case LangEN, LangNB:
	default:
		return r, fieldErr("language", "%q is not a language (en or nb)", r.Language)
	}
	topics := r.Topics
	if len(topics) == 0 {
		topics = ledger.Topics
	}
	var seen []ledger.Topic
	for i, t := range topics {
		if _, err := ledger.ParseTopic(string(t)); err != nil {
			return r, fieldErr(fmt.Sprintf("topics[%d]", i), "%q is not a topic (funds or fees)", t)
		}
		if slices.Contains(seen, t) {
			return r, fieldErr(fmt.Sprintf("topics[%d]", i), "%q is listed twice", t)
		}
		seen = append(seen, t)
	}
	// Canonical order: funds before fees, whatever the request's order.
	r.Topics = slices.DeleteFunc(slices.Clone(ledger.Topics), func(t ledger.Topic) bool { return !slices.Contains(seen, t) })
	switch {
	case r.From == 0:
		return r, fieldErr("fromLedgerDate", "required (YYYY-MM-DD)")
	case r.To == 0:
		return r, fieldErr("toLedgerDate", "required (YYYY-MM-DD)")
	case r.To < r.From:
		return r, fieldErr("toLedgerDate", "%s is before fromLedgerDate %s", r.To, r.From)
	case int(r.To-r.From) >= MaxDays:
		return r, fieldErr("toLedgerDate", "a file covers at most %d dates; %s–%s are %d", MaxDays, r.From, r.To, r.To-r.From+1)
	}
	return r, nil
}

// fileName is the download name, e.g. "302321-funds-2024-05-01-2024-05-31.csv"
// or "302321-balances-funds-fees-2024-05-01-2024-05-31.xlsx".
func fileName(r Request) string {
	var b strings.Builder
	b.WriteString(r.LedgerID)
	if r.Type == TypeBalances {
		b.WriteString("-balances")
	}
	for _, t := range r.Topics {
		b.WriteString("-" + string(t))
	}
	b.WriteString("-" + r.From.String() + "-" + r.To.String() + "." + r.Format)
	return b.String()
}
