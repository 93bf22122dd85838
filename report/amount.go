package report

import (
	"strconv"
)

// FormatAmount writes minor units as a decimal string in major units with
// exp fraction digits (the currency's ISO 4217 exponent): -1250, 2 →
// "-12.50"; 1250, 3 → "1.250"; 1250, 0 → "1250". Exact for every int64.
func FormatAmount(minor int64, exp int) string {
	return string(AppendAmount(nil, minor, exp))
}

// AppendAmount appends FormatAmount(minor, exp) to b.
func AppendAmount(b []byte, minor int64, exp int) []byte {
	if exp <= 0 {
		return strconv.AppendInt(b, minor, 10)
	}
	var u uint64
	if minor < 0 {
		b = append(b, '-')
		u = uint64(-(minor + 1)) + 1 // no overflow at math.MinInt64
	} else {
		u = uint64(minor)
	}
	var digits [24]byte
	d := strconv.AppendUint(digits[:0], u, 10)
	if len(d) <= exp {
		b = append(b, '0', '.')
		for i := len(d); i < exp; i++ {
			b = append(b, '0')
		}
		return append(b, d...)
	}
	b = append(b, d[:len(d)-exp]...)
	b = append(b, '.')
	return append(b, d[len(d)-exp:]...)
}
