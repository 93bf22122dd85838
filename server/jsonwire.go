package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgerfeed/ledgerfeed/ledger"
)

// wireJSON is the gateway's marshaler: the JSON of DESIGN.md, not protojson.
//
// Out: every field under its JSON name (lowerCamelCase, or json_name), in
// field order; int64 and uint64 as JSON numbers, never strings; Timestamps as
// RFC 3339 UTC with six fraction digits ("2020-10-05T00:00:00.000000Z");
// Durations as "1.5s". Fields without presence are always written (zero
// values too: "cursor":"" and "items":[]); a proto3 optional field that is
// unset is null (recipientHandle); an unset message field is left out. A few
// fields are left out instead when unset or empty (wireOmit).
//
// In (strict; see decodeStrict): request bodies must name known fields by
// their JSON names, once each, with values of exactly the field's JSON type.
type wireJSON struct{}

var _ runtime.Marshaler = wireJSON{}

func (wireJSON) ContentType(any) string { return "application/json" }

func (wireJSON) Marshal(v any) ([]byte, error) {
	if b, ok := v.(preEncoded); ok { // pool.go
		return b, nil
	}
	if b, ok := appendFast(nil, v); ok { // jsonwire_fast.go
		return b, nil
	}
	if m, ok := v.(proto.Message); ok {
		return appendMessage(nil, m.ProtoReflect()), nil
	}
	return json.Marshal(v)
}

func (wireJSON) Unmarshal(data []byte, v any) error {
	return decodeStrict(bytes.NewReader(data), v)
}

// NewDecoder decodes one request body. When the body is a REST request's
// (restBody), a body that fails is not answered here: the error is kept in
// the request's state and reported by the interceptor chain after the caller
// is authenticated (gateway.go), so a caller without a valid token learns
// nothing from the shape of its body.
func (wireJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		err := decodeStrict(r, v)
		if err == nil || errors.Is(err, io.EOF) {
			return err
		}
		if b, ok := r.(*restBody); ok {
			b.state.decodeErr = err
			return nil
		}
		return errors.New(detailOf(err))
	})
}

func (m wireJSON) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := m.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
}

// wireOmit lists fields left out of the JSON when unset or empty, instead
// of being written as null or "".
var wireOmit = map[protoreflect.FullName]bool{
	// DESIGN.md: without includeGDPRSensitiveData the three are left out.
	"ledgerfeed.v1.Entry.name":            true,
	"ledgerfeed.v1.Entry.masked_phone_no": true,
	"ledgerfeed.v1.Entry.message":         true,
	// DESIGN.md: "cursor"? — only while hasMore.
	"ledgerfeed.v1.GetDateReportResponse.cursor": true,
}

// wireTimeLayout is DESIGN.md's instant: UTC, six fraction digits.
const wireTimeLayout = "2006-01-02T15:04:05.000000Z"

func appendMessage(b []byte, m protoreflect.Message) []byte {
	switch m.Descriptor().FullName() {
	case "google.protobuf.Timestamp":
		ts := m.Interface().(*timestamppb.Timestamp)
		return appendString(b, ts.AsTime().UTC().Format(wireTimeLayout))
	case "google.protobuf.Duration":
		d := m.Interface().(*durationpb.Duration)
		return appendString(b, strconv.FormatFloat(d.AsDuration().Seconds(), 'f', -1, 64)+"s")
	}
	b = append(b, '{')
	first := true
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		omit := wireOmit[fd.FullName()]
		switch {
		case fd.IsList() || fd.IsMap():
			if omit && m.Get(fd).List().Len() == 0 {
				continue
			}
		case fd.Message() != nil:
			if !m.Has(fd) {
				continue
			}
		case fd.HasPresence():
			if !m.Has(fd) && (omit || fd.ContainingOneof() != nil && !fd.ContainingOneof().IsSynthetic()) {
				continue
			}
		default:
			if omit && !m.Has(fd) {
				continue
			}
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, fd.JSONName())
		b = append(b, ':')
		switch {
		case fd.IsList():
			l := m.Get(fd).List()
			b = append(b, '[')
			for j := 0; j < l.Len(); j++ {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendValue(b, fd, l.Get(j))
			}
			b = append(b, ']')
		case fd.IsMap():
			// Keys in sorted order, so one message always answers the same
			// bytes (Range's order is random).
			mp := m.Get(fd).Map()
			keys := make([]protoreflect.MapKey, 0, mp.Len())
			mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			slices.SortFunc(keys, func(x, y protoreflect.MapKey) int { return strings.Compare(x.String(), y.String()) })
			b = append(b, '{')
			for j, k := range keys {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendString(b, k.String())
				b = append(b, ':')
				b = appendValue(b, fd.MapValue(), mp.Get(k))
			}
			b = append(b, '}')
		case fd.HasPresence() && fd.Message() == nil && !m.Has(fd):
			b = append(b, "null"...)
		default:
			b = appendValue(b, fd, m.Get(fd))
		}
	}
	return append(b, '}')
}

func appendValue(b []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value) []byte {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return appendMessage(b, v.Message())
	case protoreflect.StringKind:
		return appendString(b, v.String())
	case protoreflect.BoolKind:
		return strconv.AppendBool(b, v.Bool())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.AppendInt(b, v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.AppendUint(b, v.Uint(), 10)
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f := v.Float()
		switch {
		case math.IsNaN(f):
			return appendString(b, "NaN")
		case math.IsInf(f, 1):
			return appendString(b, "Infinity")
		case math.IsInf(f, -1):
			return appendString(b, "-Infinity")
		}
		bits := 64
		if fd.Kind() == protoreflect.FloatKind {
			bits = 32
		}
		return strconv.AppendFloat(b, f, 'g', -1, bits)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return appendString(b, string(ev.Name()))
		}
		return strconv.AppendInt(b, int64(v.Enum()), 10)
	case protoreflect.BytesKind:
		return appendString(b, base64.StdEncoding.EncodeToString(v.Bytes()))
	}
	return append(b, "null"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// ---- strict decoding

// bodyPathFields lists, per request message, fields that come from the REST
// path and so are unknown in its body ({"entries":[...]} has no ledgerId).
var bodyPathFields = map[protoreflect.FullName]map[string]bool{
	"ledgerfeed.v1.AppendEntriesRequest": {"ledgerId": true, "topic": true},
	"ledgerfeed.v1.EraseGDPRRequest":     {"ledgerId": true},
	"ledgerfeed.v1.UpdateClientRequest":  {"clientId": true},
}

// decodeStrict decodes one JSON object into v (a proto message). Unlike
// protojson (and encoding/json) it refuses, naming the field
// ("entries[3].amount"): unknown fields and proto (snake_case) names, a key
// given twice in one object (encoding/json keeps the last silently),
// integers given as strings ("100") or as fractions or exponents (1.5, 1e3),
// integers out of range, any value of another JSON type, two members of one
// oneof, and anything after the object. null leaves a field unset, except
// for numbers. An empty body is io.EOF. A body over the reader's
// http.MaxBytesReader limit is errTooLarge.
func decodeStrict(r io.Reader, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		// The gateway passes &req.Field for a body bound to a message field.
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Pointer {
			return fmt.Errorf("decode into %T: not a proto message", v)
		}
		fresh := reflect.New(rv.Elem().Type().Elem())
		if m, ok = fresh.Interface().(proto.Message); !ok {
			return fmt.Errorf("decode into %T: not a proto message", v)
		}
		err := decodeStrict(r, m)
		if err == nil {
			rv.Elem().Set(fresh)
		}
		return err
	}
	d := json.NewDecoder(r)
	d.UseNumber()
	tok, err := d.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return syntaxErr(err)
	}
	if tok != json.Delim('{') {
		return &ledger.FieldError{Field: "body", Reason: "must be a JSON object"}
	}
	proto.Reset(m)
	if err := decodeObject(d, m.ProtoReflect(), ""); err != nil {
		return err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return syntaxErr(err)
		}
		return &ledger.FieldError{Field: "body", Reason: "unexpected data after the JSON object"}
	}
	return nil
}

// syntaxErr reports malformed JSON, or a body over the size limit.
func syntaxErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &detailedError{kind: errTooLarge, err: fmt.Errorf("request body larger than %d bytes", mbe.Limit)}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &ledger.FieldError{Field: "body", Reason: "not valid JSON: unexpected end"}
	}
	return &ledger.FieldError{Field: "body", Reason: "not valid JSON: " + err.Error()}
}

// jsonFields maps a message's JSON field names to its fields.
var jsonFields sync.Map // protoreflect.FullName → map[string]protoreflect.FieldDescriptor

func fieldsByJSONName(md protoreflect.MessageDescriptor) map[string]protoreflect.FieldDescriptor {
	if v, ok := jsonFields.Load(md.FullName()); ok {
		return v.(map[string]protoreflect.FieldDescriptor)
	}
	fields := md.Fields()
	out := make(map[string]protoreflect.FieldDescriptor, fields.Len())
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		out[fd.JSONName()] = fd
	}
	jsonFields.Store(md.FullName(), out)
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeObject decodes the members of an object whose '{' was read, and its '}'.
func decodeObject(d *json.Decoder, m protoreflect.Message, path string) error {
	md := m.Descriptor()
	fields := fieldsByJSONName(md)
	banned := bodyPathFields[md.FullName()]
	if path != "" {
		banned = nil // only top-level request fields come from the path
	}
	seen := make(map[string]bool)
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return syntaxErr(err)
		}
		key, _ := tok.(string)
		fpath := joinPath(path, key)
		if seen[key] {
			return &ledger.FieldError{Field: fpath, Reason: "given twice (duplicate JSON key)"}
		}
		seen[key] = true
		fd, ok := fields[key]
		if !ok || banned[key] {
			return &ledger.FieldError{Field: fpath, Reason: "unknown field"}
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if other := m.WhichOneof(od); other != nil {
				return &ledger.FieldError{Field: fpath, Reason: "only one of " + oneofNames(od) + " may be given"}
			}
		}
		if err := decodeField(d, m, fd, fpath); err != nil {
			return err
		}
	}
	if _, err := d.Token(); err != nil { // '}'
		return syntaxErr(err)
	}
	return nil
}

func oneofNames(od protoreflect.OneofDescriptor) string {
	var s string
	for i := 0; i < od.Fields().Len(); i++ {
		if i > 0 {
			s += " and "
		}
		s += od.Fields().Get(i).JSONName()
	}
	return s
}

func decodeField(d *json.Decoder, m protoreflect.Message, fd protoreflect.FieldDescriptor, path string) error {
	tok, err := d.Token()
	if err != nil {
		return syntaxErr(err)
	}
	if tok == nil { // null
		if isNumberKind(fd.Kind()) && !fd.IsList() && !fd.HasPresence() {
			return &ledger.FieldError{Field: path, Reason: numberReason(fd, tok)}
		}
		m.Clear(fd)
		return nil
	}
	if fd.IsMap() {
		return &ledger.FieldError{Field: path, Reason: "maps are not supported"}
	}
	if fd.IsList() {
		if tok != json.Delim('[') {
			return &ledger.FieldError{Field: path, Reason: "must be a JSON array"}
		}
		l := m.Mutable(fd).List()
		for i := 0; d.More(); i++ {
			epath := fmt.Sprintf("%s[%d]", path, i)
			etok, err := d.Token()
			if err != nil {
				return syntaxErr(err)
			}
			if fd.Message() != nil {
				ev := l.NewElement()
				if err := decodeMessageValue(d, ev.Message(), etok, epath); err != nil {
					return err
				}
				l.Append(ev)
				continue
			}
			v, err := scalarValue(fd, etok, epath)
			if err != nil {
				return err
			}
			l.Append(v)
		}
		if _, err := d.Token(); err != nil { // ']'
			return syntaxErr(err)
		}
		return nil
	}
	if fd.Message() != nil {
		return decodeMessageValue(d, m.Mutable(fd).Message(), tok, path)
	}
	v, err := scalarValue(fd, tok, path)
	if err != nil {
		return err
	}
	m.Set(fd, v)
	return nil
}

// decodeMessageValue decodes a message whose first token is tok.
func decodeMessageValue(d *json.Decoder, m protoreflect.Message, tok json.Token, path string) error {
	switch m.Descriptor().FullName() {
	case "google.protobuf.Timestamp":
		s, ok := tok.(string)
		if !ok {
			return &ledger.FieldError{Field: path, Reason: "must be an RFC 3339 time string"}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return &ledger.FieldError{Field: path, Reason: fmt.Sprintf("%q is not an RFC 3339 time (2020-10-05T00:00:00Z)", s)}
		}
		ts := timestamppb.New(t)
		if err := ts.CheckValid(); err != nil {
			return &ledger.FieldError{Field: path, Reason: "time out of range"}
		}
		proto.Merge(m.Interface(), ts)
		return nil
	case "google.protobuf.Duration":
		s, ok := tok.(string)
		if !ok {
			return &ledger.FieldError{Field: path, Reason: `must be a duration string such as "30s"`}
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			return &ledger.FieldError{Field: path, Reason: fmt.Sprintf(`%q is not a duration such as "30s"`, s)}
		}
		proto.Merge(m.Interface(), durationpb.New(dur))
		return nil
	}
	if tok != json.Delim('{') {
		return &ledger.FieldError{Field: path, Reason: "must be a JSON object"}
	}
	return decodeObject(d, m, path)
}

func isNumberKind(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind,
		protoreflect.FloatKind, protoreflect.DoubleKind:
		return true
	}
	return false
}

// numberReason says what is wrong with a token given for a number field.
func numberReason(fd protoreflect.FieldDescriptor, tok json.Token) string {
	noun := "integer"
	if k := fd.Kind(); k == protoreflect.FloatKind || k == protoreflect.DoubleKind {
		noun = "number"
	}
	want := "must be a JSON " + noun
	switch t := tok.(type) {
	case nil:
		return want + ", not null"
	case string:
		return want + ", not a string"
	case bool:
		return want + ", not a boolean"
	case json.Number:
		return want + ", not " + truncate(string(t), 40)
	case json.Delim:
		return want + ", not an " + delimName(t)
	}
	return want
}

func delimName(d json.Delim) string {
	if d == '[' {
		return "array"
	}
	return "object"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func scalarValue(fd protoreflect.FieldDescriptor, tok json.Token, path string) (protoreflect.Value, error) {
	bad := func(reason string) (protoreflect.Value, error) {
		return protoreflect.Value{}, &ledger.FieldError{Field: path, Reason: reason}
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		s, ok := tok.(string)
		if !ok {
			return bad("must be a JSON string")
		}
		return protoreflect.ValueOfString(s), nil
	case protoreflect.BoolKind:
		b, ok := tok.(bool)
		if !ok {
			return bad("must be true or false")
		}
		return protoreflect.ValueOfBool(b), nil
	case protoreflect.BytesKind:
		s, ok := tok.(string)
		if !ok {
			return bad("must be a base64 string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			if b, err = base64.URLEncoding.DecodeString(s); err != nil {
				return bad("must be a base64 string")
			}
		}
		return protoreflect.ValueOfBytes(b), nil
	case protoreflect.EnumKind:
		switch t := tok.(type) {
		case string:
			if ev := fd.Enum().Values().ByName(protoreflect.Name(t)); ev != nil {
				return protoreflect.ValueOfEnum(ev.Number()), nil
			}
			return bad(fmt.Sprintf("%q is not one of the allowed values", truncate(t, 40)))
		case json.Number:
			n, err := strconv.ParseInt(string(t), 10, 32)
			if err != nil {
				return bad("must be an enum name")
			}
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
		}
		return bad("must be an enum name")
	}
	num, ok := tok.(json.Number)
	if !ok {
		return bad(numberReason(fd, tok))
	}
	s := string(num)
	switch fd.Kind() {
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		bits := 64
		if fd.Kind() == protoreflect.FloatKind {
			bits = 32
		}
		f, err := strconv.ParseFloat(s, bits)
		if err != nil {
			return bad("number out of range")
		}
		if bits == 32 {
			return protoreflect.ValueOfFloat32(float32(f)), nil
		}
		return protoreflect.ValueOfFloat64(f), nil
	}
	if !isJSONInteger(s) {
		return bad(numberReason(fd, tok))
	}
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return bad("out of range for a 32-bit integer")
		}
		return protoreflect.ValueOfInt32(int32(n)), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return bad("out of range for a 64-bit integer")
		}
		return protoreflect.ValueOfInt64(n), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return bad("out of range for an unsigned 32-bit integer")
		}
		return protoreflect.ValueOfUint32(uint32(n)), nil
	default: // Uint64Kind, Fixed64Kind
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return bad("out of range for an unsigned 64-bit integer")
		}
		return protoreflect.ValueOfUint64(n), nil
	}
}

// isJSONInteger reports whether a JSON number is written as an integer: an
// optional minus and digits, no fraction, no exponent.
func isJSONInteger(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
