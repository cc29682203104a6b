package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestRulesCompileDefaults(t *testing.T) {
	cr, err := Compile(Rules{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cr.Rules(); !slices.Equal(got.Currencies, []string{"CNY"}) || got.MinAmount != "0.01" || got.MaxAmount != "1000000.00" || got.OrderIDPattern != `^ORD[0-9]{12,29}$` {
		t.Fatalf("defaults = %+v", got)
	}
	lo, hi, ok := cr.Limits("CNY")
	if !ok || lo != 1 || hi != 100000000 {
		t.Fatalf("Limits(CNY) = %d, %d, %v", lo, hi, ok)
	}
	if cr.Allows("USD") {
		t.Fatal("USD allowed by default")
	}
}

func TestRulesCompileLimits(t *testing.T) {
	tests := []struct {
		name   string
		rules  Rules
		cur    string
		lo, hi int64
	}{
		{"jpy rounds min up", Rules{Currencies: []string{"JPY"}}, "JPY", 1, 1000000},
		{"jpy rounds fractional bounds", Rules{Currencies: []string{"JPY"}, MinAmount: "1.5", MaxAmount: "99.9"}, "JPY", 2, 99},
		{"kwd", Rules{Currencies: []string{"KWD"}, MinAmount: "0.5", MaxAmount: "10"}, "KWD", 500, 10000},
		{"zero min means one unit", Rules{MinAmount: "0"}, "CNY", 1, 100000000},
		{"custom usd", Rules{Currencies: []string{"CNY", "USD"}, MinAmount: "5", MaxAmount: "250.50"}, "USD", 500, 25050},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr, err := Compile(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			lo, hi, ok := cr.Limits(tt.cur)
			if !ok || lo != tt.lo || hi != tt.hi {
				t.Fatalf("Limits(%s) = %d, %d, %v; want %d, %d", tt.cur, lo, hi, ok, tt.lo, tt.hi)
			}
		})
	}
}

func TestRulesCompileErrors(t *testing.T) {
	tests := []struct {
		name  string
		rules Rules
	}{
		{"unknown currency", Rules{Currencies: []string{"CNY", "XXX"}}},
		{"lowercase currency", Rules{Currencies: []string{"cny"}}},
		{"bad min", Rules{MinAmount: "1e2"}},
		{"negative min", Rules{MinAmount: "-1"}},
		{"bad max", Rules{MaxAmount: "1,000"}},
		{"max overflows", Rules{MaxAmount: "99999999999999999999"}},
		{"min above max", Rules{MinAmount: "10", MaxAmount: "5"}},
		{"empty range in jpy", Rules{Currencies: []string{"JPY"}, MinAmount: "0.2", MaxAmount: "0.8"}},
		{"bad pattern", Rules{OrderIDPattern: `ORD[0-9`}},
		{"long pattern", Rules{OrderIDPattern: strings.Repeat("a", 600)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile(tt.rules); !errors.Is(err, ErrRules) {
				t.Fatalf("Compile() error = %v; want ErrRules", err)
			}
		})
	}
}

func TestMatchOrderID(t *testing.T) {
	def, err := Compile(Rules{})
	if err != nil {
		t.Fatal(err)
	}
	custom, err := Compile(Rules{OrderIDPattern: `[A-Z]{2}-[0-9]{4,}`}) // unanchored on purpose
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cr   *CompiledRules
		id   string
		want bool
	}{
		{"default min length", def, "ORD123456789012", true},
		{"default max length", def, "ORD" + strings.Repeat("9", 29), true},
		{"default too short", def, "ORD12345678901", false},
		{"default too long", def, "ORD" + strings.Repeat("9", 30), false},
		{"default lowercase", def, "ord123456789012", false},
		{"default trailing newline", def, "ORD123456789012\n", false},
		{"default fullwidth digit", def, "ORD12345678901１", false},
		{"empty", def, "", false},
		{"custom", custom, "AB-1234", true},
		{"custom anchored at start", custom, "xAB-1234", false},
		{"custom anchored at end", custom, "AB-1234x", false},
		{"custom capped at 32 bytes", custom, "AB-" + strings.Repeat("1", 30), false},
		{"custom 32 bytes", custom, "AB-" + strings.Repeat("1", 29), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cr.MatchOrderID(tt.id); got != tt.want {
				t.Fatalf("MatchOrderID(%q) = %v; want %v", tt.id, got, tt.want)
			}
		})
	}
}
