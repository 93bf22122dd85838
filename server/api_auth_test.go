package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// b64 is base64url without padding, as JWTs use.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(v any) string {
	b, _ := json.Marshal(v)
	return b64(b)
}

// hs256 signs header.payload with HMAC-SHA256 under key.
func hs256(header, payload map[string]any, key []byte) string {
	in := b64JSON(header) + "." + b64JSON(payload)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + b64(m.Sum(nil))
}

// expectUnauthenticated checks that tok is refused over REST (401
// problem+json) and gRPC (UNAUTHENTICATED) with the same detail.
func expectUnauthenticated(t *testing.T, e *apiEnv, tok string) string {
	t.Helper()
	r := e.do("GET", "/admin/v1/clients", tok, nil)
	if r.code != http.StatusUnauthorized {
		t.Fatalf("REST: %d %s, want 401", r.code, r.body)
	}
	if ct := r.hdr.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("REST Content-Type %q", ct)
	}
	if !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("REST WWW-Authenticate %q", r.hdr.Get("WWW-Authenticate"))
	}
	p := r.json(t)
	if p["errorCode"] != float64(codeUnauthenticated) || p["contextId"] != r.hdr.Get("X-Request-Id") || p["contextId"] == "" {
		t.Errorf("REST problem %s", r.body)
	}
	_, err := e.admin.ListClients(bearer(tok), &v1.ListClientsRequest{})
	st := status.Convert(err)
	if st.Code() != codes.Unauthenticated {
		t.Fatalf("gRPC: %v, want Unauthenticated", err)
	}
	if st.Message() != p["detail"] {
		t.Errorf("gRPC detail %q, REST detail %q: want the same", st.Message(), p["detail"])
	}
	return st.Message()
}

func TestAPI_Authn_ForgedTokens(t *testing.T) {
	e := newAPIEnv(t, nil, Limits{})
	good := e.adminToken()
	now := time.Now()

	// Positive controls: our token and a well-formed external one pass.
	if r := e.do("GET", "/admin/v1/clients", good, nil); r.code != 200 {
		t.Fatalf("own token: %d %s", r.code, r.body)
	}
	extClaims := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": extIssuer, "sub": auth.AdminClientID, "aud": "ledgerfeed",
			"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "scope": "admin"}
	}
	if r := e.do("GET", "/admin/v1/clients", e.extToken(extClaims()), nil); r.code != 200 {
		t.Fatalf("external token: %d %s", r.code, r.body)
	}

	parts := strings.Split(good, ".")
	var header, payload map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(hb, &header)
	json.Unmarshal(pb, &payload)
	kid, _ := header["kid"].(string)
	if kid == "" {
		t.Fatalf("our token has no kid: %v", header)
	}

	// The server's public key, as the JWKS publishes it.
	jr := e.do("GET", "/.well-known/jwks.json", "", nil)
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	if jr.code != 200 || json.Unmarshal(jr.body, &jwks) != nil || len(jwks.Keys) == 0 {
		t.Fatalf("jwks: %d %s", jr.code, jr.body)
	}
	x, _ := jwks.Keys[0]["x"].(string)
	rawPub, _ := base64.RawURLEncoding.DecodeString(x)
	if len(rawPub) == 0 {
		t.Fatalf("jwks key has no x: %v", jwks.Keys[0])
	}

	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(out, kv[i].(string))
			} else {
				out[kv[i].(string)] = kv[i+1]
			}
		}
		return out
	}
	tampered := with(payload, "scope", "admin read", "sub", "someone-else")
	ext := func(kv ...any) string {
		c := extClaims()
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return e.extToken(c)
	}
	extWithKid := func(k string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, extClaims())
		tok.Header["kid"] = k
		s, _ := tok.SignedString(e.extKey)
		return s
	}
	ownWithKid := func(k string) string { // our issuer, signed by a key we do not hold
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(payload))
		tok.Header["kid"] = k
		tok.Header["typ"] = header["typ"]
		s, _ := tok.SignedString(e.extKey)
		return s
	}

	// want is a word of the detail: the token fails for the reason meant.
	for _, tc := range []struct {
		name, tok, want string
	}{
		{"alg none", b64JSON(with(header, "alg", "none")) + "." + parts[1] + ".", "algorithm"},
		{"alg none, external issuer", b64JSON(map[string]any{"alg": "none", "kid": extKid}) + "." + b64JSON(extClaims()) + ".", "algorithm"},
		{"HS256 with the public key bytes", hs256(with(header, "alg", "HS256"), payload, rawPub), "algorithm"},
		{"HS256 with the public key's JWK x", hs256(with(header, "alg", "HS256"), payload, []byte(x)), "algorithm"},
		{"HS256 with the JWKS document", hs256(with(header, "alg", "HS256"), payload, jr.body), "algorithm"},
		{"tampered payload", parts[0] + "." + b64JSON(tampered) + "." + parts[2], "signature"},
		{"tampered header", b64JSON(with(header, "kid", "other")) + "." + parts[1] + "." + parts[2], "key"},
		{"signature cut", parts[0] + "." + parts[1] + ".", "signature"},
		{"missing exp", ext("exp", nil), "required claim"},
		{"expired (external)", ext("exp", now.Add(-time.Hour).Unix()), "expired"},
		{"wrong aud", ext("aud", "someone-else"), "audience"},
		{"no aud", ext("aud", nil), "required claim"},
		{"wrong iss", ext("iss", "https://evil.example.test"), "issuer"},
		{"own iss signed by another key", ownWithKid(kid), "signature"},
		{"kid with a path", extWithKid("../../../../etc/passwd"), "kid"},
		{"kid with a path, own issuer", ownWithKid("../keys/" + kid), "kid"},
		{"kid with a URL", extWithKid("https://evil.example.test/jwks.json"), "kid"},
		{"kid with a file URL", ownWithKid("file:///etc/passwd"), "kid"},
		{"unknown kid", extWithKid("no-such-kid"), "key"},
		{"garbage", "not-a-jwt", "malformed"},
		{"sub of no client", ext("sub", "nobody"), "nobody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := expectUnauthenticated(t, e, tc.tok); !strings.Contains(d, tc.want) {
				t.Errorf("detail %q, want it to say %q", d, tc.want)
			}
		})
	}

	t.Run("no token", func(t *testing.T) {
		if d := expectUnauthenticated(t, e, ""); !strings.Contains(d, "bearer") {
			t.Errorf("detail %q", d)
		}
	})
	t.Run("expired (own)", func(t *testing.T) {
		e.offset.Store(int64(2 * time.Hour))
		defer e.offset.Store(0)
		if d := expectUnauthenticated(t, e, good); !strings.Contains(d, "expired") {
			t.Errorf("detail %q, want it to say expired", d)
		}
	})
	// The good token still works: nothing above changed state.
	if r := e.do("GET", "/admin/v1/clients", good, nil); r.code != 200 {
		t.Fatalf("own token after the forgeries: %d %s", r.code, r.body)
	}
}

func TestAPI_Scopes(t *testing.T) {
	e := newAPIEnv(t, nil, Limits{})
	admin := e.adminToken()
	e.putLedger(admin, "302321")
	secret := e.createClient(admin, "acme", []string{"read"}, map[string]any{"ledgerId": "302321", "gdprConsent": false})
	partner := e.token("acme", secret)

	// A partner token on the admin API: 403, REST and gRPC.
	r := e.do("GET", "/admin/v1/clients", partner, nil)
	if r.code != http.StatusForbidden || r.json(t)["errorCode"] != float64(codeForbidden) {
		t.Errorf("partner on admin REST: %d %s, want 403", r.code, r.body)
	}
	r = e.do("PUT", "/admin/v1/ledgers/1", partner, map[string]any{"currency": "NOK"})
	if r.code != http.StatusForbidden {
		t.Errorf("partner PUT ledger: %d %s, want 403", r.code, r.body)
	}
	if _, err := e.admin.ListClients(bearer(partner), &v1.ListClientsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("partner on admin gRPC: %v, want PermissionDenied", err)
	}

	// An admin token on the report API: 403, REST and gRPC, before any
	// handler runs.
	for _, path := range []string{"/settlement/v1/ledgers", "/report/v2/ledgers/302321/funds/feed", "/report/v2/ledgers/302321/funds/dates/2024-01-01"} {
		if r := e.do("GET", path, admin, nil); r.code != http.StatusForbidden {
			t.Errorf("admin on %s: %d %s, want 403", path, r.code, r.body)
		}
	}
	if _, err := e.rep.GetFeed(bearer(admin), &v1.GetFeedRequest{LedgerId: "302321", Topic: "funds"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("admin on report gRPC: %v, want PermissionDenied", err)
	}
	// The partner passes the same guard.
	if r := e.do("GET", "/settlement/v1/ledgers", partner, nil); r.code != http.StatusOK {
		t.Errorf("partner on report REST: %d %s, want 200 (past the guard)", r.code, r.body)
	}
	if _, err := e.rep.GetFeed(bearer(partner), &v1.GetFeedRequest{LedgerId: "302321", Topic: "funds"}); err != nil {
		t.Errorf("partner on report gRPC: %v, want success (past the guard)", err)
	}

	// Streams pass the same chain (the partner's ledger 999 has no grant).
	for _, tc := range []struct {
		tok  string
		want codes.Code
	}{{"", codes.Unauthenticated}, {admin, codes.PermissionDenied}, {partner, codes.NotFound}} {
		ctx := context.Background()
		if tc.tok != "" {
			ctx = bearer(tc.tok)
		}
		stream, err := e.rep.SubscribeFeed(ctx, &v1.SubscribeFeedRequest{LedgerId: "999", Topic: "funds"})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != tc.want {
			t.Errorf("SubscribeFeed: %v, want %v", err, tc.want)
		}
	}

	// The grant helpers: no grant reads exactly as an unknown ledger.
	pp, err := e.auth.Verify(context.Background(), partner)
	if err != nil {
		t.Fatal(err)
	}
	ap, err := e.auth.Verify(context.Background(), admin)
	if err != nil {
		t.Fatal(err)
	}
	ctxOf := func(p *auth.Principal) context.Context {
		return context.WithValue(context.Background(), callKey{}, &call{principal: p})
	}
	if err := requireLedger(ctxOf(pp), "302321"); err != nil {
		t.Errorf("granted ledger: %v", err)
	}
	_, unknown := e.store.GetLedger("999999")
	for _, tc := range []struct {
		name string
		p    *auth.Principal
		id   string
	}{{"partner, no grant, ledger exists", pp, "1"}, {"partner, unknown ledger", pp, "999999"}, {"admin token", ap, "302321"}, {"no principal", nil, "302321"}} {
		err := requireLedger(ctxOf(tc.p), tc.id)
		want := toStatus(e.srv.log, "", "", fmt.Errorf("ledger %s: %w", tc.id, ledger.ErrNotFound))
		got := toStatus(e.srv.log, "", "", err)
		if got.Code() != codes.NotFound || got.Message() != want.Message() {
			t.Errorf("%s: %v, want %v", tc.name, got, want)
		}
	}
	if toStatus(e.srv.log, "", "", unknown).Message() != toStatus(e.srv.log, "", "", ledgerNotFound("999999")).Message() {
		t.Errorf("the store words an unknown ledger %q, the grant check %q", unknown, ledgerNotFound("999999"))
	}
	if err := requireGDPR(ctxOf(pp), "302321"); status.Code(toStatus(e.srv.log, "", "", err).Err()) != codes.PermissionDenied {
		t.Errorf("GDPR without consent: %v, want PermissionDenied", err)
	}
	// Scope read is what the report API's policy needs; admin lacks it.
	if p := e.srv.policyOf(v1.ReportService_GetFeed_FullMethodName); p.scope != ledger.ScopeRead || ap.HasScope(p.scope) {
		t.Errorf("report policy %+v; admin principal scopes %v", p, ap.Scopes)
	}
	// An unknown method fails closed.
	if p := e.srv.policyOf("/ledgerfeed.v1.NewService/Thing"); p.scope != ledger.ScopeAdmin {
		t.Errorf("unknown method policy %+v, want scope admin", p)
	}
}

func TestAPI_TokenEndpoints(t *testing.T) {
	e := newAPIEnv(t, nil, Limits{})

	post := func(path string, body string, hdr ...string) resp {
		t.Helper()
		return e.do("POST", path, "", body, hdr...)
	}
	form := "application/x-www-form-urlencoded"
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}

	// Vipps.
	r := post("/accesstoken/get", "", "client_id", "admin", "client_secret", testAdminSecret,
		"Ocp-Apim-Subscription-Key", "whatever", "Merchant-Serial-Number", "123456")
	if r.code != 200 {
		t.Fatalf("accesstoken/get: %d %s", r.code, r.body)
	}
	v := r.json(t)
	for k, want := range map[string]any{"token_type": "Bearer", "expires_in": 3600.0, "ext_expires_in": 3600.0, "resource": "ledgerfeed"} {
		if v[k] != want {
			t.Errorf("accesstoken/get %s = %v, want %v", k, v[k], want)
		}
	}
	for _, k := range []string{"expires_on", "not_before"} {
		s, ok := v[k].(string)
		if _, err := strconv.ParseInt(s, 10, 64); !ok || err != nil {
			t.Errorf("accesstoken/get %s = %#v, want a string of unix seconds", k, v[k])
		}
	}
	if tok, _ := v["access_token"].(string); e.do("GET", "/admin/v1/clients", tok, nil).code != 200 {
		t.Errorf("the Vipps token does not work")
	}

	// OAuth: Basic, form, and the alias path.
	for _, tc := range []struct {
		name, path, body string
		hdr              []string
	}{
		{"basic", "/oauth/token", "grant_type=client_credentials", []string{"Content-Type", form, "Authorization", basic("admin", testAdminSecret)}},
		{"form", "/oauth/token", "grant_type=client_credentials&client_id=admin&client_secret=" + url.QueryEscape(testAdminSecret), []string{"Content-Type", form}},
		{"alias", "/miami/v1/token", "grant_type=client_credentials", []string{"Content-Type", form, "Authorization", basic("admin", testAdminSecret)}},
	} {
		r := post(tc.path, tc.body, tc.hdr...)
		if r.code != 200 {
			t.Errorf("%s: %d %s", tc.name, r.code, r.body)
			continue
		}
		o := r.json(t)
		if o["token_type"] != "Bearer" || o["expires_in"] != 3600.0 || o["scope"] != "admin" || o["access_token"] == "" {
			t.Errorf("%s: %s", tc.name, r.body)
		}
		if r.hdr.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", tc.name, r.hdr.Get("Cache-Control"))
		}
	}

	// Unknown client and wrong secret: the same answer on each endpoint.
	for _, ep := range []struct {
		name string
		send func(id, secret string) resp
	}{
		{"accesstoken/get", func(id, secret string) resp {
			return post("/accesstoken/get", "", "client_id", id, "client_secret", secret)
		}},
		{"oauth/token basic", func(id, secret string) resp {
			return post("/oauth/token", "grant_type=client_credentials", "Content-Type", form, "Authorization", basic(id, secret))
		}},
		{"oauth/token form", func(id, secret string) resp {
			return post("/oauth/token", "grant_type=client_credentials&client_id="+id+"&client_secret="+secret, "Content-Type", form)
		}},
		{"miami/v1/token", func(id, secret string) resp {
			return post("/miami/v1/token", "grant_type=client_credentials", "Content-Type", form, "Authorization", basic(id, secret))
		}},
	} {
		unknown := ep.send("no-such-client", "wrong-secret")
		wrong := ep.send("admin", "wrong-secret")
		if unknown.code != 401 || wrong.code != 401 {
			t.Errorf("%s: %d / %d, want 401 both", ep.name, unknown.code, wrong.code)
		}
		if a, b := withoutContextID(t, unknown.body), withoutContextID(t, wrong.body); a != b {
			t.Errorf("%s: unknown client %s\nwrong secret %s", ep.name, a, b)
		}
		for _, h := range []string{"Content-Type", "WWW-Authenticate", "Cache-Control"} {
			if unknown.hdr.Get(h) != wrong.hdr.Get(h) {
				t.Errorf("%s: %s differs: %q / %q", ep.name, h, unknown.hdr.Get(h), wrong.hdr.Get(h))
			}
		}
		if strings.HasPrefix(ep.name, "oauth") || strings.HasPrefix(ep.name, "miami") {
			if m := wrong.json(t); m["error"] != "invalid_client" {
				t.Errorf("%s: %s, want error invalid_client", ep.name, wrong.body)
			}
		}
	}

	// OAuth request errors.
	if r := post("/oauth/token", "grant_type=password", "Content-Type", form, "Authorization", basic("admin", testAdminSecret)); r.code != 400 || r.json(t)["error"] != "unsupported_grant_type" {
		t.Errorf("grant_type=password: %d %s", r.code, r.body)
	}
	if r := post("/oauth/token", "grant_type=client_credentials&client_secret=x", "Content-Type", form, "Authorization", basic("admin", testAdminSecret)); r.code != 400 || r.json(t)["error"] != "invalid_request" {
		t.Errorf("two auth methods: %d %s", r.code, r.body)
	}
	if r := post("/accesstoken/get", ""); r.code != 400 {
		t.Errorf("accesstoken/get without headers: %d %s", r.code, r.body)
	}

	// JWKS and the removed endpoint.
	if r := e.do("GET", "/.well-known/jwks.json", "", nil); r.code != 200 || !strings.Contains(string(r.body), `"keys"`) {
		t.Errorf("jwks: %d %s", r.code, r.body)
	}
	r = e.do("GET", "/report/v1/ledgertransactions", "", nil)
	if r.code != http.StatusGone || r.hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(r.body), "/report/v2/ledgers/{ledgerId}/{topic}/feed") {
		t.Errorf("ledgertransactions: %d %s", r.code, r.body)
	}
}

func TestAPI_RateLimits(t *testing.T) {
	e := newAPIEnv(t, func(c *auth.Config) {
		c.TokenRatePerMinute, c.TokenBurst = 60, 3 // one a second after a burst of 3
		c.RatePerSecond, c.Burst = 2, 4
	}, Limits{})
	admin := e.adminToken() // takes 1 of the burst

	// Brute force on the token endpoint meets 429 with Retry-After: guesses
	// sent at once, each under another client id, so that the remote
	// address's bucket is what stops them (the rate check comes before the
	// slow secret check, so timing does not matter).
	answers := make(chan resp, 12)
	var wg sync.WaitGroup
	for i := 0; i < cap(answers); i++ {
		wg.Go(func() {
			answers <- e.do("POST", "/accesstoken/get", "", "", "client_id", "guess-"+strconv.Itoa(i), "client_secret", "guess")
		})
	}
	wg.Wait()
	close(answers)
	var limited resp
	var n429 int
	for r := range answers {
		switch r.code {
		case http.StatusTooManyRequests:
			n429++
			limited = r
		case http.StatusUnauthorized:
		default:
			t.Fatalf("guess: %d %s", r.code, r.body)
		}
	}
	if n429 < cap(answers)-4 {
		t.Fatalf("%d guesses at once, %d met 429", cap(answers), n429)
	}
	retry, err := strconv.Atoi(limited.hdr.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 60 {
		t.Fatalf("Retry-After %q", limited.hdr.Get("Retry-After"))
	}
	if p := limited.json(t); p["status"] != 429.0 || p["errorCode"] != float64(codeRateLimited) || p["contextId"] == "" {
		t.Errorf("429 body %s", limited.body)
	}
	// A client that obeys Retry-After gets through.
	time.Sleep(time.Duration(retry) * time.Second)
	if r := e.do("POST", "/accesstoken/get", "", "", "client_id", "admin", "client_secret", testAdminSecret); r.code != 200 {
		t.Fatalf("after Retry-After: %d %s", r.code, r.body)
	}

	// API calls: REST 429 with Retry-After, gRPC RESOURCE_EXHAUSTED with
	// RetryInfo and a retry-after trailer; one bucket for both.
	var got429 bool
	for i := 0; i < 20 && !got429; i++ {
		r := e.do("GET", "/admin/v1/clients", admin, nil)
		switch r.code {
		case 200:
		case http.StatusTooManyRequests:
			got429 = true
			if s, err := strconv.Atoi(r.hdr.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("REST Retry-After %q", r.hdr.Get("Retry-After"))
			}
		default:
			t.Fatalf("call %d: %d %s", i, r.code, r.body)
		}
	}
	if !got429 {
		t.Fatal("20 calls at once never met 429")
	}
	var trailer metadata.MD
	var st *status.Status
	for i := 0; i < 20; i++ {
		trailer = nil
		_, err = e.admin.ListClients(bearer(admin), &v1.ListClientsRequest{}, grpc.Trailer(&trailer))
		if st = status.Convert(err); st.Code() != codes.OK {
			break
		}
	}
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("gRPC: %v, want ResourceExhausted", err)
	}
	var ri *errdetails.RetryInfo
	for _, d := range st.Details() {
		if x, ok := d.(*errdetails.RetryInfo); ok {
			ri = x
		}
	}
	if ri == nil || ri.GetRetryDelay().AsDuration() < time.Second {
		t.Errorf("gRPC details %v, want a RetryInfo of ≥ 1 s", st.Details())
	}
	if v := trailer.Get("retry-after"); len(v) != 1 || v[0] == "" || v[0] == "0" {
		t.Errorf("gRPC trailer retry-after %v", v)
	}
	time.Sleep(ri.GetRetryDelay().AsDuration())
	if r := e.do("GET", "/admin/v1/clients", admin, nil); r.code != 200 {
		t.Errorf("after the wait: %d %s", r.code, r.body)
	}
}

func TestPollSlots(t *testing.T) {
	p := newPollSlots(2)
	r1, err1 := p.acquire("a")
	r2, err2 := p.acquire("a")
	_, err3 := p.acquire("a")
	if err1 != nil || err2 != nil || err3 == nil {
		t.Fatalf("errs %v %v %v", err1, err2, err3)
	}
	if st := toStatus(nil, "", "", err3); st.Code() != codes.ResourceExhausted || retryAfterOf(st) != time.Second || rowOfStatus(st).status != 429 {
		t.Errorf("full: %v", st)
	}
	if _, err := p.acquire("b"); err != nil {
		t.Errorf("another client: %v", err)
	}
	r1()
	r1() // a second release is a no-op
	if _, err := p.acquire("a"); err != nil {
		t.Errorf("after release: %v", err)
	}
	if _, err := p.acquire("a"); err == nil {
		t.Errorf("double release freed two slots")
	}
	r2()
}
