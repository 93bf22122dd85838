package server

import (
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgerfeed/ledgerfeed/ledger"

	v1 "github.com/ledgerfeed/ledgerfeed/gen/ledgerfeed/v1"
)

func TestWireJSON_Marshal(t *testing.T) {
	handle := "NO:123455"
	name := "Ola \"O\" <Nordmann>\n"
	at := time.Date(2020, 10, 5, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		m    proto.Message
		want string
	}{
		{"entry: int64 as numbers, six fraction digits, GDPR fields left out",
			&v1.Entry{PspReference: "3343121302", Time: timestamppb.New(at), LedgerDate: "2020-10-05", EntryType: "capture",
				Reference: "r", Currency: "NOK", Amount: math.MaxInt64, BalanceBefore: math.MinInt64, BalanceAfter: -1, RecipientHandle: &handle},
			`{"pspReference":"3343121302","time":"2020-10-05T00:00:00.000000Z","ledgerDate":"2020-10-05","entryType":"capture","reference":"r","currency":"NOK","amount":9223372036854775807,"balanceBefore":-9223372036854775808,"balanceAfter":-1,"recipientHandle":"NO:123455"}`},
		{"entry: recipientHandle null, GDPR fields present, time in UTC",
			&v1.Entry{Time: timestamppb.New(time.Date(2024, 3, 31, 2, 30, 0, 123456789, time.FixedZone("CEST", 7200))), Name: &name},
			`{"pspReference":"","time":"2024-03-31T00:30:00.123456Z","ledgerDate":"","entryType":"","reference":"","currency":"","amount":0,"balanceBefore":0,"balanceAfter":0,"recipientHandle":null,"name":"Ola \"O\" <Nordmann>\n"}`},
		{"empty lists and cursor are written",
			&v1.ListClientsResponse{},
			`{"items":[],"cursor":""}`},
		{"date report: cursor only when set",
			&v1.GetDateReportResponse{TryLater: true},
			`{"items":[],"hasMore":false,"tryLater":true}`},
		{"unset message fields are left out",
			&v1.Client{ClientId: "c", Scopes: []string{"read"}, Grants: []*v1.ClientGrant{{LedgerId: "1", GdprConsent: true}}},
			`{"clientId":"c","scopes":["read"],"grants":[{"ledgerId":"1","gdprConsent":true}]}`},
		{"json_name", &v1.GetFeedRequest{IncludeGdprSensitiveData: true, Wait: durationpb.New(1500 * time.Millisecond)},
			`{"ledgerId":"","topic":"","cursor":"","includeGDPRSensitiveData":true,"pageSize":0,"wait":"1.5s","from":"","fromLedgerDate":""}`},
		{"unset oneof left out", &v1.EraseGDPRRequest{LedgerId: "1", Selector: &v1.EraseGDPRRequest_Reference{Reference: "x"}},
			`{"ledgerId":"1","reference":"x"}`},
		{"invalid UTF-8 and control characters", &v1.BankAccount{Scheme: "a\xffb\x01\u2028"},
			`{"scheme":"a` + "\ufffd" + `b\u0001\u2028","id":""}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := wireJSON{}.Marshal(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}

func TestDecodeStrict(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // the error's field, or "" for success
	}{
		{"ok", `{"entries":[{"entryId":"a","amount":-5,"time":"2024-01-01T10:00:00+01:00","recipientHandle":null}]}`, ""},
		{"whitespace", " \n{ \"entries\" : [ ] } \n", ""},
		{"null string", `{"entries":[{"reference":null}]}`, ""},
		{"duplicate", `{"entries":[],"entries":[]}`, "entries"},
		{"duplicate nested", `{"entries":[{},{"amount":1,"amount":1}]}`, "entries[1].amount"},
		{"amount string", `{"entries":[{"amount":"1"}]}`, "entries[0].amount"},
		{"amount float", `{"entries":[{"amount":1.5}]}`, "entries[0].amount"},
		{"amount exponent", `{"entries":[{"amount":1E3}]}`, "entries[0].amount"},
		{"amount negative zero fraction", `{"entries":[{"amount":-0.0}]}`, "entries[0].amount"},
		{"amount too big", `{"entries":[{"amount":99999999999999999999}]}`, "entries[0].amount"},
		{"amount array", `{"entries":[{"amount":[1]}]}`, "entries[0].amount"},
		{"unknown", `{"entries":[{"x":1}]}`, "entries[0].x"},
		{"unknown deep value not read", `{"x":{"y":[[[[` + strings.Repeat("[", 1000), "x"},
		{"bool for a string", `{"entries":[{"reference":true}]}`, "entries[0].reference"},
		{"object for array", `{"entries":{}}`, "entries"},
		{"array for object", `{"entries":[[]]}`, "entries[0]"},
		{"time number", `{"entries":[{"time":5}]}`, "entries[0].time"},
		{"time bad", `{"entries":[{"time":"2024-01-01"}]}`, "entries[0].time"},
		{"trailing", `{}{}`, "body"},
		{"trailing garbage", `{} x`, "body"},
		{"not object", `"x"`, "body"},
		{"cut", `{"entries":[{"amount":1`, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req v1.AppendEntriesRequest
			err := decodeStrict(strings.NewReader(tc.in), &req)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *ledger.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.want {
				t.Fatalf("err %v, want a field error on %s", err, tc.want)
			}
		})
	}
	// An empty body is io.EOF (the gateway takes it as no body).
	if err := decodeStrict(strings.NewReader("  "), &v1.AppendEntriesRequest{}); err != io.EOF {
		t.Errorf("empty: %v", err)
	}
	// A body bound to a message field: the gateway passes &req.Field.
	var req v1.PutLedgerRequest
	if err := decodeStrict(strings.NewReader(`{"currency":"NOK","timeZone":"UTC"}`), &req.Ledger); err != nil || req.Ledger.GetCurrency() != "NOK" {
		t.Errorf("field body: %v %v", req.Ledger, err)
	}
	// The oneof takes one member.
	var er v1.EraseGDPRRequest
	if err := decodeStrict(strings.NewReader(`{"reference":"a","pspReference":"b"}`), &er); err == nil {
		t.Errorf("two oneof members accepted")
	}
	// Over the size limit: errTooLarge.
	rec := httptest.NewRecorder()
	body := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(`{"entries":[{"entryId":"`+strings.Repeat("x", 100)+`"}]}`)), 50)
	if err := decodeStrict(body, &v1.AppendEntriesRequest{}); !errors.Is(err, errTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
}

// The gateway rejects fields of the path in the body; decodeStrict knows
// them per request type.
func TestDecodeStrict_PathFields(t *testing.T) {
	for _, tc := range []struct {
		in string
		m  proto.Message
	}{
		{`{"ledgerId":"1","entries":[]}`, &v1.AppendEntriesRequest{}},
		{`{"topic":"funds"}`, &v1.AppendEntriesRequest{}},
		{`{"ledgerId":"1","reference":"x"}`, &v1.EraseGDPRRequest{}},
		{`{"clientId":"x","scopes":[]}`, &v1.UpdateClientRequest{}},
	} {
		var fe *ledger.FieldError
		if err := decodeStrict(strings.NewReader(tc.in), tc.m); !errors.As(err, &fe) || fe.Reason != "unknown field" {
			t.Errorf("%s into %T: %v", tc.in, tc.m, err)
		}
	}
}

func TestErrorTable(t *testing.T) {
	for _, tc := range []struct {
		err       error
		code      string
		http      int
		errorCode int
		detail    string
	}{
		{&ledger.FieldError{Field: "entries[0].amount", Reason: "bad"}, "InvalidArgument", 400, 10002, "entries[0].amount: bad"},
		{ledgerNotFound("1"), "NotFound", 404, 10005, "ledger 1: not found"},
		{alreadyExists(errors.Join(ledger.ErrConflict)), "AlreadyExists", 409, 10006, "conflict"},
		{ledger.ErrConflict, "Aborted", 409, 10006, "conflict"},
		{ledger.ErrClosed, "Unavailable", 503, 10009, "store closed"},
		{tooLarge(10), "ResourceExhausted", 413, 10008, "request body larger than 10 bytes"},
		{errors.New("disk on fire"), "Internal", 500, 10001, "internal error"},
		{ledger.ErrDamaged, "Internal", 500, 10001, "internal error"},
	} {
		st := toStatus(discardLog(), "ctx", "m", tc.err)
		row := rowOfStatus(st)
		if st.Code().String() != tc.code || row.status != tc.http || row.errorCode != tc.errorCode || st.Message() != tc.detail {
			t.Errorf("%v: %v %q → %d %d, want %s %q → %d %d", tc.err, st.Code(), st.Message(), row.status, row.errorCode, tc.code, tc.detail, tc.http, tc.errorCode)
		}
	}
}
