package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// fakeAdmin is an httptest server that mimics the documented admin REST API
// (DESIGN.md "Admin / ingest API"), for the CLI's unit tests: tokens, clients,
// ledgers, ingest with entryId idempotency and ledger dates, and the audit
// log. It is not the real server; the end-to-end tests use that.
type fakeAdmin struct {
	*httptest.Server
	t *testing.T

	mu       sync.Mutex
	secrets  map[string]string // client id → secret
	clients  map[string]*apiClient
	tokens   map[string]string // token → client id
	ledgers  map[string]*fakeLedger
	audit    []auditEvent
	batches  []fakeBatch
	tokenN   int
	requests int
	// fail answers the next requests whose "METHOD path" has this prefix
	// with the given statuses, in order.
	fail map[string][]int
}

type fakeLedger struct {
	cal  ledger.Calendar
	open ledger.Date
	logs map[string][]fakeEntry // topic → entries in sequence order
	ids  map[string]int         // topic/entryId → index in logs[topic]
}

type fakeEntry struct {
	importEntry
	date ledger.Date // as the server dated it
}

type fakeBatch struct {
	ledger, topic string
	ids           []string
}

func newFakeAdmin(t *testing.T) *fakeAdmin {
	f := &fakeAdmin{
		t:       t,
		secrets: map[string]string{"admin": "admin-secret"},
		clients: map[string]*apiClient{"admin": {ClientID: "admin", Scopes: []string{"admin"}, Grants: []apiGrant{}, CreatedAt: "2026-01-01T00:00:00Z"}},
		tokens:  map[string]string{},
		ledgers: map[string]*fakeLedger{},
		fail:    map[string][]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", f.token)
	mux.HandleFunc("GET /admin/v1/ledgers/{id}", f.admin(f.getLedger))
	mux.HandleFunc("POST /admin/v1/ledgers/{id}/{topic}/entries", f.admin(f.appendEntries))
	mux.HandleFunc("POST /admin/v1/clients", f.admin(f.createClient))
	mux.HandleFunc("GET /admin/v1/clients", f.admin(f.listClients))
	mux.HandleFunc("GET /admin/v1/clients/{id}", f.admin(f.getClient))
	mux.HandleFunc("PUT /admin/v1/clients/{id}", f.admin(f.updateClient))
	mux.HandleFunc("DELETE /admin/v1/clients/{id}", f.admin(f.deleteClient))
	mux.HandleFunc("POST /admin/v1/clients/{id}/secret", f.admin(f.rotateSecret))
	mux.HandleFunc("GET /admin/v1/audit", f.admin(f.listAudit))
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests++
		for prefix, statuses := range f.fail {
			if len(statuses) > 0 && strings.HasPrefix(r.Method+" "+r.URL.Path, prefix) {
				f.fail[prefix] = statuses[1:]
				f.mu.Unlock()
				if statuses[0] == http.StatusTooManyRequests {
					w.Header().Set("Retry-After", "0")
				}
				writeProblem(w, statuses[0], "injected failure")
				return
			}
		}
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// addLedger makes a ledger with a zone and cutoff.
func (f *fakeAdmin) addLedger(id, zone, cutoff string) {
	cal, err := ledger.NewCalendar(zone, cutoff)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ledgers[id] = &fakeLedger{cal: cal, logs: map[string][]fakeEntry{}, ids: map[string]int{}}
}

// failNext makes the next requests starting with "METHOD /path" answer
// these statuses.
func (f *fakeAdmin) failNext(prefix string, statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[prefix] = statuses
}

func (f *fakeAdmin) entries(ledgerID, topic string) []fakeEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ledgers[ledgerID].logs[topic])
}

func (f *fakeAdmin) posted() []fakeBatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

// env points the commands at the fake, as the admin client.
func (f *fakeAdmin) env(t *testing.T) {
	t.Setenv("LEDGERFEED_SERVER", f.URL)
	t.Setenv("LEDGERFEED_CLIENT_ID", "admin")
	t.Setenv("LEDGERFEED_CLIENT_SECRET", "admin-secret")
	t.Setenv("LEDGERFEED_CREDENTIALS", "")
	t.Setenv("LEDGERFEED_DATA", t.TempDir())
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(problem{
		Type: "about:blank", Title: http.StatusText(status), Status: status,
		Detail: detail, ContextID: "ctx-" + strconv.Itoa(status), ErrorCode: 10001,
	})
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeAdmin) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.FormValue("grant_type") != "client_credentials" {
		writeProblem(w, 400, "grant_type must be client_credentials")
		return
	}
	if !ok || f.secrets[id] == "" || f.secrets[id] != secret {
		f.audit = append(f.audit, auditEvent{Time: time.Now().UTC().Format(time.RFC3339Nano), ClientID: id, Action: "token.issue", Result: "denied", Status: 401})
		writeProblem(w, 401, "invalid client credentials")
		return
	}
	f.tokenN++
	tok := fmt.Sprintf("tok-%d", f.tokenN)
	f.tokens[tok] = id
	f.audit = append(f.audit, auditEvent{Time: time.Now().UTC().Format(time.RFC3339Nano), ClientID: id, Action: "token.issue", Result: "ok", Status: 200})
	writeJSONStatus(w, 200, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 300})
}

// admin checks the bearer token and the admin scope, then runs h with the
// lock held.
func (f *fakeAdmin) admin(h func(w http.ResponseWriter, r *http.Request, who string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		who := f.tokens[tok]
		if !ok || who == "" || f.clients[who] == nil {
			writeProblem(w, 401, "missing or invalid token")
			return
		}
		if !slices.Contains(f.clients[who].Scopes, "admin") {
			writeProblem(w, 403, "the admin scope is required")
			return
		}
		h(w, r, who)
	}
}

func (f *fakeAdmin) record(who, action, resource string, status int) {
	result := "ok"
	if status >= 400 {
		result = "error"
	}
	f.audit = append(f.audit, auditEvent{
		Time: time.Now().UTC().Format(time.RFC3339Nano), ClientID: who, Action: action,
		Resource: resource, Result: result, Status: flexInt(status), ContextID: fmt.Sprintf("c%d", len(f.audit)+1),
	})
}

func (f *fakeAdmin) getLedger(w http.ResponseWriter, r *http.Request, who string) {
	l := f.ledgers[r.PathValue("id")]
	if l == nil {
		writeProblem(w, 404, "ledger not found")
		return
	}
	writeJSONStatus(w, 200, apiLedger{LedgerID: r.PathValue("id"), TimeZone: l.cal.Location().String(), Cutoff: l.cal.Cutoff(), OpenLedgerDate: l.open.String()})
}

func (f *fakeAdmin) appendEntries(w http.ResponseWriter, r *http.Request, who string) {
	id, topic := r.PathValue("id"), r.PathValue("topic")
	l := f.ledgers[id]
	if l == nil {
		writeProblem(w, 404, "ledger not found")
		return
	}
	if topic != "funds" && topic != "fees" {
		writeProblem(w, 404, "no such topic")
		return
	}
	var in struct {
		Entries []importEntry `json:"entries"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeProblem(w, 400, err.Error())
		return
	}
	if len(in.Entries) == 0 || len(in.Entries) > 10000 {
		writeProblem(w, 400, "entries: 1 to 10000")
		return
	}
	// Plan first: all or nothing.
	open := l.open
	var add []fakeEntry
	var res appendResult
	seen := map[string]bool{}
	for i, e := range in.Entries {
		if e.Amount == 666 {
			writeProblem(w, 400, fmt.Sprintf("entries[%d].amount: the devil's number", i))
			return
		}
		if j, ok := l.ids[topic+"/"+e.EntryID]; ok {
			if !reflect.DeepEqual(l.logs[topic][j].importEntry, e) {
				writeProblem(w, 409, fmt.Sprintf("entries[%d].entryId: %q was posted before with other content", i, e.EntryID))
				return
			}
			res.Duplicates++
			continue
		}
		if seen[e.EntryID] {
			res.Duplicates++
			continue
		}
		seen[e.EntryID] = true
		var d ledger.Date
		if e.LedgerDate != "" {
			d, _ = ledger.ParseDate(e.LedgerDate)
			if d < open {
				writeProblem(w, 409, fmt.Sprintf("entries[%d].ledgerDate: %s is closed", i, d))
				return
			}
		} else {
			t, err := time.Parse(time.RFC3339Nano, e.Time)
			if err != nil {
				writeProblem(w, 400, fmt.Sprintf("entries[%d].time: %v", i, err))
				return
			}
			d = max(open, l.cal.DateOf(t))
		}
		open = max(open, d)
		if topic == "funds" && (e.EntryType == "scheduled-for-payout" || e.EntryType == "payout-scheduled") {
			open = d + 1
		}
		add = append(add, fakeEntry{importEntry: e, date: d})
		res.Appended++
	}
	b := fakeBatch{ledger: id, topic: topic}
	for _, e := range in.Entries {
		b.ids = append(b.ids, e.EntryID)
	}
	f.batches = append(f.batches, b)
	for _, e := range add {
		l.ids[topic+"/"+e.EntryID] = len(l.logs[topic])
		l.logs[topic] = append(l.logs[topic], e)
	}
	l.open = open
	if res.Appended > 0 {
		n := len(l.logs[topic])
		res.FirstSequence, res.LastSequence = flexInt(n-int(res.Appended)+1), flexInt(n)
	}
	f.record(who, "entries.append", "ledgers/"+id+"/"+topic, 200)
	writeJSONStatus(w, 200, res)
}

func (f *fakeAdmin) createClient(w http.ResponseWriter, r *http.Request, who string) {
	var c apiClient
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.ClientID == "" || c.ClientSecret != "" {
		writeProblem(w, 400, fmt.Sprintf("bad client: %v", err))
		return
	}
	if f.clients[c.ClientID] != nil {
		f.record(who, "client.create", "clients/"+c.ClientID, 409)
		writeProblem(w, 409, "client "+c.ClientID+" already exists")
		return
	}
	c.CreatedAt = "2026-03-01T09:00:00Z"
	f.clients[c.ClientID] = &c
	f.secrets[c.ClientID] = "secret-of-" + c.ClientID
	f.record(who, "client.create", "clients/"+c.ClientID, 201)
	out := c
	out.ClientSecret = f.secrets[c.ClientID]
	writeJSONStatus(w, 201, out)
}

func (f *fakeAdmin) getClient(w http.ResponseWriter, r *http.Request, who string) {
	c := f.clients[r.PathValue("id")]
	if c == nil {
		writeProblem(w, 404, "client not found")
		return
	}
	writeJSONStatus(w, 200, c)
}

func (f *fakeAdmin) updateClient(w http.ResponseWriter, r *http.Request, who string) {
	id := r.PathValue("id")
	c := f.clients[id]
	if c == nil {
		writeProblem(w, 404, "client not found")
		return
	}
	var in struct {
		Scopes []string   `json:"scopes"`
		Grants []apiGrant `json:"grants"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeProblem(w, 400, err.Error())
		return
	}
	c.Scopes, c.Grants = in.Scopes, in.Grants
	f.record(who, "client.update", "clients/"+id, 200)
	writeJSONStatus(w, 200, c)
}

func (f *fakeAdmin) deleteClient(w http.ResponseWriter, r *http.Request, who string) {
	id := r.PathValue("id")
	if f.clients[id] == nil {
		writeProblem(w, 404, "client not found")
		return
	}
	delete(f.clients, id)
	delete(f.secrets, id)
	f.record(who, "client.delete", "clients/"+id, 200)
	writeJSONStatus(w, 200, struct{}{})
}

func (f *fakeAdmin) rotateSecret(w http.ResponseWriter, r *http.Request, who string) {
	id := r.PathValue("id")
	if f.clients[id] == nil {
		writeProblem(w, 404, "client not found")
		return
	}
	f.secrets[id] = f.secrets[id] + "-rotated"
	f.record(who, "client.rotate_secret", "clients/"+id, 200)
	writeJSONStatus(w, 200, map[string]string{"clientId": id, "clientSecret": f.secrets[id]})
}

// listClients pages by client id: the cursor is the last id of the page.
func (f *fakeAdmin) listClients(w http.ResponseWriter, r *http.Request, who string) {
	size, _ := strconv.Atoi(r.URL.Query().Get("pageSize"))
	size = min(cmp.Or(size, 100), 2) // tiny pages, so that the CLI must follow the cursor
	after := r.URL.Query().Get("cursor")
	var ids []string
	for id := range f.clients {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	page := struct {
		Items  []apiClient `json:"items"`
		Cursor string      `json:"cursor"`
	}{Items: []apiClient{}}
	for _, id := range ids[:min(size, len(ids))] {
		page.Items = append(page.Items, *f.clients[id])
	}
	if len(ids) > size {
		page.Cursor = ids[size-1]
	}
	writeJSONStatus(w, 200, page)
}

// listAudit pages by index: the cursor is "a" + the index after the page,
// always set.
func (f *fakeAdmin) listAudit(w http.ResponseWriter, r *http.Request, who string) {
	q := r.URL.Query()
	from := 0
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "a"))
		if err != nil {
			writeProblem(w, 400, "bad cursor")
			return
		}
		from = n
	}
	size, _ := strconv.Atoi(q.Get("pageSize"))
	size = cmp.Or(size, 100)
	page := auditPage{Items: []auditEvent{}}
	i := from
	for ; i < len(f.audit) && len(page.Items) < size; i++ {
		e := f.audit[i]
		if (q.Get("clientId") == "" || e.ClientID == q.Get("clientId")) && (q.Get("action") == "" || e.Action == q.Get("action")) {
			page.Items = append(page.Items, e)
		}
	}
	page.Cursor = "a" + strconv.Itoa(i)
	writeJSONStatus(w, 200, page)
}
