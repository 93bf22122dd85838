package server

import (
	"crypto/rand"
	"encoding/hex"
)

// Request ids (the contextId of problem bodies and audit events). A caller
// may choose its own with the X-Request-Id header (gRPC: x-request-id
// metadata); one that is not sane is replaced by a random one. The id in
// force is always sent back: the X-Request-Id response header, the
// x-request-id header metadata of a gRPC call.
const (
	headerRequestID = "X-Request-Id"
	mdRequestID     = "x-request-id"
	maxRequestIDLen = 128
)

// requestID returns the caller's id when sane (1–128 of A–Z a–z 0–9 . _ : -),
// else a new random UUID.
func requestID(fromCaller string) string {
	if saneRequestID(fromCaller) {
		return fromCaller
	}
	return newUUID()
}

func saneRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
