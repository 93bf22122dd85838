package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ledgerfeed/ledgerfeed/auth"
)

// This file is the CLI's client of the admin REST API (DESIGN.md "Admin /
// ingest API"), used by the client, import and audit commands: credentials
// from flags, environment or a credentials file; a cached bearer token from
// POST /oauth/token; retries; problem+json errors.

// Defaults of the admin API flags.
const (
	defaultServer   = "http://127.0.0.1:8080"
	defaultClientID = auth.AdminClientID
)

// apiConfig holds the admin API settings of a command. Like config, it is
// filled from defaults, then the LEDGERFEED_* environment, then flags.
type apiConfig struct {
	Server      string // --server, LEDGERFEED_SERVER
	ClientID    string // --client-id, LEDGERFEED_CLIENT_ID
	Secret      string // --client-secret, LEDGERFEED_CLIENT_SECRET
	Credentials string // --credentials, LEDGERFEED_CREDENTIALS
	DataDir     string // where the default credentials file is looked for

	idSet         bool // ClientID came from the environment or a flag
	secretFromEnv bool
	credsFromEnv  bool
}

func newAPIConfig(getenv func(string) string, dataDir string) apiConfig {
	c := apiConfig{Server: defaultServer, ClientID: defaultClientID, DataDir: dataDir}
	if s := getenv("LEDGERFEED_SERVER"); s != "" {
		c.Server = s
	}
	if s := getenv("LEDGERFEED_CLIENT_ID"); s != "" {
		c.ClientID, c.idSet = s, true
	}
	if s := getenv("LEDGERFEED_CLIENT_SECRET"); s != "" {
		c.Secret, c.secretFromEnv = s, true
	}
	if s := getenv("LEDGERFEED_CREDENTIALS"); s != "" {
		c.Credentials, c.credsFromEnv = s, true
	}
	return c
}

// bind adds the connection flags to fs. A flag wins over its variable.
func (c *apiConfig) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Server, "server", c.Server, "`URL` of the ledgerfeed server's REST API (env LEDGERFEED_SERVER)")
	fs.Func("client-id", "`ID` of the admin client to authenticate as (env LEDGERFEED_CLIENT_ID; default \"admin\", or the credentials file's)", func(s string) error {
		c.ClientID, c.idSet = s, true
		return nil
	})
	// Func flags, so that -h never prints a secret taken from the environment.
	fs.Func("client-secret", "`SECRET` of that client; prefer the env LEDGERFEED_CLIENT_SECRET, flags show in ps", func(s string) error {
		c.Secret, c.secretFromEnv = s, false
		return nil
	})
	fs.Func("credentials", "`FILE` with client_id=… and client_secret=… lines, as serve writes to DATA/admin-credentials\n(env LEDGERFEED_CREDENTIALS; default: DATA/admin-credentials when no secret is set, DATA from LEDGERFEED_DATA or ./data)", func(s string) error {
		c.Credentials, c.credsFromEnv = s, false
		return nil
	})
}

// resolve picks the client id and secret. In order: --client-secret,
// --credentials, LEDGERFEED_CLIENT_SECRET, LEDGERFEED_CREDENTIALS, then
// DATA/admin-credentials if it exists. The client id is --client-id or
// LEDGERFEED_CLIENT_ID when set, else the credentials file's, else "admin".
// Its errors are usage mistakes.
func (c *apiConfig) resolve(stderr io.Writer) (id, secret string, err error) {
	secretFlag := c.Secret != "" && !c.secretFromEnv
	credsFlag := c.Credentials != "" && !c.credsFromEnv
	switch {
	case secretFlag && credsFlag:
		return "", "", errors.New("--client-secret and --credentials exclude each other")
	case secretFlag:
		return c.ClientID, c.Secret, nil
	case credsFlag:
		return c.fromFile(c.Credentials, stderr)
	case c.secretFromEnv:
		return c.ClientID, c.Secret, nil
	case c.credsFromEnv:
		return c.fromFile(c.Credentials, stderr)
	}
	def := filepath.Join(c.DataDir, auth.AdminCredentialsFile)
	if _, err := os.Stat(def); err != nil {
		return "", "", fmt.Errorf("no credentials: set LEDGERFEED_CLIENT_SECRET (or --client-secret), or --credentials FILE (%s: %v)", def, errors.Unwrap(err))
	}
	return c.fromFile(def, stderr)
}

func (c *apiConfig) fromFile(path string, stderr io.Writer) (id, secret string, err error) {
	fid, secret, err := readCredentials(path, stderr)
	if err != nil {
		return "", "", err
	}
	id = c.ClientID
	if !c.idSet && fid != "" {
		id = fid
	}
	return id, secret, nil
}

// readCredentials reads a credentials file: lines "client_id=ID" and
// "client_secret=SECRET"; blank lines, "#" comments and other keys are
// ignored. A file others may read is used, with a warning.
func readCredentials(path string, stderr io.Writer) (id, secret string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("credentials: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "warning: %s holds a secret and others may read it (mode %v); chmod 600 it\n", path, fi.Mode().Perm())
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "client_id":
			id = strings.TrimSpace(v)
		case "client_secret":
			secret = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("credentials %s: %w", path, err)
	}
	if secret == "" {
		return "", "", fmt.Errorf("credentials %s: no client_secret= line", path)
	}
	return id, secret, nil
}

// connect resolves the credentials and returns a client of the server.
// Its errors are usage mistakes.
func (c *apiConfig) connect(stderr io.Writer) (*adminAPI, error) {
	u, err := url.Parse(c.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want a URL such as %s", c.Server, defaultServer)
	}
	id, secret, err := c.resolve(stderr)
	if err != nil {
		return nil, err
	}
	a := newAdminAPI(strings.TrimRight(c.Server, "/"), id, secret)
	a.notify = func(msg string) { fmt.Fprintln(stderr, msg) }
	return a, nil
}

// adminAPI calls the admin REST API as one client. It fetches a token on the
// first call and again shortly before it expires or when the server refuses
// it. Every call is retried, waiting Retry-After, when the server answers
// 429; when it never reached the server (connection refused); and, for
// idempotent calls only, after a 5xx answer or a broken connection, with
// exponential backoff. Safe for concurrent use.
type adminAPI struct {
	base   string // scheme://host[:port][/prefix], no trailing slash
	id     string
	secret string
	hc     *http.Client
	retry  retryPolicy
	now    func() time.Time
	// notify, unless nil, is told of waits of a second or more, so that a
	// slow command says why.
	notify func(msg string)

	mu     sync.Mutex
	token  string
	renew  time.Time // fetch a new token from then on
	tokens int       // tokens fetched, for tests
}

// retryPolicy bounds the retries of one call.
type retryPolicy struct {
	throttled int           // answers 429 waited out, at most
	failures  int           // 5xx answers and connection errors retried, at most
	backoff   time.Duration // the first wait after a failure; doubles each time
	maxWait   time.Duration // longest wait, for Retry-After too
	sleep     func(ctx context.Context, d time.Duration) error
}

var defaultRetry = retryPolicy{
	throttled: 8,
	failures:  5,
	backoff:   250 * time.Millisecond,
	maxWait:   30 * time.Second,
	sleep:     sleepCtx,
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func newAdminAPI(base, id, secret string) *adminAPI {
	return &adminAPI{
		base:   base,
		id:     id,
		secret: secret,
		hc:     &http.Client{Timeout: 2 * time.Minute},
		retry:  defaultRetry,
		now:    time.Now,
	}
}

// problem is an application/problem+json answer.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Instance  string `json:"instance"`
	ContextID string `json:"contextId"`
	ErrorCode int    `json:"errorCode"`
}

// apiError is an error answer of the server.
type apiError struct {
	Status  int
	Problem problem // as far as the body was problem+json
	Body    string  // the start of a body that was not
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", e.Status)
	title := e.Problem.Title
	if title == "" {
		title = http.StatusText(e.Status)
	}
	if title != "" {
		b.WriteString(" " + title)
	}
	switch {
	case e.Problem.Detail != "":
		b.WriteString(": " + e.Problem.Detail)
	case e.Body != "":
		b.WriteString(": " + e.Body)
	}
	if e.Problem.ContextID != "" {
		fmt.Fprintf(&b, " (contextId %s)", e.Problem.ContextID)
	}
	return b.String()
}

// readAPIError turns an error answer into an *apiError.
func readAPIError(resp *http.Response) *apiError {
	e := &apiError{Status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(body, &e.Problem); err != nil || (e.Problem.Detail == "" && e.Problem.Title == "") {
		e.Problem = problem{ContextID: e.Problem.ContextID}
		s := strings.TrimSpace(string(body))
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		e.Body = strings.ToValidUTF8(s, "?")
	}
	if e.Problem.ContextID == "" {
		e.Problem.ContextID = resp.Header.Get("X-Request-Id")
	}
	return e
}

// isStatus reports whether err is an answer of the server with that status.
func isStatus(err error, status int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == status
}

// call sends one request to the admin API and decodes a 2xx answer's JSON
// into out (unless out is nil). in, unless nil, is sent as JSON. idempotent
// allows retries after 5xx answers and broken connections.
func (a *adminAPI) call(ctx context.Context, method, path string, query url.Values, in, out any, idempotent bool) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	target := a.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	return a.send(ctx, func(ctx context.Context) (*http.Request, error) {
		tok, err := a.bearer(ctx)
		if err != nil {
			return nil, err
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, target, rd)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, nil
	}, out, idempotent, true)
}

// send runs the retry loop around newReq. A 401 answer drops the token and
// tries once more when reauth is set.
func (a *adminAPI) send(ctx context.Context, newReq func(context.Context) (*http.Request, error), out any, idempotent, reauth bool) error {
	var throttled, failures int
	for {
		req, err := newReq(ctx)
		if err != nil {
			return err
		}
		resp, err := a.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if (idempotent || notSent(err)) && failures < a.retry.failures {
				failures++
				if err := a.retry.sleep(ctx, a.backoff(failures)); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("cannot reach ledgerfeed at %s (is it running? set --server or LEDGERFEED_SERVER): %w", a.base, err)
		}
		status := resp.StatusCode
		switch {
		case status >= 200 && status < 300:
			defer resp.Body.Close()
			if out == nil {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
				return nil
			}
			if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
				return fmt.Errorf("%s %s: reading the answer: %w", req.Method, req.URL.Path, err)
			}
			return nil
		case status == http.StatusUnauthorized && reauth:
			drain(resp)
			a.dropToken()
			reauth = false
			continue
		case status == http.StatusTooManyRequests && throttled < a.retry.throttled:
			wait := retryAfter(resp.Header.Get("Retry-After"), a.now())
			drain(resp)
			throttled++
			wait = min(wait, a.retry.maxWait)
			if a.notify != nil && wait >= time.Second {
				a.notify(fmt.Sprintf("%s %s: rate limited (429), retrying in %s", req.Method, req.URL.Path, wait))
			}
			if err := a.retry.sleep(ctx, wait); err != nil {
				return err
			}
			continue
		case status >= 500 && status != http.StatusNotImplemented && status != http.StatusHTTPVersionNotSupported &&
			idempotent && failures < a.retry.failures:
			drain(resp)
			failures++
			if err := a.retry.sleep(ctx, a.backoff(failures)); err != nil {
				return err
			}
			continue
		}
		e := readAPIError(resp)
		resp.Body.Close()
		return e
	}
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// backoff is the wait before retry n (1, 2, …): backoff·2^(n-1), at most
// maxWait, with the upper half jittered.
func (a *adminAPI) backoff(n int) time.Duration {
	d := a.retry.backoff << min(n-1, 20)
	if d > a.retry.maxWait || d <= 0 {
		d = a.retry.maxWait
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter parses a Retry-After header: seconds or an HTTP date. Missing
// or unparsable is one second.
func retryAfter(h string, now time.Time) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return time.Second
}

// notSent reports whether a request failed before it reached the server
// (no connection), so that retrying cannot do anything twice.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// bearer returns a valid access token, fetching one when needed.
func (a *adminAPI) bearer(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != "" && a.now().Before(a.renew) {
		return a.token, nil
	}
	var tr struct {
		AccessToken string  `json:"access_token"`
		TokenType   string  `json:"token_type"`
		ExpiresIn   flexInt `json:"expires_in"`
	}
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	err := a.send(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/oauth/token", strings.NewReader(form))
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth(url.QueryEscape(a.id), url.QueryEscape(a.secret)) // RFC 6749 §2.3.1
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		return req, nil
	}, &tr, true, false)
	if err != nil {
		if isStatus(err, http.StatusUnauthorized) || isStatus(err, http.StatusBadRequest) {
			return "", fmt.Errorf("sign in as client %q: %w (check --client-id and LEDGERFEED_CLIENT_SECRET or --credentials)", a.id, err)
		}
		return "", fmt.Errorf("sign in as client %q: %w", a.id, err)
	}
	if tr.AccessToken == "" {
		return "", fmt.Errorf("sign in as client %q: the token endpoint answered no access_token", a.id)
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	if life <= 0 {
		life = 5 * time.Minute
	}
	a.token = tr.AccessToken
	a.renew = a.now().Add(life - min(time.Minute, life/5))
	a.tokens++
	return a.token, nil
}

func (a *adminAPI) dropToken() {
	a.mu.Lock()
	a.token = ""
	a.mu.Unlock()
}

// flexInt decodes a JSON number or a number in a string (as protojson
// writes int64).
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	s = strings.Trim(s, `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not an integer", b)
	}
	*n = flexInt(v)
	return nil
}

// --- the admin API's resources ---

// apiGrant is a client's grant to read a ledger.
type apiGrant struct {
	LedgerID    string `json:"ledgerId"`
	GDPRConsent bool   `json:"gdprConsent"`
}

// apiClient is an API client as the admin API shows it.
type apiClient struct {
	ClientID        string     `json:"clientId"`
	Scopes          []string   `json:"scopes"`
	Grants          []apiGrant `json:"grants"`
	CreatedAt       string     `json:"createdAt,omitempty"`
	SecretRotatedAt string     `json:"secretRotatedAt,omitempty"`
	ClientSecret    string     `json:"clientSecret,omitempty"` // only when created
}

func clientPath(id string) string { return "/admin/v1/clients/" + url.PathEscape(id) }

func (a *adminAPI) createClient(ctx context.Context, c apiClient) (apiClient, error) {
	in := struct {
		ClientID string     `json:"clientId"`
		Scopes   []string   `json:"scopes"`
		Grants   []apiGrant `json:"grants"`
	}{c.ClientID, nonNil(c.Scopes), nonNil(c.Grants)}
	var out apiClient
	err := a.call(ctx, http.MethodPost, "/admin/v1/clients", nil, in, &out, false)
	return out, err
}

func (a *adminAPI) getClient(ctx context.Context, id string) (apiClient, error) {
	var out apiClient
	err := a.call(ctx, http.MethodGet, clientPath(id), nil, nil, &out, true)
	return out, err
}

// updateClient replaces a client's scopes and grants.
func (a *adminAPI) updateClient(ctx context.Context, c apiClient) (apiClient, error) {
	in := struct {
		Scopes []string   `json:"scopes"`
		Grants []apiGrant `json:"grants"`
	}{nonNil(c.Scopes), nonNil(c.Grants)}
	var out apiClient
	err := a.call(ctx, http.MethodPut, clientPath(c.ClientID), nil, in, &out, true)
	return out, err
}

func (a *adminAPI) deleteClient(ctx context.Context, id string) error {
	return a.call(ctx, http.MethodDelete, clientPath(id), nil, nil, nil, false)
}

// listClients returns every client, following the cursor.
func (a *adminAPI) listClients(ctx context.Context) ([]apiClient, error) {
	var all []apiClient
	cursor := ""
	for {
		var page struct {
			Items  []apiClient `json:"items"`
			Cursor string      `json:"cursor"`
		}
		q := url.Values{"pageSize": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if err := a.call(ctx, http.MethodGet, "/admin/v1/clients", q, nil, &page, true); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.Cursor == "" || page.Cursor == cursor || len(page.Items) == 0 {
			return all, nil
		}
		cursor = page.Cursor
	}
}

// rotateSecret makes a new secret for a client and returns it.
func (a *adminAPI) rotateSecret(ctx context.Context, id string) (string, error) {
	var out struct {
		ClientSecret string `json:"clientSecret"`
	}
	if err := a.call(ctx, http.MethodPost, clientPath(id)+"/secret", nil, nil, &out, false); err != nil {
		return "", err
	}
	if out.ClientSecret == "" {
		return "", errors.New("the server answered no clientSecret")
	}
	return out.ClientSecret, nil
}

// apiLedger is the part of a ledger's admin JSON the CLI needs.
type apiLedger struct {
	LedgerID       string `json:"ledgerId"`
	Currency       string `json:"currency"`
	TimeZone       string `json:"timeZone"`
	Cutoff         string `json:"cutoff"`
	OpenLedgerDate string `json:"openLedgerDate"`
}

func (a *adminAPI) getLedger(ctx context.Context, id string) (apiLedger, error) {
	var out apiLedger
	err := a.call(ctx, http.MethodGet, "/admin/v1/ledgers/"+url.PathEscape(id), nil, nil, &out, true)
	return out, err
}

// appendResult is the answer to a batch of entries.
type appendResult struct {
	Appended      flexInt `json:"appended"`
	Duplicates    flexInt `json:"duplicates"`
	FirstSequence flexInt `json:"firstSequence"`
	LastSequence  flexInt `json:"lastSequence"`
}

// appendEntries posts one batch to a (ledger, topic) log. It is idempotent
// by entryId, so it is retried like a GET.
func (a *adminAPI) appendEntries(ctx context.Context, ledgerID, topic string, entries []importEntry) (appendResult, error) {
	in := struct {
		Entries []importEntry `json:"entries"`
	}{entries}
	var out appendResult
	path := "/admin/v1/ledgers/" + url.PathEscape(ledgerID) + "/" + url.PathEscape(topic) + "/entries"
	err := a.call(ctx, http.MethodPost, path, nil, in, &out, true)
	return out, err
}

// auditEvent is one audit log record.
type auditEvent struct {
	Time      string  `json:"time"`
	ClientID  string  `json:"clientId"`
	Action    string  `json:"action"`
	Resource  string  `json:"resource"`
	Result    string  `json:"result"`
	Status    flexInt `json:"status"`
	ContextID string  `json:"contextId"`
}

// auditPage is one page of GET /admin/v1/audit. The cursor is always set;
// at the end of the log it is the one that was sent.
type auditPage struct {
	Items  []auditEvent `json:"items"`
	Cursor string       `json:"cursor"`
}

func (a *adminAPI) listAudit(ctx context.Context, clientID, action, cursor string, pageSize int) (auditPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"clientId": clientID, "action": action, "cursor": cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if pageSize > 0 {
		q.Set("pageSize", strconv.Itoa(pageSize))
	}
	var out auditPage
	err := a.call(ctx, http.MethodGet, "/admin/v1/audit", q, nil, &out, true)
	return out, err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
