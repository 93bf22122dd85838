package server

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestOpenAPI_Served(t *testing.T) {
	e := newAPIEnv(t, nil, Limits{})
	r := e.do("GET", "/openapi.json", "", nil)
	if r.code != 200 {
		t.Fatalf("GET /openapi.json: %d %s", r.code, r.body)
	}
	if ct := r.hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatalf("kin-openapi cannot load the document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI 3: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q, want 3.x", doc.OpenAPI)
	}

	for path, methods := range map[string][]string{
		// public (Vipps-compatible and extensions)
		"/settlement/v1/ledgers":                                   {"GET"},
		"/report/v2/ledgers/{ledgerId}/{topic}/dates/{ledgerDate}": {"GET"},
		"/report/v2/ledgers/{ledgerId}/{topic}/feed":               {"GET"},
		"/report/v2/ledgers/{ledgerId}/dates":                      {"GET"},
		"/report/v2/ledgers/{ledgerId}/{topic}/entries":            {"GET"},
		"/report/v1/ledgertransactions":                            {"GET"},
		"/report/v2/files":                                         {"GET", "POST"},
		"/report/v2/files/{id}":                                    {"GET"},
		"/report/v2/downloads/{token}":                             {"GET"},
		"/accesstoken/get":                                         {"POST"},
		"/oauth/token":                                             {"POST"},
		"/miami/v1/token":                                          {"POST"},
		"/.well-known/jwks.json":                                   {"GET"},
		// admin
		"/admin/v1/ledgers/{ledgerId}":                          {"PUT"},
		"/admin/v1/ledgers/{ledgerId}/{topic}/entries":          {"POST"},
		"/admin/v1/ledgers/{ledgerId}/dates/{ledgerDate}/close": {"POST"},
		"/admin/v1/clients":                                     {"POST"},
		"/admin/v1/clients/{clientId}":                          {"PUT", "DELETE"},
		"/admin/v1/clients/{clientId}/secret":                   {"POST"},
		"/admin/v1/ledgers/{ledgerId}/gdpr-erasures":            {"POST"},
		"/admin/v1/audit":                                       {"GET"},
	} {
		item := doc.Paths.Value(path)
		if item == nil {
			t.Errorf("no path %s", path)
			continue
		}
		for _, m := range methods {
			if item.GetOperation(m) == nil {
				t.Errorf("no %s %s", m, path)
			}
		}
	}

	wantInteger := map[string][]string{
		"v1Entry":                 {"amount", "balanceBefore", "balanceAfter"},
		"v1NewEntry":              {"amount"},
		"v1AppendEntriesResponse": {"firstSequence", "lastSequence"},
		"v1DateTopicSummary":      {"entryCount", "openingBalance", "closingBalance", "firstSequence", "lastSequence"},
	}
	for schema, props := range wantInteger {
		s := doc.Components.Schemas[schema]
		if s == nil || s.Value == nil {
			t.Errorf("no schema %s", schema)
			continue
		}
		for _, p := range props {
			ps := s.Value.Properties[p]
			if ps == nil || ps.Value == nil {
				t.Errorf("%s has no %s", schema, p)
				continue
			}
			if !ps.Value.Type.Is(openapi3.TypeInteger) || ps.Value.Format != "int64" {
				t.Errorf("%s.%s is %v %q, want integer int64", schema, p, ps.Value.Type, ps.Value.Format)
			}
		}
	}
	if rh := doc.Components.Schemas["v1Entry"].Value.Properties["recipientHandle"].Value; !rh.Nullable {
		t.Error("v1Entry.recipientHandle is not nullable")
	}

	// No 64-bit integer anywhere is typed as a string.
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if f, _ := x["format"].(string); (f == "int64" || f == "uint64") && x["type"] != "integer" {
				t.Errorf("%s: format %s typed %v", path, f, x["type"])
			}
			for k, c := range x {
				walk(path+"/"+k, c)
			}
		case []any:
			for _, c := range x {
				walk(path+"/[]", c)
			}
		}
	}
	var raw any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	walk("", raw)

	// Errors are problem+json; creations answer 201.
	feed := doc.Paths.Value("/report/v2/ledgers/{ledgerId}/{topic}/feed").Get
	if d := feed.Responses.Default(); d == nil || d.Value.Content.Get("application/problem+json") == nil {
		t.Error("feed: default response is not application/problem+json")
	}
	if h := feed.Responses.Status(200).Value.Headers["Vipps-Feed-Page-Size"]; h == nil || !h.Value.Required {
		t.Error("feed: 200 does not document the Vipps-Feed-Page-Size header")
	}
	if create := doc.Paths.Value("/admin/v1/clients").Post; create.Responses.Status(201) == nil || create.Responses.Status(200) != nil {
		t.Errorf("POST /admin/v1/clients: responses %v, want 201 and no 200", create.Responses.Map())
	}
}

// A 64-bit integer the generator types as a string is served as an integer.
func TestOpenAPI_Int64AsInteger(t *testing.T) {
	swagger := `{"swagger":"2.0","info":{"title":"t","version":"1"},"paths":{
	  "/x/{topic}":{"get":{"operationId":"X","parameters":[
	    {"name":"topic","in":"path","required":true,"type":"string"},
	    {"name":"n","in":"query","type":"string","format":"int64"}],
	  "responses":{"200":{"description":"ok","schema":{"$ref":"#/definitions/X"}},
	    "default":{"description":"error","schema":{"$ref":"#/definitions/X"}}}}}},
	  "definitions":{"X":{"type":"object","properties":{
	    "a":{"type":"string","format":"int64"},
	    "b":{"type":"array","items":{"type":"string","format":"uint64"}},
	    "c":{"type":"object","properties":{"d":{"type":"string","format":"int64"}}},
	    "e":{"type":"string"}}}}}`
	b, err := buildOpenAPI([]byte(swagger))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatal(err)
	}
	x := doc.Components.Schemas["X"].Value
	for name, s := range map[string]*openapi3.Schema{
		"a":   x.Properties["a"].Value,
		"b[]": x.Properties["b"].Value.Items.Value,
		"c.d": x.Properties["c"].Value.Properties["d"].Value,
		"n":   doc.Paths.Value("/x/{topic}").Get.Parameters.GetByInAndName("query", "n").Schema.Value,
	} {
		if !s.Type.Is(openapi3.TypeInteger) {
			t.Errorf("%s typed %v, want integer", name, s.Type)
		}
	}
	if !x.Properties["e"].Value.Type.Is(openapi3.TypeString) {
		t.Error("a plain string changed type")
	}
	op := doc.Paths.Value("/x/{topic}").Get
	if got := op.Parameters.GetByInAndName("path", "topic").Schema.Value.Enum; len(got) != 2 {
		t.Errorf("topic enum %v, want funds and fees", got)
	}
	if op.Responses.Default().Value.Content.Get("application/problem+json") == nil {
		t.Error("default response not served as application/problem+json")
	}
}
