package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/ledgerfeed/ledgerfeed/gen/openapiv2"
)

// Wire compatibility with the Vipps Report API.
//
// checkVippsWire validates one real answer of the report API in two layers:
//
//  1. the Vipps OpenAPI spec, testdata/vipps/report-api-openapi.yaml (a copy
//     with the fixes its README.md lists), with kin-openapi: a 2xx body by
//     openapi3filter.ValidateResponse on the route the request matches; an
//     error answer (application/problem+json, DESIGN.md "Errors") against
//     the spec's Problem schema, since the spec's own 401/500 bodies are an
//     older application/json shape that ledgerfeed does not send;
//  2. DESIGN.md's contract where the spec is loose (it has no required
//     members at all): the members each answer must carry, item JSON names
//     and nothing else, integral int64 amounts with balances chained,
//     six-digit UTC times, GDPR fields only when asked for, the
//     Vipps-Feed-Page-Size header, contextId on errors.
//
// apiEnv.do passes every answer to a Vipps path through it, and every
// answer to a path of /openapi.json through checkOwnWire, which validates
// it against the document ledgerfeed serves; getVipps does both too.

// vippsSpecPath is the spec copy, relative to the package directory.
const vippsSpecPath = "testdata/vipps/report-api-openapi.yaml"

type vippsSpecT struct {
	doc    *openapi3.T
	router routers.Router
}

var vippsSpec = sync.OnceValues(func() (*vippsSpecT, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(vippsSpecPath)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", vippsSpecPath, err)
	}
	// The file's examples are not all valid (inPayout: 2000010 for a string):
	// examples are not the wire, so they are not checked.
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("%s is not valid OpenAPI: %w", vippsSpecPath, err)
	}
	// Match paths on any host: the spec names api.vipps.no.
	doc.Servers = nil
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &vippsSpecT{doc: doc, router: r}, nil
})

// checkVippsWire fails t unless resp (whose body, already read, is body)
// is a valid Vipps Report API answer to req.
func checkVippsWire(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	if err := vippsWireErr(req, resp.StatusCode, resp.Header, body); err != nil {
		t.Errorf("%s %s: not Vipps-wire-compatible:\n%v\nbody: %s", req.Method, req.URL.RequestURI(), err, truncate(string(body), 2000))
	}
}

// checkVippsWireIfReport is checkVippsWire for an answer to a request
// that the Vipps spec describes (a GET on one of its paths); other answers
// pass unchecked. apiEnv.do calls it for every request, so every report
// API answer the test suite sees is validated.
func checkVippsWireIfReport(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	spec, err := vippsSpec()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := spec.router.FindRoute(req); err != nil {
		return
	}
	checkVippsWire(t, req, resp, body)
}

// ownSpec is the router of the document GET /openapi.json serves.
var ownSpec = sync.OnceValues(func() (routers.Router, error) {
	b, err := buildOpenAPI(openapiv2.JSON)
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
})

// checkOwnWire fails t unless the answer matches ledgerfeed's own
// /openapi.json, for a request that document describes (others pass
// unchecked): so the suite keeps the served document true to the wire.
// apiEnv.do calls it for every request.
func checkOwnWire(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	r, err := ownSpec()
	if err != nil {
		t.Fatal(err)
	}
	route, params, err := r.FindRoute(req)
	if err != nil {
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s: answer %d does not match /openapi.json: %v\nbody: %s", req.Method, req.URL.RequestURI(), resp.StatusCode, err, truncate(string(body), 2000))
	}
}

// vippsWireErr is checkVippsWire's verdict: nil, or every problem found.
func vippsWireErr(req *http.Request, status int, hdr http.Header, body []byte) error {
	spec, err := vippsSpec()
	if err != nil {
		return err
	}
	route, params, err := spec.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("not a Vipps Report API operation: %w", err)
	}
	if status >= 400 {
		return problemWireErr(spec.doc, status, hdr, body)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 hdr,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
	}
	var errs []error
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		errs = append(errs, fmt.Errorf("spec: %w", err))
	}
	if status == http.StatusOK {
		if err := contractErr(route.Path, req, params, hdr, body); err != nil {
			errs = append(errs, fmt.Errorf("DESIGN.md: %w", err))
		}
	}
	return errors.Join(errs...)
}

// problemWireErr checks an error answer: problem+json, the spec's Problem
// schema, and DESIGN.md's errorCode and contextId.
func problemWireErr(doc *openapi3.T, status int, hdr http.Header, body []byte) error {
	var errs []error
	var c contract
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		c.errorf("error answer Content-Type %q, want application/problem+json", ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		c.errorf("error answer is not JSON: %v", err)
		return fmt.Errorf("DESIGN.md: %w", c.err())
	}
	if err := doc.Components.Schemas["Problem"].Value.VisitJSON(v, openapi3.MultiErrors(), openapi3.VisitAsResponse()); err != nil {
		errs = append(errs, fmt.Errorf("spec Problem: %w", err))
	}
	m, _ := v.(map[string]any)
	c.requireKeys("problem", m, "type", "title", "status", "detail", "instance", "contextId", "errorCode")
	if s, ok := m["status"].(float64); ok && int(s) != status {
		c.errorf("problem status %v, answer status %d", s, status)
	}
	if ec, ok := m["errorCode"].(float64); !ok || ec != math.Trunc(ec) || ec < 10001 {
		c.errorf("problem errorCode %v is not an integer ≥ 10001", m["errorCode"])
	}
	if id, _ := m["contextId"].(string); id == "" || id != hdr.Get(headerRequestID) {
		c.errorf("problem contextId %q, %s header %q", id, headerRequestID, hdr.Get(headerRequestID))
	}
	if err := c.err(); err != nil {
		errs = append(errs, fmt.Errorf("DESIGN.md: %w", err))
	}
	return errors.Join(errs...)
}

// contract collects DESIGN.md violations.
type contract struct{ errs []error }

func (c *contract) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}
func (c *contract) err() error { return errors.Join(c.errs...) }

func (c *contract) requireKeys(what string, m map[string]any, keys ...string) {
	if m == nil {
		c.errorf("%s is not a JSON object", what)
		return
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			c.errorf("%s has no %q", what, k)
		}
	}
}

func (c *contract) onlyKeys(what string, m map[string]any, keys ...string) {
	for k := range m {
		found := false
		for _, want := range keys {
			found = found || k == want
		}
		if !found {
			c.errorf("%s has unexpected member %q", what, k)
		}
	}
}

func (c *contract) kind(what string, v any, want string) {
	ok := false
	switch want {
	case "string":
		_, ok = v.(string)
	case "bool":
		_, ok = v.(bool)
	case "array":
		_, ok = v.([]any)
	case "object":
		_, ok = v.(map[string]any)
	case "integer":
		n, isNum := v.(json.Number)
		if isNum {
			_, err := strconv.ParseInt(string(n), 10, 64)
			ok = err == nil
		}
	}
	if !ok {
		c.errorf("%s is %s, want a JSON %s", what, jsonShow(v), want)
	}
}

func jsonShow(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

var (
	wireTimeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$`)
	wireDateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// contractErr checks a 200 answer of the report API against DESIGN.md.
func contractErr(path string, req *http.Request, params map[string]string, hdr http.Header, body []byte) error {
	var c contract
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		c.errorf("Content-Type %q, want application/json", ct)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		c.errorf("body is not a JSON object: %v", err)
		return c.err()
	}
	q := req.URL.Query()
	gdpr := q.Get("includeGDPRSensitiveData") == "true"
	switch {
	case path == "/settlement/v1/ledgers":
		c.requireKeys("answer", m, "items", "cursor")
		c.onlyKeys("answer", m, "items", "cursor")
		c.kind("cursor", m["cursor"], "string")
		c.kind("items", m["items"], "array")
		items, _ := m["items"].([]any)
		for i, it := range items {
			c.ledger(fmt.Sprintf("items[%d]", i), it)
		}
	case strings.HasSuffix(path, "/feed"):
		c.requireKeys("answer", m, "items", "tryLater", "cursor")
		c.onlyKeys("answer", m, "items", "tryLater", "cursor")
		c.kind("tryLater", m["tryLater"], "bool")
		if s, _ := m["cursor"].(string); s == "" {
			c.errorf("feed cursor %s, want a non-empty string", jsonShow(m["cursor"]))
		}
		c.page(m, hdr, gdpr, "")
	case strings.Contains(path, "/dates/"):
		c.requireKeys("answer", m, "items", "hasMore", "tryLater")
		c.onlyKeys("answer", m, "items", "hasMore", "tryLater", "cursor")
		c.kind("tryLater", m["tryLater"], "bool")
		c.kind("hasMore", m["hasMore"], "bool")
		cur, hasCursor := m["cursor"]
		if more, _ := m["hasMore"].(bool); more {
			if s, _ := cur.(string); s == "" {
				c.errorf("hasMore without a cursor: %s", jsonShow(cur))
			}
		} else if hasCursor {
			c.errorf("cursor %s without hasMore", jsonShow(cur))
		}
		c.page(m, hdr, gdpr, params["ledgerDate"])
	default:
		c.errorf("no DESIGN.md contract for %s", path)
	}
	return c.err()
}

func (c *contract) ledger(what string, v any) {
	l, _ := v.(map[string]any)
	c.requireKeys(what, l, "ledgerId", "currency", "payoutBankAccount", "owner", "settlesForRecipientHandles", "salesUnits")
	c.onlyKeys(what, l, "ledgerId", "currency", "payoutBankAccount", "owner", "settlesForRecipientHandles", "salesUnits")
	c.kind(what+".ledgerId", l["ledgerId"], "string")
	c.kind(what+".currency", l["currency"], "string")
	for _, k := range []string{"payoutBankAccount", "owner"} {
		o, _ := l[k].(map[string]any)
		c.requireKeys(what+"."+k, o, "scheme", "id")
	}
	c.kind(what+".settlesForRecipientHandles", l["settlesForRecipientHandles"], "array")
	units, ok := l["salesUnits"].([]any)
	if !ok {
		c.errorf("%s.salesUnits is %s, want an array", what, jsonShow(l["salesUnits"]))
	}
	for i, u := range units {
		uw := fmt.Sprintf("%s.salesUnits[%d]", what, i)
		um, _ := u.(map[string]any)
		c.requireKeys(uw, um, "name", "recipientHandle", "businessIdentifier")
		c.onlyKeys(uw, um, "name", "recipientHandle", "businessIdentifier")
		bi, _ := um["businessIdentifier"].(map[string]any)
		c.requireKeys(uw+".businessIdentifier", bi, "scheme", "id")
	}
}

var (
	itemKeys = []string{"pspReference", "time", "ledgerDate", "entryType", "reference", "currency",
		"amount", "balanceBefore", "balanceAfter", "recipientHandle"}
	gdprKeys = []string{"name", "maskedPhoneNo", "message"}
)

// page checks a report page's items and its page size header. date, if
// set, is the ledger date every item must carry.
func (c *contract) page(m map[string]any, hdr http.Header, gdpr bool, date string) {
	items, ok := m["items"].([]any)
	if !ok {
		c.errorf("items is %s, want an array", jsonShow(m["items"]))
	}
	size, err := strconv.Atoi(hdr.Get("Vipps-Feed-Page-Size"))
	switch {
	case err != nil || size < 1 || size > 1000:
		c.errorf("Vipps-Feed-Page-Size header %q, want 1…1000", hdr.Get("Vipps-Feed-Page-Size"))
	case len(items) > size:
		c.errorf("%d items, more than the page size %d", len(items), size)
	}
	allowed := itemKeys
	if gdpr {
		allowed = append(append([]string{}, itemKeys...), gdprKeys...)
	}
	var prevAfter *int64
	currency := ""
	for i, v := range items {
		what := fmt.Sprintf("items[%d]", i)
		it, _ := v.(map[string]any)
		c.requireKeys(what, it, itemKeys...)
		c.onlyKeys(what, it, allowed...)
		for _, k := range []string{"pspReference", "time", "ledgerDate", "entryType", "reference", "currency"} {
			c.kind(what+"."+k, it[k], "string")
		}
		if s, _ := it["time"].(string); !wireTimeRE.MatchString(s) {
			c.errorf("%s.time %q is not UTC with six fraction digits", what, s)
		}
		ld, _ := it["ledgerDate"].(string)
		if !wireDateRE.MatchString(ld) {
			c.errorf("%s.ledgerDate %q is not YYYY-MM-DD", what, ld)
		}
		if date != "" && ld != date {
			c.errorf("%s.ledgerDate %q on the report of %s", what, ld, date)
		}
		cur, _ := it["currency"].(string)
		if i == 0 {
			currency = cur
		} else if cur != currency {
			c.errorf("%s.currency %q, earlier items %q", what, cur, currency)
		}
		if h, ok := it["recipientHandle"]; ok && h != nil {
			c.kind(what+".recipientHandle", h, "string")
		}
		for _, k := range gdprKeys {
			if x, ok := it[k]; ok && x != nil {
				c.kind(what+"."+k, x, "string")
			}
		}
		var n [3]int64
		valid := true
		for j, k := range []string{"amount", "balanceBefore", "balanceAfter"} {
			c.kind(what+"."+k, it[k], "integer")
			num, _ := it[k].(json.Number)
			x, err := strconv.ParseInt(string(num), 10, 64)
			valid = valid && err == nil
			n[j] = x
		}
		if !valid {
			prevAfter = nil
			continue
		}
		if n[1]+n[0] != n[2] {
			c.errorf("%s: balanceBefore %d + amount %d != balanceAfter %d", what, n[1], n[0], n[2])
		}
		if prevAfter != nil && *prevAfter != n[1] {
			c.errorf("%s.balanceBefore %d, the item before ended at %d", what, n[1], *prevAfter)
		}
		prevAfter = &n[2]
	}
}

// getVipps GETs path with the token ("" = none) and fails the test unless
// the answer is Vipps-wire-compatible; it answers the response read whole.
func (e *apiEnv) getVipps(path, token string, hdr ...string) resp {
	e.t.Helper()
	return e.getVippsT(e.t, path, token, hdr...)
}

// getVippsT is getVipps reporting to t (a subtest's).
func (e *apiEnv) getVippsT(t testing.TB, path, token string, hdr ...string) resp {
	t.Helper()
	req, err := http.NewRequest("GET", e.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer hr.Body.Close()
	b, err := io.ReadAll(hr.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", path, err)
	}
	checkVippsWire(t, req, hr, b)
	checkOwnWire(t, req, hr, b)
	return resp{code: hr.StatusCode, hdr: hr.Header, body: b}
}
