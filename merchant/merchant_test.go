package merchant

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/fakeclock"
)

func TestParseID(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"M100", true},
		{"m_1-a", true},
		{"9", true},
		{strings.Repeat("a", 32), true},
		{strings.Repeat("a", 33), false},
		{"", false},
		{"_platform", false},
		{"-x", false},
		{"M.100", false},
		{"M 100", false},
		{"Mü", false},
		{"M100\n", false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			id, err := ParseID(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseID(%q) = %q, %v; want ok=%t", tt.in, id, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidID) {
				t.Fatalf("error %v does not wrap ErrInvalidID", err)
			}
			if err == nil && string(id) != tt.in {
				t.Fatalf("ParseID(%q) = %q", tt.in, id)
			}
			if ValidID(tt.in) != tt.ok {
				t.Fatalf("ValidID(%q) disagrees with ParseID", tt.in)
			}
		})
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"M100", "_payer", "a-b_c", "", "x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if strings.Contains(err.Error(), s) && s != "" && len(s) > 3 {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		if len(id) == 0 || len(id) > MaxIDLen || id[0] == '_' || id[0] == '-' {
			t.Fatalf("accepted %q", s)
		}
		for _, c := range []byte(id) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				t.Fatalf("accepted byte %q in %q", c, s)
			}
		}
	})
}

func TestProfileCheck(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    Profile
		want error
	}{
		{"ok", Profile{ID: "M1", FeeBps: 60}, nil},
		{"disabled", Profile{ID: "M1", Status: Disabled}, nil},
		{"bad id", Profile{ID: "_x"}, ErrInvalidID},
		{"negative fee", Profile{ID: "M1", FeeBps: -1}, ErrInvalid},
		{"fee over 100%", Profile{ID: "M1", FeeBps: 10001}, ErrInvalid},
		{"bad status", Profile{ID: "M1", Status: "paused"}, ErrInvalid},
		{"long name", Profile{ID: "M1", Name: strings.Repeat("n", MaxNameLen+1)}, ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Check()
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Check() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestErrDisabledMatchesUnknown(t *testing.T) {
	if !errors.Is(ErrDisabled, ErrUnknown) {
		t.Fatal("ErrDisabled must match ErrUnknown so callers that refuse unknown merchants refuse disabled ones")
	}
	if errors.Is(ErrUnknown, ErrDisabled) {
		t.Fatal("ErrUnknown must not match ErrDisabled")
	}
}

// fakeLister is an in-memory Lister whose answers the test sets.
type fakeLister struct {
	mu    sync.Mutex
	ps    []Profile
	err   error
	calls int
}

func (f *fakeLister) set(err error, ps ...Profile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ps, f.err = ps, err
}

func (f *fakeLister) List(context.Context) ([]Profile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return append([]Profile(nil), f.ps...), f.err
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	clk := fakeclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	src := &fakeLister{}
	c := NewCache(src, CacheOptions{Now: clk.Now, MissRefreshEvery: time.Second})

	if _, err := c.Merchant(ctx, "M1"); !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrUnknown) {
		t.Fatalf("before any load: %v", err)
	}
	src.set(nil, Profile{ID: "M1", Status: Active, FeeBps: 10})
	clk.Advance(2 * time.Second)
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Merchant(ctx, "M1"); err != nil || p.FeeBps != 10 {
		t.Fatalf("M1: %+v %v", p, err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}

	// Disabled in the registry: refused after the next reload.
	src.set(nil, Profile{ID: "M1", Status: Disabled})
	if _, err := c.Merchant(ctx, "M1"); err != nil {
		t.Fatalf("before reload the cached profile serves: %v", err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Merchant(ctx, "M1"); !errors.Is(err, ErrDisabled) || !errors.Is(err, ErrUnknown) {
		t.Fatalf("disabled M1: %v", err)
	}

	// An unknown id reloads once, then not again within MissRefreshEvery.
	src.set(nil, Profile{ID: "M1"}, Profile{ID: "M2", Status: Active})
	clk.Advance(2 * time.Second)
	if _, err := c.Merchant(ctx, "M2"); err != nil {
		t.Fatalf("M2 added since the last reload: %v", err)
	}
	clk.Advance(2 * time.Second)
	before := src.calls
	for range 50 {
		if _, err := c.Merchant(ctx, "NOPE"); !errors.Is(err, ErrUnknown) || errors.Is(err, ErrDisabled) {
			t.Fatalf("unknown: %v", err)
		}
	}
	if got := src.calls - before; got != 1 {
		t.Fatalf("50 unknown lookups caused %d reloads, want 1", got)
	}
	if _, err := c.Merchant(ctx, "_bad id"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("invalid id: %v", err)
	}

	// Registry down: last good profiles serve, Ready says why and since when.
	src.set(errors.New("connection refused"))
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("refresh succeeded against a failing source")
	}
	if _, err := c.Merchant(ctx, "M2"); err != nil {
		t.Fatalf("last good profile not served: %v", err)
	}
	if err := c.Ready(ctx); err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "since") {
		t.Fatalf("Ready while failing: %v", err)
	}
	src.set(nil, Profile{ID: "M2"})
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready after recovery: %v", err)
	}
}
