package feed

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// Cursor kinds: each names the path a cursor is valid on.
const (
	kindFeed    byte = 1
	kindDate    byte = 2
	kindLedgers byte = 3
)

const (
	cursorVersion = 1
	macLen        = 16 // truncated HMAC-SHA256: 128 bits
	// KeyFile is the name of the cursor key in the data directory.
	KeyFile = "cursor.key"
	keyLen  = 32
)

// Cursors makes and checks cursors with one server secret. A cursor is
// base64url(version ‖ kind ‖ payload ‖ MAC), the MAC taken over the version,
// kind, payload and the request it is bound to (ledger, topic, date or list
// filter), which the cursor itself does not carry. So a cursor moved to
// another path, edited, or made up fails its MAC: never a wrong page.
// Cursors grant nothing: callers check access before they parse one.
type Cursors struct {
	key []byte
}

// NewCursors returns Cursors keyed with key (at least 16 bytes).
func NewCursors(key []byte) (*Cursors, error) {
	if len(key) < 16 {
		return nil, errors.New("cursor key shorter than 16 bytes")
	}
	return &Cursors{key: append([]byte(nil), key...)}, nil
}

// LoadKey reads dir/cursor.key, making it (32 random bytes, mode 0600) when
// it does not exist yet.
func LoadKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < keyLen {
			return nil, fmt.Errorf("cursor key %s: %d bytes, want %d", path, len(b), keyLen)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cursor key: %w", err)
	}
	b = make([]byte, keyLen)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadKey(dir) // made meanwhile by another opener
	}
	if err != nil {
		return nil, fmt.Errorf("cursor key: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("cursor key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("cursor key: %w", err)
	}
	return b, f.Close()
}

func (c *Cursors) mac(body []byte, binding ...string) []byte {
	h := hmac.New(sha256.New, c.key)
	h.Write(body)
	for _, s := range binding {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	return h.Sum(nil)[:macLen]
}

func (c *Cursors) make(kind byte, payload []byte, binding ...string) string {
	body := make([]byte, 0, 2+len(payload)+macLen)
	body = append(body, cursorVersion, kind)
	body = append(body, payload...)
	body = append(body, c.mac(body, binding...)...)
	return base64.RawURLEncoding.EncodeToString(body)
}

// open checks s and returns its payload.
func (c *Cursors) open(s string, kind byte, what string, binding ...string) ([]byte, error) {
	bad := &ledger.FieldError{Field: "cursor", Reason: "not a cursor of this " + what}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2+macLen || b[0] != cursorVersion || b[1] != kind {
		return nil, bad
	}
	body, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(sum, c.mac(body, binding...)) {
		return nil, bad
	}
	return body[2:], nil
}

// Feed returns the cursor of the feed of (ledgerID, topic) at sequence next.
func (c *Cursors) Feed(ledgerID string, topic ledger.Topic, next uint64) string {
	return c.make(kindFeed, binary.BigEndian.AppendUint64(nil, next), ledgerID, string(topic))
}

// ParseFeed returns the next sequence of a feed cursor made for
// (ledgerID, topic); anything else is a field error (cursor).
func (c *Cursors) ParseFeed(s, ledgerID string, topic ledger.Topic) (uint64, error) {
	p, err := c.open(s, kindFeed, "feed", ledgerID, string(topic))
	if err != nil {
		return 0, err
	}
	if len(p) != 8 || binary.BigEndian.Uint64(p) == 0 {
		return 0, &ledger.FieldError{Field: "cursor", Reason: "not a cursor of this feed"}
	}
	return binary.BigEndian.Uint64(p), nil
}

// Date returns the cursor of the report of a date at sequence next.
func (c *Cursors) Date(ledgerID string, topic ledger.Topic, d ledger.Date, next uint64) string {
	return c.make(kindDate, binary.BigEndian.AppendUint64(nil, next), ledgerID, string(topic), d.String())
}

// ParseDate returns the next sequence of a date-report cursor made for
// (ledgerID, topic, d).
func (c *Cursors) ParseDate(s, ledgerID string, topic ledger.Topic, d ledger.Date) (uint64, error) {
	p, err := c.open(s, kindDate, "date report", ledgerID, string(topic), d.String())
	if err != nil {
		return 0, err
	}
	if len(p) != 8 || binary.BigEndian.Uint64(p) == 0 {
		return 0, &ledger.FieldError{Field: "cursor", Reason: "not a cursor of this date report"}
	}
	return binary.BigEndian.Uint64(p), nil
}

// List returns the cursor of a list after the item named after; scope binds
// it to the caller and filter (e.g. client id and query).
func (c *Cursors) List(scope []string, after string) string {
	return c.make(kindLedgers, []byte(after), scope...)
}

// ParseList returns the item a list cursor made for scope continues after.
func (c *Cursors) ParseList(s string, scope []string) (string, error) {
	p, err := c.open(s, kindLedgers, "list", scope...)
	if err != nil {
		return "", err
	}
	return string(p), nil
}
