package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/ledgerfeed/ledgerfeed/gen/openapiv2"
)

// GET /openapi.json answers an OpenAPI 3.0 document of the whole REST
// surface: the gateway's routes, public and admin, and the plain HTTP
// handlers (token endpoints, JWKS, the 410 of /report/v1/ledgertransactions,
// health, this document). It needs no token.
//
// Source: gen/openapiv2, the Swagger 2.0 file protoc-gen-openapiv2 writes
// from proto/ (so it cannot drift from the gateway's routes), converted to
// OpenAPI 3 with kin-openapi's openapi2conv once, on the first request, and
// then amended where the generator cannot say what the wire is:
//   - int64 fields are JSON numbers on our wire (jsonwire.go), never strings:
//     any schema typed {string, int64|uint64} becomes an integer. The
//     generator's openapi.yaml already types the known ones as integers;
//     this catches any it misses.
//   - error answers are application/problem+json, not application/json;
//   - {topic} is "funds" or "fees";
//   - 201, 202 and 204 answers, and the Vipps-Feed-Page-Size header;
//   - the bearer token is an HTTP bearer scheme (JWT), not an API key.
//
// Swagger 2.0 was not served as is: it cannot say nullable or give an
// answer two media types, and the plain handlers are outside the protos.
// The tests hold the document to the wire: every answer the suite gets on a
// documented path is validated against it (checkOwnWire, wirecheck_test.go).

// openAPIDoc builds the document once; the bytes are shared by every request.
var openAPIDoc = sync.OnceValues(func() ([]byte, error) { return buildOpenAPI(openapiv2.JSON) })

// handleOpenAPI serves the OpenAPI 3 document.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := openAPIDoc()
	if err != nil {
		s.log.Error("openapi.json", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(doc)
}

// buildOpenAPI converts the Swagger 2.0 document swagger to OpenAPI 3 with
// ledgerfeed's amendments, as indented JSON.
func buildOpenAPI(swagger []byte) ([]byte, error) {
	var doc2 openapi2.T
	if err := json.Unmarshal(swagger, &doc2); err != nil {
		return nil, fmt.Errorf("openapi: parse swagger: %w", err)
	}
	doc, err := openapi2conv.ToV3(&doc2)
	if err != nil {
		return nil, fmt.Errorf("openapi: convert to v3: %w", err)
	}
	amendOpenAPI(doc)
	return json.MarshalIndent(doc, "", "  ")
}

const (
	mediaJSON    = "application/json"
	mediaProblem = "application/problem+json"
)

func amendOpenAPI(doc *openapi3.T) {
	if doc.Components == nil {
		doc.Components = &openapi3.Components{}
	}
	c := doc.Components
	if c.Schemas == nil {
		c.Schemas = openapi3.Schemas{}
	}
	if c.SecuritySchemes == nil {
		c.SecuritySchemes = openapi3.SecuritySchemes{}
	}
	c.SecuritySchemes["bearer"] = &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{
		Type:         "http",
		Scheme:       "bearer",
		BearerFormat: "JWT",
		Description:  "A token from POST /accesstoken/get, POST /oauth/token or POST /miami/v1/token.",
	}}
	doc.Security = openapi3.SecurityRequirements{{"bearer": []string{}}}

	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, p := range op.Parameters {
				if p.Value != nil && p.Value.In == openapi3.ParameterInPath && p.Value.Name == "topic" && p.Value.Schema != nil && p.Value.Schema.Value != nil {
					p.Value.Schema.Value.Enum = []any{"funds", "fees"}
				}
			}
			if op.Responses == nil {
				continue
			}
			for code, rr := range op.Responses.Map() {
				if code == "default" || code[0] == '4' || code[0] == '5' {
					problemContent(rr)
				}
			}
		}
	}
	successStatuses(doc)
	pageSizeHeader(doc)
	addPlainHTTP(doc)

	seen := map[*openapi3.Schema]bool{}
	for _, s := range c.Schemas {
		int64AsInteger(s, seen)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, p := range op.Parameters {
				if p.Value != nil {
					int64AsInteger(p.Value.Schema, seen)
				}
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for _, mt := range op.RequestBody.Value.Content {
					int64AsInteger(mt.Schema, seen)
				}
			}
			if op.Responses != nil {
				for _, rr := range op.Responses.Map() {
					if rr.Value != nil {
						for _, mt := range rr.Value.Content {
							int64AsInteger(mt.Schema, seen)
						}
					}
				}
			}
		}
	}
}

// createdStatuses lists, by operationId, the calls whose success is not a
// 200, as gateway.go's successStatus answers them.
var createdStatuses = map[string][]int{
	"AdminService_PutLedger":            {200, 201},
	"AdminService_PutReportSchedule":    {200, 201},
	"AdminService_CreateClient":         {201},
	"ReportService_RequestReportFile":   {202},
	"AdminService_DeleteClient":         {204},
	"AdminService_DeleteReportSchedule": {204},
}

// successStatuses documents the 201, 202 and 204 answers where the
// generator wrote 200 (gateway.go sets them; the protos cannot say).
func successStatuses(doc *openapi3.T) {
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			codes, found := createdStatuses[op.OperationID]
			if !found || op.Responses == nil {
				continue
			}
			ok := op.Responses.Status(http.StatusOK)
			if ok == nil || ok.Value == nil {
				continue
			}
			op.Responses.Delete("200")
			for _, code := range codes {
				r := *ok.Value
				switch code {
				case http.StatusCreated:
					r.Description = openapi3.Ptr("Created.")
				case http.StatusAccepted:
					r.Description = openapi3.Ptr("Accepted: the job runs in the background.")
				case http.StatusNoContent:
					r.Description = openapi3.Ptr("Deleted.")
					r.Content = nil
				}
				op.Responses.Set(fmt.Sprint(code), &openapi3.ResponseRef{Value: &r})
			}
		}
	}
}

// pageSizeHeader documents the Vipps-Feed-Page-Size header of the feed and
// date report answers (reportapi.go sends it; the protos cannot say).
func pageSizeHeader(doc *openapi3.T) {
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.OperationID != "ReportService_GetFeed" && op.OperationID != "ReportService_GetDateReport" {
				continue
			}
			ok := op.Responses.Status(http.StatusOK)
			if ok == nil || ok.Value == nil {
				continue
			}
			if ok.Value.Headers == nil {
				ok.Value.Headers = openapi3.Headers{}
			}
			ok.Value.Headers["Vipps-Feed-Page-Size"] = &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{
				Description: "The page size in force: pageSize, else 1000.",
				Required:    true,
				Schema:      openapi3.NewSchemaRef("", openapi3.NewIntegerSchema().WithMin(1).WithMax(1000)),
			}}}
		}
	}
}

// problemContent serves a response's application/json body as
// application/problem+json instead.
func problemContent(rr *openapi3.ResponseRef) {
	if rr == nil || rr.Value == nil || rr.Ref != "" {
		return
	}
	if mt, ok := rr.Value.Content[mediaJSON]; ok {
		delete(rr.Value.Content, mediaJSON)
		rr.Value.Content[mediaProblem] = mt
	}
}

// int64AsInteger turns every {type: string, format: int64|uint64} schema
// reachable from s into {type: integer}, keeping the format: ledgerfeed
// writes 64-bit integers as JSON numbers.
func int64AsInteger(s *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if s == nil || s.Value == nil || seen[s.Value] {
		return
	}
	v := s.Value
	seen[v] = true
	if v.Type != nil && v.Type.Is(openapi3.TypeString) && (v.Format == "int64" || v.Format == "uint64") {
		v.Type = &openapi3.Types{openapi3.TypeInteger}
	}
	for _, p := range v.Properties {
		int64AsInteger(p, seen)
	}
	int64AsInteger(v.Items, seen)
	int64AsInteger(v.AdditionalProperties.Schema, seen)
	int64AsInteger(v.Not, seen)
	for _, l := range []openapi3.SchemaRefs{v.AllOf, v.AnyOf, v.OneOf} {
		for _, x := range l {
			int64AsInteger(x, seen)
		}
	}
}

// addPlainHTTP describes the handlers outside the gateway (token.go,
// http.go, this file).
func addPlainHTTP(doc *openapi3.T) {
	c := doc.Components
	str := func(desc string) *openapi3.SchemaRef {
		return openapi3.NewSchemaRef("", &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeString}, Description: desc})
	}
	i64 := func(desc string) *openapi3.SchemaRef {
		return openapi3.NewSchemaRef("", &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeInteger}, Format: "int64", Description: desc})
	}
	object := func(desc string, required []string, props openapi3.Schemas) *openapi3.SchemaRef {
		return openapi3.NewSchemaRef("", &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeObject}, Description: desc, Required: required, Properties: props})
	}
	c.Schemas["AccessTokenGetResponse"] = object("The token answer of POST /accesstoken/get, as Vipps sends it.",
		[]string{"token_type", "expires_in", "access_token"}, openapi3.Schemas{
			"token_type":     str(`Always "Bearer".`),
			"expires_in":     i64("Lifetime of the token in seconds."),
			"ext_expires_in": i64("Same as expires_in."),
			"expires_on":     str("Expiry as Unix seconds, a decimal string."),
			"not_before":     str("Start of validity as Unix seconds, a decimal string."),
			"resource":       str("The tokens' audience."),
			"access_token":   str("The JWT."),
		})
	c.Schemas["OAuthTokenResponse"] = object("RFC 6749 §5.1 token answer.",
		[]string{"access_token", "token_type", "expires_in"}, openapi3.Schemas{
			"access_token": str("The JWT."),
			"token_type":   str(`Always "Bearer".`),
			"expires_in":   i64("Lifetime of the token in seconds."),
			"scope":        str("Space-separated scopes granted."),
		})
	c.Schemas["OAuthError"] = object("RFC 6749 §5.2 error answer.", []string{"error"}, openapi3.Schemas{
		"error":             str("invalid_request, invalid_client, unsupported_grant_type, …"),
		"error_description": str("What went wrong."),
		"contextId":         str("Request id, also sent as a response header."),
	})

	problemRef := "#/components/schemas/v1Problem"
	if _, ok := c.Schemas["v1Problem"]; !ok {
		problemRef = ""
	}
	jsonAnswer := func(desc, media, ref string) *openapi3.ResponseRef {
		r := openapi3.NewResponse().WithDescription(desc)
		if ref != "" {
			r.Content = openapi3.Content{media: openapi3.NewMediaType().WithSchemaRef(openapi3.NewSchemaRef(ref, nil))}
		}
		return &openapi3.ResponseRef{Value: r}
	}
	textAnswer := func(desc string) *openapi3.ResponseRef {
		r := openapi3.NewResponse().WithDescription(desc)
		r.Content = openapi3.NewContentWithSchema(openapi3.NewStringSchema(), []string{"text/plain"})
		return &openapi3.ResponseRef{Value: r}
	}
	header := func(name, desc string, required bool) *openapi3.ParameterRef {
		p := openapi3.NewHeaderParameter(name).WithDescription(desc).WithSchema(openapi3.NewStringSchema())
		p.Required = required
		return &openapi3.ParameterRef{Value: p}
	}
	noAuth := &openapi3.SecurityRequirements{}
	tag := []string{"HTTP"}

	accessToken := &openapi3.Operation{
		OperationID: "AccessTokenGet",
		Tags:        tag,
		Summary:     "Issues a token (the Vipps access token endpoint): credentials in headers, empty body.",
		Security:    noAuth,
		Parameters: openapi3.Parameters{
			header("client_id", "Client id.", true),
			header("client_secret", "Client secret.", true),
			header("Ocp-Apim-Subscription-Key", "Accepted and ignored.", false),
			header("Merchant-Serial-Number", "Accepted and ignored.", false),
		},
		Responses: openapi3.NewResponses(
			openapi3.WithStatus(200, jsonAnswer("The token.", mediaJSON, "#/components/schemas/AccessTokenGetResponse")),
			openapi3.WithName("default", jsonAnswer("Error (application/problem+json, RFC 9457).", mediaProblem, problemRef).Value),
		),
	}
	form := openapi3.NewObjectSchema().
		WithProperty("grant_type", openapi3.NewStringSchema().WithEnum("client_credentials")).
		WithProperty("client_id", openapi3.NewStringSchema()).
		WithProperty("client_secret", openapi3.NewStringSchema()).
		WithProperty("scope", openapi3.NewStringSchema())
	form.Required = []string{"grant_type"}
	oauth := func(id, summary string) *openapi3.Operation {
		return &openapi3.Operation{
			OperationID: id,
			Tags:        tag,
			Summary:     summary,
			Security:    noAuth,
			Parameters: openapi3.Parameters{
				header("Authorization", "HTTP Basic with client id and secret (or send them in the form).", false),
			},
			RequestBody: &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).
				WithContent(openapi3.NewContentWithSchema(form, []string{"application/x-www-form-urlencoded"}))},
			Responses: openapi3.NewResponses(
				openapi3.WithStatus(200, jsonAnswer("The token.", mediaJSON, "#/components/schemas/OAuthTokenResponse")),
				openapi3.WithName("default", jsonAnswer("OAuth 2.0 error (RFC 6749 §5.2).", mediaJSON, "#/components/schemas/OAuthError").Value),
			),
		}
	}
	doc.Paths.Set("/accesstoken/get", &openapi3.PathItem{Post: accessToken})
	doc.Paths.Set("/oauth/token", &openapi3.PathItem{Post: oauth("OAuthToken",
		"Issues a token: OAuth 2.0 client credentials (RFC 6749 §4.4).")})
	doc.Paths.Set("/miami/v1/token", &openapi3.PathItem{Post: oauth("MiamiToken",
		"Issues a token: the Vipps partner token path, same as POST /oauth/token.")})
	doc.Paths.Set("/report/v1/ledgertransactions", &openapi3.PathItem{Get: &openapi3.Operation{
		OperationID: "LedgerTransactions",
		Tags:        tag,
		Summary:     "Removed upstream in 2024: always 410 Gone, naming the v2 endpoints.",
		Deprecated:  true,
		Responses: openapi3.NewResponses(
			openapi3.WithStatus(410, jsonAnswer("Gone (application/problem+json).", mediaProblem, problemRef)),
		),
	}})
	binary := func(desc string) *openapi3.ResponseRef {
		r := openapi3.NewResponse().WithDescription(desc)
		r.Content = openapi3.Content{}
		for _, mt := range []string{"text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"} {
			r.Content[mt] = openapi3.NewMediaType().WithSchema(openapi3.NewStringSchema().WithFormat("binary"))
		}
		return &openapi3.ResponseRef{Value: r}
	}
	doc.Paths.Set(downloadPath+"{token}", &openapi3.PathItem{Get: &openapi3.Operation{
		OperationID: "DownloadReportFile",
		Tags:        tag,
		Summary: "Downloads a finished report file: the URL of its downloadAction. Needs the bearer token " +
			"of the client that requested the file; the link expires (default 15 minutes). HTTP range " +
			"requests are served. Rate-limited per client (default 25 per hour); every attempt is audit-logged.",
		Parameters: openapi3.Parameters{{Value: openapi3.NewPathParameter("token").
			WithDescription("The random download token of the link (not the file id).").
			WithSchema(openapi3.NewStringSchema())}},
		Responses: openapi3.NewResponses(
			openapi3.WithStatus(200, binary("The file, with Content-Disposition naming it.")),
			openapi3.WithStatus(206, binary("The requested byte range.")),
			openapi3.WithStatus(401, jsonAnswer("No valid bearer token (application/problem+json).", mediaProblem, problemRef)),
			openapi3.WithStatus(404, jsonAnswer("Unknown, expired or another client's link (application/problem+json).", mediaProblem, problemRef)),
			openapi3.WithStatus(429, jsonAnswer("Download limit reached; see Retry-After (application/problem+json).", mediaProblem, problemRef)),
		),
	}})
	doc.Paths.Set("/.well-known/jwks.json", &openapi3.PathItem{Get: &openapi3.Operation{
		OperationID: "JWKS",
		Tags:        tag,
		Summary:     "The public keys that verify ledgerfeed's tokens (RFC 7517).",
		Security:    noAuth,
		Responses: openapi3.NewResponses(openapi3.WithStatus(200, &openapi3.ResponseRef{Value: openapi3.NewResponse().
			WithDescription("A JWK set.").WithJSONSchema(openapi3.NewObjectSchema().
			WithProperty("keys", openapi3.NewArraySchema().WithItems(openapi3.NewObjectSchema())))})),
	}})
	doc.Paths.Set("/openapi.json", &openapi3.PathItem{Get: &openapi3.Operation{
		OperationID: "OpenAPI",
		Tags:        tag,
		Summary:     "This document.",
		Security:    noAuth,
		Responses: openapi3.NewResponses(openapi3.WithStatus(200, &openapi3.ResponseRef{Value: openapi3.NewResponse().
			WithDescription("OpenAPI 3.0 document.").WithJSONSchema(openapi3.NewObjectSchema())})),
	}})
	doc.Paths.Set("/healthz", &openapi3.PathItem{Get: &openapi3.Operation{
		OperationID: "Healthz", Tags: tag, Summary: "Liveness.", Security: noAuth,
		Responses: openapi3.NewResponses(openapi3.WithStatus(200, textAnswer("ok"))),
	}})
	doc.Paths.Set("/readyz", &openapi3.PathItem{Get: &openapi3.Operation{
		OperationID: "Readyz", Tags: tag, Summary: "Readiness: 503 while the store is closed or the server drains.", Security: noAuth,
		Responses: openapi3.NewResponses(
			openapi3.WithStatus(200, textAnswer("ready")),
			openapi3.WithStatus(503, textAnswer("not ready")),
		),
	}})
	if !slices.ContainsFunc(doc.Tags, func(t *openapi3.Tag) bool { return t.Name == "HTTP" }) {
		doc.Tags = append(doc.Tags, &openapi3.Tag{Name: "HTTP", Description: "Plain HTTP handlers outside the gRPC services."})
	}
}
