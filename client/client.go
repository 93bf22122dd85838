package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// Config says where the server is and who the caller is. BaseURL, ClientID
// and ClientSecret are required; the rest have defaults.
type Config struct {
	// BaseURL of the REST API, e.g. "https://ledgerfeed.example.com" or
	// "http://127.0.0.1:8080". A path prefix is kept.
	BaseURL      string
	ClientID     string
	ClientSecret string

	// HTTPClient makes the requests (default: a client with no overall
	// timeout, since long polls hold a request open; calls end with their
	// context).
	HTTPClient *http.Client

	// MaxRetries is how many times one call is retried after a retryable
	// failure (default 8; a negative value: never retry).
	MaxRetries int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries (defaults 100 ms and 10 s). The wait before retry n is a random
	// duration in [0, min(MaxBackoff, MinBackoff·2^n)] (full jitter), but at
	// least what a Retry-After header asks, capped at MaxRetryAfter.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// MaxRetryAfter caps a Retry-After wait (default 5 min).
	MaxRetryAfter time.Duration

	// UserAgent is sent with every request (default "ledgerfeed-go-client").
	UserAgent string

	// FeedConn, when set, is a gRPC connection to the same server's gRPC
	// port: GetFeed (and so Feed, FeedFrom and FeedPages) then reads pages
	// with ReportService.GetFeed, same pages, same retries, same errors, at
	// a fraction of the decoding cost of JSON. Tokens still come from
	// BaseURL.
	FeedConn grpc.ClientConnInterface
}

// Client talks to one ledgerfeed server as one API client. It is safe for
// concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	hc   *http.Client

	mu      sync.Mutex
	token   string
	expires time.Time // local clock; refresh before
	tokGen  uint64    // bumped on every fetch, so one 401 refreshes once
}

// New checks cfg and returns a Client. No request is made until the first
// call.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("client: BaseURL is required")
	}
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("client: ClientID and ClientSecret are required")
	}
	if cfg.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 32
		cfg.HTTPClient = &http.Client{Transport: t}
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 8
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = 5 * time.Minute
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "ledgerfeed-go-client"
	}
	return &Client{cfg: cfg, base: u, hc: cfg.HTTPClient}, nil
}

// tokenAnswer is the answer of POST /accesstoken/get.
type tokenAnswer struct {
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	AccessToken string `json:"access_token"`
}

// Token returns a valid access token, fetching a new one when there is none
// or the current one expires within a minute (or within a tenth of its
// lifetime, for short-lived tokens).
func (c *Client) Token(ctx context.Context) (string, error) {
	tok, _, err := c.tokenGen(ctx, 0)
	return tok, err
}

// tokenGen returns the token and its generation. With stale set to a
// generation, a token of that generation is replaced (after a 401).
func (c *Client) tokenGen(ctx context.Context, stale uint64) (string, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.tokGen != stale && time.Now().Before(c.expires) {
		return c.token, c.tokGen, nil
	}
	var ta tokenAnswer
	err := c.call(ctx, "POST", "/accesstoken/get", nil, false, &ta, func(r *http.Request) {
		r.Header.Set("client_id", c.cfg.ClientID)
		r.Header.Set("client_secret", c.cfg.ClientSecret)
	})
	if err != nil {
		return "", 0, fmt.Errorf("access token: %w", err)
	}
	if ta.AccessToken == "" {
		return "", 0, errors.New("access token: the answer has no access_token")
	}
	life := time.Duration(ta.ExpiresIn) * time.Second
	early := min(time.Minute, life/10)
	c.token, c.expires = ta.AccessToken, time.Now().Add(life-early)
	c.tokGen++
	return c.token, c.tokGen, nil
}

// get GETs path with query q and decodes the JSON answer into out.
func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	return c.call(ctx, "GET", path, q, true, out, nil)
}

// call makes one API call with retries. With auth set it sends the bearer
// token, and after a 401 fetches a new token and tries once more.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, auth bool, out any, prep func(*http.Request)) error {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawPath = ""
	if q != nil {
		u.RawQuery = q.Encode()
	}
	refreshed := false
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", c.cfg.UserAgent)
		var gen uint64
		if auth {
			var tok string
			if tok, gen, err = c.tokenGen(ctx, 0); err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if prep != nil {
			prep(req)
		}
		resp, err := c.hc.Do(req)
		var retryAfter time.Duration
		if err == nil {
			if resp.StatusCode == http.StatusOK {
				err = decodeBody(resp, out)
				if err == nil {
					return nil
				}
				err = &transportError{fmt.Errorf("%s %s: %w", method, path, err)}
			} else {
				apiErr := readAPIError(resp)
				if auth && apiErr.Status == http.StatusUnauthorized && !refreshed {
					refreshed = true
					c.mu.Lock()
					if c.tokGen == gen {
						c.token = "" // fetch afresh
					}
					c.mu.Unlock()
					attempt-- // a refresh is not a retry
					continue
				}
				retryAfter = apiErr.RetryAfter
				err = apiErr
			}
		} else {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			err = &transportError{fmt.Errorf("%s %s: %w", method, path, err)}
		}
		if !retryable(err) || c.cfg.MaxRetries < 0 || attempt >= c.cfg.MaxRetries {
			return err
		}
		wait := c.backoff(attempt)
		if retryAfter > 0 {
			wait = max(wait, min(retryAfter, c.cfg.MaxRetryAfter))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// backoff is the full-jitter wait before retry attempt+1.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.MinBackoff << min(max(attempt, 0), 30)
	if d <= 0 || d > c.cfg.MaxBackoff {
		d = c.cfg.MaxBackoff
	}
	return rand.N(d + 1)
}

// transportError is a failure below HTTP (connection refused or reset, a
// body cut short): retryable.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// retryable: transport errors, 408, 429 and 5xx but 501 Not Implemented.
func retryable(err error) bool {
	var te *transportError
	if errors.As(err, &te) {
		return true
	}
	var ae *APIError
	if errors.As(err, &ae) {
		s := ae.Status
		return s == http.StatusTooManyRequests || s == http.StatusRequestTimeout ||
			(s >= 500 && s != http.StatusNotImplemented)
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// bodyBufs holds read buffers for answers: a feed page of 1000 entries is
// about 300 KB, read once per call.
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func decodeBody(resp *http.Response, out any) error {
	defer resp.Body.Close()
	buf := bodyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 8<<20 {
			bodyBufs.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, 1<<31)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// readAPIError turns a non-200 answer into an *APIError.
func readAPIError(resp *http.Response) *APIError {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	var p struct {
		Title     string `json:"title"`
		Detail    string `json:"detail"`
		ContextID string `json:"contextId"`
		ErrorCode int    `json:"errorCode"`
		// RFC 6749 §5.2 errors of the OAuth endpoints.
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(b, &p) == nil {
		e.Title, e.Detail, e.ContextID, e.ErrorCode = p.Title, p.Detail, p.ContextID, p.ErrorCode
		if e.Detail == "" {
			e.Detail = p.Description
		}
	} else {
		e.Detail = string(bytes.TrimSpace(b))
	}
	if e.ContextID == "" {
		e.ContextID = resp.Header.Get("X-Request-Id")
	}
	if e.Title == "" {
		e.Title = http.StatusText(resp.StatusCode)
	}
	return e
}
