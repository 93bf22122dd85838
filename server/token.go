package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ledgerfeed/ledgerfeed/auth"
	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// The token endpoints are plain HTTP handlers behind the REST middleware
// (request id, a 64 KiB body cap). Each request first takes a token from the
// buckets of its client id and of its remote address (429 with Retry-After
// beyond), so secrets cannot be brute-forced; then the credentials are
// checked (an unknown client id and a wrong secret cost the same and answer
// byte for byte the same, but for the contextId), and the outcome is
// audited ("token.issue", ok or denied). Rate-limited requests are not
// audited (they would let a flood fill the log); they are counted in the
// metrics.
//
//	POST /accesstoken/get    Vipps: headers client_id, client_secret
//	                         (Ocp-Apim-Subscription-Key and
//	                         Merchant-Serial-Number ignored), empty body.
//	                         Errors are problem+json.
//	POST /oauth/token        RFC 6749 §4.4 client credentials: form
//	POST /miami/v1/token     grant_type=client_credentials, credentials by
//	                         HTTP Basic or form. Errors are RFC 6749 §5.2
//	                         JSON ({"error":"invalid_client",...}); a rate
//	                         limit or a server failure is problem+json.

// vippsToken is the answer of POST /accesstoken/get, as Vipps sends it:
// expires_on and not_before are strings of Unix seconds.
type vippsToken struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	ExpiresOn    string `json:"expires_on"`
	NotBefore    string `json:"not_before"`
	Resource     string `json:"resource"`
	AccessToken  string `json:"access_token"`
}

// oauthToken is the answer of the OAuth token endpoints (RFC 6749 §5.1).
type oauthToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// oauthError is an RFC 6749 §5.2 error answer, with the request id.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	ContextID   string `json:"contextId"`
}

func (s *Server) handleAccessTokenGet(w http.ResponseWriter, r *http.Request) {
	drain(r.Body)
	id, secret := r.Header.Get("client_id"), r.Header.Get("client_secret")
	if !s.allowTokenRequest(w, r, id) {
		return
	}
	if id == "" || secret == "" {
		s.auditToken(r, id, http.StatusBadRequest)
		s.httpError(w, r, &ledger.FieldError{Field: "client_id", Reason: "the client_id and client_secret headers are required"})
		return
	}
	tok, err := s.auth.IssueToken(r.Context(), id, secret)
	if err != nil {
		s.tokenFailed(w, r, id, err, nil)
		return
	}
	s.auditToken(r, id, http.StatusOK)
	writeTokenJSON(w, vippsToken{
		TokenType:    tok.TokenType,
		ExpiresIn:    tok.ExpiresIn,
		ExtExpiresIn: tok.ExpiresIn,
		ExpiresOn:    strconv.FormatInt(tok.ExpiresAt.Unix(), 10),
		NotBefore:    strconv.FormatInt(tok.NotBefore.Unix(), 10),
		Resource:     s.audience,
		AccessToken:  tok.AccessToken,
	})
}

func (s *Server) handleOAuthToken(w http.ResponseWriter, r *http.Request) {
	oauthFail := func(err error, code string) {
		s.writeOAuthError(w, r, err, code)
	}
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.httpError(w, r, tooLarge(mbe.Limit))
			return
		}
		oauthFail(&ledger.FieldError{Field: "body", Reason: "not a valid form"}, "invalid_request")
		return
	}
	form := r.PostForm
	basicID, basicSecret, hasBasic := r.BasicAuth()
	if hasBasic {
		// RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
		if v, err := url.QueryUnescape(basicID); err == nil {
			basicID = v
		}
		if v, err := url.QueryUnescape(basicSecret); err == nil {
			basicSecret = v
		}
	}
	id := basicID
	if !hasBasic {
		id = form.Get("client_id")
	}
	if !s.allowTokenRequest(w, r, id) {
		return
	}
	for k, v := range form {
		if len(v) > 1 {
			s.auditToken(r, id, http.StatusBadRequest)
			oauthFail(&ledger.FieldError{Field: k, Reason: "given more than once"}, "invalid_request")
			return
		}
	}
	switch gt := form.Get("grant_type"); {
	case gt == "":
		s.auditToken(r, id, http.StatusBadRequest)
		oauthFail(&ledger.FieldError{Field: "grant_type", Reason: "required: client_credentials (a form body, application/x-www-form-urlencoded)"}, "invalid_request")
		return
	case gt != "client_credentials":
		s.auditToken(r, id, http.StatusBadRequest)
		oauthFail(&ledger.FieldError{Field: "grant_type", Reason: "only client_credentials is supported"}, "unsupported_grant_type")
		return
	}
	secret := form.Get("client_secret")
	if hasBasic {
		if form.Has("client_secret") {
			s.auditToken(r, id, http.StatusBadRequest)
			oauthFail(&ledger.FieldError{Field: "client_secret", Reason: "use one client authentication method: HTTP Basic or the form"}, "invalid_request")
			return
		}
		secret = basicSecret
	}
	if id == "" || secret == "" {
		s.tokenFailed(w, r, id, fmt.Errorf("%w: client authentication required (HTTP Basic, or client_id and client_secret in the form)", auth.ErrUnauthenticated), oauthFail)
		return
	}
	tok, err := s.auth.IssueToken(r.Context(), id, secret)
	if err != nil {
		s.tokenFailed(w, r, id, err, oauthFail)
		return
	}
	s.auditToken(r, id, http.StatusOK)
	writeTokenJSON(w, oauthToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType, ExpiresIn: tok.ExpiresIn, Scope: tok.Scope})
}

// allowTokenRequest takes a token request from the rate limits, or answers
// 429 and returns false.
func (s *Server) allowTokenRequest(w http.ResponseWriter, r *http.Request, clientID string) bool {
	if err := s.auth.AllowTokenRequest(clientID, r.RemoteAddr); err != nil {
		s.httpError(w, r, err)
		return false
	}
	return true
}

// tokenFailed answers and audits a failed token request. oauthFail is nil
// for the Vipps endpoint (problem+json).
func (s *Server) tokenFailed(w http.ResponseWriter, r *http.Request, id string, err error, oauthFail func(error, string)) {
	row, known := rowOfError(err)
	if !known || row.status != http.StatusUnauthorized {
		s.auditToken(r, id, http.StatusInternalServerError)
		s.httpError(w, r, err)
		return
	}
	s.auditToken(r, id, row.status)
	if oauthFail == nil {
		s.httpError(w, r, err)
		return
	}
	oauthFail(err, "invalid_client")
}

// writeOAuthError writes an RFC 6749 §5.2 error with the status of err's
// row: 401 (with WWW-Authenticate: Basic) for invalid_client, else 400.
func (s *Server) writeOAuthError(w http.ResponseWriter, r *http.Request, err error, code string) {
	row := rowFor(err)
	if row.status == 0 {
		row = rowFor(ledger.ErrInvalid)
	}
	h := w.Header()
	if row.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="ledgerfeed", charset="UTF-8"`)
	}
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	b := marshalNoEscape(oauthError{Error: code, Description: detailOf(err), ContextID: contextIDOf(r, w)})
	w.WriteHeader(row.status)
	w.Write(b)
}

// auditToken audits a token request. The client id is the one claimed; one
// that is not a possible id at all is recorded as empty.
func (s *Server) auditToken(r *http.Request, claimedID string, httpStatus int) {
	if !saneRequestID(claimedID) || len(claimedID) > 64 {
		claimedID = ""
	}
	s.auth.Audit(ledger.AuditEvent{
		ClientID:  claimedID,
		Action:    "token.issue",
		Resource:  strings.TrimPrefix(r.URL.Path, "/"),
		Result:    auditResult(httpStatus),
		Status:    httpStatus,
		ContextID: contextIDOf(r, nil),
	})
}

func writeTokenJSON(w http.ResponseWriter, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.Write(marshalNoEscape(v))
}

// handleJWKS serves the public keys that verify our tokens (and date seals).
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	w.Write(s.auth.JWKS())
}

// handleLedgerTransactions answers the endpoint Vipps removed in 2024.
func (s *Server) handleLedgerTransactions(w http.ResponseWriter, r *http.Request) {
	s.httpError(w, r, &detailedError{kind: errGone, err: errors.New(
		"GET /report/v1/ledgertransactions was removed in 2024; use GET /report/v2/ledgers/{ledgerId}/{topic}/dates/{ledgerDate} " +
			"for a date's report or GET /report/v2/ledgers/{ledgerId}/{topic}/feed for the feed")})
}
