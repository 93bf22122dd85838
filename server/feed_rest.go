package server

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

// feedPattern is the REST route of the feed, the API's most called one:
// every poll, and every long poll again after each answer.
const feedPattern = "GET /report/v2/ledgers/{ledgerId}/{topic}/feed"

// feedREST serves a plain feed request without the gateway's generic steps
// (route matching, the request's metadata and query through reflection,
// forwarding the answer): it builds the GetFeedRequest itself, runs the
// same in-process call through the same chain (localReport.GetFeed), and
// answers as the gateway does, with the same status, headers and bytes and
// the same problems (gatewayError). Only a request it reads exactly as the
// gateway would takes this path: GET, a path with no escapes, each query
// parameter one of the feed's by its documented name, once, with a value in
// its plain form, and no header the gateway gives a meaning of its own
// (Grpc-Timeout, Grpc-Metadata-*, TE, a Vipps-System-*-Bin header it would
// decode, an Authorization it would drop). Anything else goes to gw, the gateway, unchanged.
// TestFeedREST_SameAsGateway answers a table of requests both ways.
//
// Of the metadata the gateway makes from a request, the feed's call reads
// only authorization (the chain's guard); the Vipps-System-* headers are
// logged by the REST middleware from the request itself.
func (s *Server) feedREST(gw http.Handler) http.Handler {
	api := localReport{s: s, api: s.reportSrv}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, auth, ok := plainFeedRequest(r)
		if !ok {
			gw.ServeHTTP(w, r)
			return
		}
		stream := &runtime.ServerTransportStream{}
		ctx := grpc.NewContextWithServerTransportStream(r.Context(), stream)
		if auth != nil {
			ctx = metadata.NewIncomingContext(ctx, metadata.MD{"authorization": auth})
		}
		resp, err := api.GetFeed(ctx, req)
		if err != nil {
			s.gatewayError(ctx, nil, nil, w, r, err)
			return
		}
		// As runtime.ForwardResponseMessage.
		hdr := w.Header()
		for k, vs := range stream.Header() {
			if h, ok := outgoingHeader(k); ok {
				for _, v := range vs {
					hdr.Add(h, v)
				}
			}
		}
		hdr.Set("Content-Type", wireJSON{}.ContentType(resp))
		if err := forwardStatus(ctx, w, resp); err != nil {
			s.gatewayError(ctx, nil, nil, w, r, err)
			return
		}
		out, err := preEncode(ctx, resp)
		var buf []byte
		if err == nil {
			buf, err = wireJSON{}.Marshal(out)
		}
		if err != nil {
			s.gatewayError(ctx, nil, nil, w, r, err)
			return
		}
		hdr.Set("Content-Length", strconv.Itoa(len(buf)))
		_, _ = w.Write(buf)
	})
}

// plainFeedRequest reads r as feedREST may answer it itself (see there):
// the request and the Authorization values the gateway would pass on, or
// ok false.
func plainFeedRequest(r *http.Request) (req *v1.GetFeedRequest, auth []string, ok bool) {
	if r.Method != http.MethodGet || r.URL.RawPath != "" {
		return nil, nil, false
	}
	for k, vs := range r.Header {
		switch {
		case k == "Authorization":
			for _, v := range vs {
				if !printableASCII(v) {
					return nil, nil, false
				}
			}
			auth = vs
		case k == "Grpc-Timeout", k == "Te", strings.HasPrefix(k, "Grpc-Metadata-"):
			return nil, nil, false
		case strings.HasPrefix(k, "Vipps-System-") && strings.HasSuffix(k, "-Bin"):
			// The gateway decodes a -bin header it forwards, and refuses
			// one that is not base64.
			return nil, nil, false
		}
	}
	req = &v1.GetFeedRequest{LedgerId: r.PathValue("ledgerId"), Topic: r.PathValue("topic")}
	if req.LedgerId == "" || req.Topic == "" {
		return nil, nil, false
	}
	if r.URL.RawQuery == "" {
		return req, auth, true
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, nil, false
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, nil, false
		}
		v := vs[0]
		switch k {
		case "cursor":
			req.Cursor = v
		case "from":
			req.From = v
		case "fromLedgerDate":
			req.FromLedgerDate = v
		case queryPageSize:
			n, ok := plainPositive(v)
			if !ok {
				return nil, nil, false
			}
			req.PageSize = n
		case "includeGDPRSensitiveData":
			switch v {
			case "true":
				req.IncludeGdprSensitiveData = true
			case "false":
			default:
				return nil, nil, false
			}
		case "wait":
			d, err := time.ParseDuration(v) // as the gateway reads a Duration
			if err != nil {
				return nil, nil, false
			}
			req.Wait = durationpb.New(d)
		default:
			return nil, nil, false
		}
	}
	return req, auth, true
}

// plainPositive reads a decimal number 1–999999999 written without sign or
// leading zero. The gateway's ParseInt also takes a sign, leading zeros and
// larger numbers: such values, and 0 (reportQuery refuses it before the
// gateway reads it), go to the gateway.
func plainPositive(v string) (int32, bool) {
	if len(v) == 0 || len(v) > 9 || v[0] < '1' || v[0] > '9' {
		return 0, false
	}
	var n int32
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int32(c-'0')
	}
	return n, true
}

// printableASCII reports whether v is valid gRPC metadata text, which the
// gateway requires of an Authorization value to pass it on.
func printableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}
