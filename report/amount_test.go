package report

import (
	"math"
	"math/big"
	"testing"
)

func TestFormatAmount(t *testing.T) {
	for _, c := range []struct {
		minor int64
		exp   int
		want  string
	}{
		{-1250, 2, "-12.50"}, // NOK
		{1250, 2, "12.50"},
		{5, 2, "0.05"},
		{-5, 2, "-0.05"},
		{0, 2, "0.00"},
		{1250, 3, "1.250"}, // KWD
		{-7, 3, "-0.007"},
		{123456, 3, "123.456"},
		{1250, 0, "1250"}, // JPY
		{-1250, 0, "-1250"},
		{0, 0, "0"},
		{math.MaxInt64, 2, "92233720368547758.07"},
		{math.MinInt64, 2, "-92233720368547758.08"},
		{math.MinInt64, 0, "-9223372036854775808"},
	} {
		if got := FormatAmount(c.minor, c.exp); got != c.want {
			t.Errorf("FormatAmount(%d, %d) = %q, want %q", c.minor, c.exp, got, c.want)
		}
	}
}

// The decimal string is exactly minor / 10^exp, for any value.
func TestFormatAmount_Exact(t *testing.T) {
	vals := []int64{1, -1, 9, 10, 99, 100, 101, 999999, -1000001, 1 << 53, -(1 << 53) - 1, math.MaxInt64 - 1}
	for _, v := range vals {
		for exp := 0; exp <= 4; exp++ {
			s := FormatAmount(v, exp)
			r, ok := new(big.Rat).SetString(s)
			if !ok {
				t.Fatalf("%q is not a decimal", s)
			}
			want := new(big.Rat).SetFrac(big.NewInt(v), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil))
			if r.Cmp(want) != 0 {
				t.Errorf("FormatAmount(%d, %d) = %q, not %s", v, exp, s, want.FloatString(exp))
			}
		}
	}
}
