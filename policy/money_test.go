package policy

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"regexp"
	"strconv"
	"testing"
)

func TestExponent(t *testing.T) {
	for cur, want := range map[string]int{"CNY": 2, "USD": 2, "EUR": 2, "HKD": 2, "GBP": 2, "SGD": 2, "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3, "CLF": 4} {
		t.Run(cur, func(t *testing.T) {
			got, ok := Exponent(cur)
			if !ok || got != want {
				t.Fatalf("Exponent(%q) = %d, %v; want %d, true", cur, got, ok, want)
			}
		})
	}
	for _, cur := range []string{"", "cny", "XXX", "CN", "CNYY", "RMB"} {
		t.Run("unknown "+cur, func(t *testing.T) {
			if _, ok := Exponent(cur); ok {
				t.Fatalf("Exponent(%q) ok; want unknown", cur)
			}
		})
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in, cur string
		want    int64
		code    string // "" means accepted
	}{
		{"12.34", "CNY", 1234, ""},
		{"1.2", "CNY", 120, ""},
		{"1.20", "CNY", 120, ""},
		{"0.50", "CNY", 50, ""},
		{"0.01", "CNY", 1, ""},
		{"1", "CNY", 100, ""},
		{"1000000.00", "CNY", 100000000, ""},
		{"500", "JPY", 500, ""},
		{"1", "KRW", 1, ""},
		{"1.234", "KWD", 1234, ""},
		{"0.001", "BHD", 1, ""},
		{"92233720368547758.07", "CNY", math.MaxInt64, ""},
		{"9223372036854775807", "JPY", math.MaxInt64, ""},

		{"", "CNY", 0, AmountCodeFormat},
		{"1e3", "CNY", 0, AmountCodeFormat},
		{"1E3", "CNY", 0, AmountCodeFormat},
		{"1.5e2", "CNY", 0, AmountCodeFormat},
		{"+1.00", "CNY", 0, AmountCodeFormat},
		{"-1.00", "CNY", 0, AmountCodeFormat},
		{"1,000.00", "CNY", 0, AmountCodeFormat},
		{"1 000", "CNY", 0, AmountCodeFormat},
		{" 1.00", "CNY", 0, AmountCodeFormat},
		{"1.00 ", "CNY", 0, AmountCodeFormat},
		{"1_000", "CNY", 0, AmountCodeFormat},
		{"１２", "CNY", 0, AmountCodeFormat}, // fullwidth digits
		{"١٢", "CNY", 0, AmountCodeFormat}, // Arabic-Indic digits
		{".5", "CNY", 0, AmountCodeFormat},
		{"5.", "CNY", 0, AmountCodeFormat},
		{".", "CNY", 0, AmountCodeFormat},
		{"1..2", "CNY", 0, AmountCodeFormat},
		{"1.2.3", "CNY", 0, AmountCodeFormat},
		{"012.34", "CNY", 0, AmountCodeFormat},
		{"00.5", "CNY", 0, AmountCodeFormat},
		{"00", "CNY", 0, AmountCodeFormat},
		{"0x10", "CNY", 0, AmountCodeFormat},
		{"NaN", "CNY", 0, AmountCodeFormat},
		{"Infinity", "CNY", 0, AmountCodeFormat},
		{`"1.00"`, "CNY", 0, AmountCodeFormat},
		{"1.00\x00", "CNY", 0, AmountCodeFormat},

		{"1.234", "CNY", 0, AmountCodePrecision},
		{"1.200", "CNY", 0, AmountCodePrecision},
		{"500.0", "JPY", 0, AmountCodePrecision},
		{"1.2345", "KWD", 0, AmountCodePrecision},

		{"0", "CNY", 0, AmountCodeZero},
		{"0.00", "CNY", 0, AmountCodeZero},
		{"0.0", "CNY", 0, AmountCodeZero},
		{"0", "JPY", 0, AmountCodeZero},

		{"92233720368547758.08", "CNY", 0, AmountCodeTooLarge},
		{"9223372036854775808", "JPY", 0, AmountCodeTooLarge},
		{"99999999999999999999999999999999", "CNY", 0, AmountCodeTooLarge},
		{"9223372036854775.808", "KWD", 0, AmountCodeTooLarge},

		{"1.00", "", 0, AmountCodeCurrency},
		{"1.00", "cny", 0, AmountCodeCurrency},
		{"1.00", "XXX", 0, AmountCodeCurrency},
	}
	for _, tt := range tests {
		t.Run(tt.cur+" "+strconv.Quote(tt.in), func(t *testing.T) {
			got, err := ParseAmount(tt.in, tt.cur)
			if tt.code == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ParseAmount(%q, %q) = %d, %v; want %d", tt.in, tt.cur, got, err, tt.want)
				}
				return
			}
			var ae *AmountError
			if !errors.As(err, &ae) || ae.Code != tt.code || !errors.Is(err, ErrAmount) {
				t.Fatalf("ParseAmount(%q, %q) = %d, %v; want code %q", tt.in, tt.cur, got, err, tt.code)
			}
			if ae.Message == "" {
				t.Fatalf("AmountError without message: %#v", ae)
			}
		})
	}
}

func TestFormatAmount(t *testing.T) {
	tests := []struct {
		minor int64
		cur   string
		want  string
	}{
		{1234, "CNY", "12.34"},
		{5, "CNY", "0.05"},
		{100, "CNY", "1.00"},
		{0, "CNY", "0.00"},
		{-1234, "CNY", "-12.34"},
		{500, "JPY", "500"},
		{0, "JPY", "0"},
		{1, "KWD", "0.001"},
		{1, "CLF", "0.0001"},
		{math.MaxInt64, "CNY", "92233720368547758.07"},
		{math.MinInt64, "CNY", "-92233720368547758.08"},
		{math.MinInt64, "CLF", "-922337203685477.5808"},
		{1234, "XXX", "1234"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatAmount(tt.minor, tt.cur); got != tt.want {
				t.Fatalf("FormatAmount(%d, %q) = %q; want %q", tt.minor, tt.cur, got, tt.want)
			}
		})
	}
}

// TestFormatAmountRoundTrip checks ParseAmount(FormatAmount(v)) == v for
// random positive values in every currency of the table.
func TestFormatAmountRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for cur := range exponents {
		t.Run(cur, func(t *testing.T) {
			vals := []int64{1, 9, 10, 99, 100, 101, math.MaxInt64, math.MaxInt64 - 1}
			for range 1000 {
				vals = append(vals, r.Int64N(math.MaxInt64)+1, r.Int64N(1_000_000)+1)
			}
			for _, v := range vals {
				s := FormatAmount(v, cur)
				got, err := ParseAmount(s, cur)
				if err != nil || got != v {
					t.Fatalf("ParseAmount(FormatAmount(%d, %s) = %q) = %d, %v", v, cur, s, got, err)
				}
			}
		})
	}
}

var amountSyntax = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.[0-9]+)?$`)

// FuzzParseAmount checks that ParseAmount never panics and that everything it
// accepts is well-spelled, positive, exact (checked against math/big) and
// survives a FormatAmount round trip.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"12.34", "0.01", "0.50", "1.2", "1.234", "012.34", ".5", "5.", "1e3", "-1", "+1", "1,000", "1_000", "１２", "0", "0.00", "92233720368547758.07", "92233720368547758.08", "999999999999999999999"} {
		for _, cur := range []string{"CNY", "JPY", "KWD", "XXX"} {
			f.Add(s, cur)
		}
	}
	f.Fuzz(func(t *testing.T, s, cur string) {
		v, err := ParseAmount(s, cur)
		if err != nil {
			var ae *AmountError
			if !errors.As(err, &ae) || ae.Code == "" {
				t.Fatalf("ParseAmount(%q, %q) error %v is not a coded *AmountError", s, cur, err)
			}
			return
		}
		if v <= 0 {
			t.Fatalf("ParseAmount(%q, %q) = %d; want > 0", s, cur, v)
		}
		if !amountSyntax.MatchString(s) {
			t.Fatalf("ParseAmount accepted %q", s)
		}
		exp, _ := Exponent(cur)
		want, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("big.Rat rejects accepted %q", s)
		}
		want.Mul(want, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)))
		if !want.IsInt() || want.Num().Cmp(big.NewInt(v)) != 0 {
			t.Fatalf("ParseAmount(%q, %q) = %d; exact value is %s", s, cur, v, want.RatString())
		}
		back, err := ParseAmount(FormatAmount(v, cur), cur)
		if err != nil || back != v {
			t.Fatalf("round trip of %d %s via %q = %d, %v", v, cur, FormatAmount(v, cur), back, err)
		}
	})
}

func BenchmarkParseAmount(b *testing.B) {
	for _, s := range []string{"12.34", "1000000.00", "92233720368547758.07"} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseAmount(s, "CNY"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
