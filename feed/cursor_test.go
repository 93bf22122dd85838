package feed

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

func testCursors(t *testing.T) *Cursors {
	t.Helper()
	c, err := NewCursors([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCursors_Feed_RoundTrip(t *testing.T) {
	c := testCursors(t)
	s := c.Feed("302321", ledger.TopicFunds, 42)
	got, err := c.ParseFeed(s, "302321", ledger.TopicFunds)
	if err != nil || got != 42 {
		t.Fatalf("ParseFeed = %d, %v; want 42", got, err)
	}
	if _, err := base64.RawURLEncoding.DecodeString(s); err != nil {
		t.Fatalf("cursor %q is not base64url: %v", s, err)
	}
}

func TestCursors_ErrInvalid(t *testing.T) {
	c := testCursors(t)
	d := ledger.Date(19800)
	feedCur := c.Feed("302321", ledger.TopicFunds, 42)
	dateCur := c.Date("302321", ledger.TopicFunds, d, 7)
	other, _ := NewCursors([]byte("another key, at least 16 bytes.."))
	for _, tc := range []struct {
		name  string
		parse func() error
	}{
		{"feed: other ledger", func() error { _, err := c.ParseFeed(feedCur, "302322", ledger.TopicFunds); return err }},
		{"feed: other topic", func() error { _, err := c.ParseFeed(feedCur, "302321", ledger.TopicFees); return err }},
		{"feed: a date cursor", func() error { _, err := c.ParseFeed(dateCur, "302321", ledger.TopicFunds); return err }},
		{"feed: other key", func() error {
			_, err := other.ParseFeed(feedCur, "302321", ledger.TopicFunds)
			return err
		}},
		{"feed: garbage", func() error { _, err := c.ParseFeed("not a cursor!", "302321", ledger.TopicFunds); return err }},
		{"feed: empty bytes", func() error { _, err := c.ParseFeed("AA", "302321", ledger.TopicFunds); return err }},
		{"date: other date", func() error { _, err := c.ParseDate(dateCur, "302321", ledger.TopicFunds, d+1); return err }},
		{"date: other topic", func() error { _, err := c.ParseDate(dateCur, "302321", ledger.TopicFees, d); return err }},
		{"date: a feed cursor", func() error { _, err := c.ParseDate(feedCur, "302321", ledger.TopicFunds, d); return err }},
		{"list: other scope", func() error { _, err := c.ParseList(c.List([]string{"a"}, "x"), []string{"b"}); return err }},
		{"list: a feed cursor", func() error { _, err := c.ParseList(feedCur, []string{"a"}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.parse(); !errors.Is(err, ledger.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	// Every single-bit edit of a cursor is refused.
	raw, _ := base64.RawURLEncoding.DecodeString(feedCur)
	for i := range raw {
		for bit := range 8 {
			b := append([]byte(nil), raw...)
			b[i] ^= 1 << bit
			if _, err := c.ParseFeed(base64.RawURLEncoding.EncodeToString(b), "302321", ledger.TopicFunds); !errors.Is(err, ledger.ErrInvalid) {
				t.Fatalf("edit of byte %d bit %d: err = %v, want ErrInvalid", i, bit, err)
			}
		}
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadKey(dir)
	if err != nil || string(k1) != string(k2) {
		t.Fatalf("second load: %v, same key %v", err, string(k1) == string(k2))
	}
	if _, err := NewCursors(k1[:8]); err == nil {
		t.Error("NewCursors took an 8-byte key")
	}
}
