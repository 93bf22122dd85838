package server

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Golden files pin wire JSON, as go/printer's tests do: checkGolden
// compares an answer, normalised, with testdata/<name>.golden.json;
// `go test ./server -run NAME -update` rewrites the files from the answers
// (review the diff before committing it).

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden.json from the answers")

// goldenScrubbed are members whose values differ from run to run; scrub
// replaces them with a placeholder naming the member. An empty string (an
// empty cursor means "last page") is kept as it is.
var goldenScrubbed = map[string]bool{
	"contextId":    true, // request id
	"access_token": true,
	"clientSecret": true,
	"cursor":       true, // MAC'd with a per-store key
	"expires_on":   true,
	"not_before":   true,
}

// checkGolden fails t unless body, normalised (members sorted, indented,
// volatile values scrubbed; extra names more members to scrub), equals
// testdata/<name>.golden.json.
func checkGolden(t testing.TB, name string, body []byte, extra ...string) {
	t.Helper()
	got, err := normaliseJSON(body, extra...)
	if err != nil {
		t.Fatalf("golden %s: %v\n%s", name, err, body)
	}
	path := filepath.Join("testdata", name+".golden.json")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden %s: %v (run go test ./server -run %s -update to create it)", name, err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("golden %s differs (go test ./server -run %s -update rewrites it):\n%s", path, t.Name(), lineDiff(string(want), string(got)))
	}
}

// normaliseJSON re-encodes a JSON document with sorted members, two-space
// indent and a final newline, scrubbing volatile values. Numbers keep their
// literal text.
func normaliseJSON(body []byte, extra ...string) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	scrub(v, extra)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil { // maps are encoded with sorted keys
		return nil, err
	}
	return b.Bytes(), nil
}

// scrub replaces volatile values in v (decoded JSON) with "<member>":
// goldenScrubbed and extra anywhere, and the time of audit events (objects
// with an "action").
func scrub(v any, extra []string) {
	switch x := v.(type) {
	case map[string]any:
		_, audit := x["action"]
		for k, val := range x {
			if s, isStr := val.(string); isStr && s == "" {
				continue
			}
			if goldenScrubbed[k] || (audit && k == "time") || slices.Contains(extra, k) {
				x[k] = "<" + k + ">"
				continue
			}
			scrub(val, extra)
		}
	case []any:
		for _, e := range x {
			scrub(e, extra)
		}
	}
}

// lineDiff shows where two texts part: the lines around the first
// difference, "-" for want and "+" for got.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	var b strings.Builder
	for j := max(0, i-3); j < i; j++ {
		b.WriteString("  " + w[j] + "\n")
	}
	for j := i; j < min(len(w), i+8); j++ {
		b.WriteString("- " + w[j] + "\n")
	}
	for j := i; j < min(len(g), i+8); j++ {
		b.WriteString("+ " + g[j] + "\n")
	}
	return b.String()
}
