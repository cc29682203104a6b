package reload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/fakeclock"
)

func TestValue(t *testing.T) {
	clk := fakeclock.New(time.Now())
	var (
		next    string
		nextErr error
		loads   int
		changes []error
	)
	v := New(Options{Name: "thing", Now: clk.Now, Every: time.Second, OnChange: func(err error) { changes = append(changes, err) }},
		func(context.Context) (string, bool, error) {
			loads++
			if nextErr != nil {
				return "", false, nextErr
			}
			if next == "" {
				return "", false, nil // unchanged
			}
			s := next
			next = ""
			return s, true, nil
		})
	ctx := context.Background()
	if _, ok := v.Current(); ok || !errors.Is(v.Err(), ErrNotLoaded) {
		t.Fatalf("before loading: ok %v, Err %v", ok, v.Err())
	}
	if err := v.Reload(ctx); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("a first load returning nothing: %v", err)
	}
	next = "one"
	if err := v.Reload(ctx); err != nil || v.Err() != nil {
		t.Fatalf("reload: %v / %v", err, v.Err())
	}
	for _, tc := range []struct {
		name    string
		advance time.Duration
		next    string
		err     error
		want    string
		wantErr bool
	}{
		{"not due", 0, "two", nil, "one", false},
		{"due: new value", time.Second, "", nil, "two", false},
		{"unchanged", time.Second, "", nil, "two", false},
		{"failure keeps the last good", time.Second, "", errors.New("bad edit"), "two", true},
		{"same failure again", time.Second, "", errors.New("bad edit"), "two", true},
		{"another failure", time.Second, "", errors.New("worse edit"), "two", true},
		{"recovery", time.Second, "three", nil, "three", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.next != "" {
				next = tc.next
			}
			nextErr = tc.err
			clk.Advance(tc.advance)
			got, ok := v.Get()
			if !ok || got != tc.want {
				t.Fatalf("Get = %q %v, want %q", got, ok, tc.want)
			}
			err := v.Err()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Err = %v", err)
			}
			if err != nil && (!strings.Contains(err.Error(), "thing") || !strings.Contains(err.Error(), "stays in force")) {
				t.Fatalf("Err does not say what and that the last good serves: %v", err)
			}
		})
	}
	// Each change of state once: the empty first load, its recovery, the
	// bad edit (once, though seen twice), the worse one, the recovery.
	var got []string
	for _, e := range changes {
		got = append(got, fmt.Sprint(e))
	}
	if want := "reload: not loaded: thing: the first load returned nothing|<nil>|bad edit|worse edit|<nil>"; strings.Join(got, "|") != want {
		t.Fatalf("changes %q\nwant %q", strings.Join(got, "|"), want)
	}
	v.Publish("mine")
	if got, _ := v.Current(); got != "mine" {
		t.Fatalf("Publish: %q", got)
	}
}

func TestValueRun(t *testing.T) {
	var mu sync.Mutex
	n := 0
	v := New(Options{}, func(context.Context) (int, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		return n, true, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	trigger := make(chan struct{})
	done := make(chan struct{})
	go func() { v.Run(ctx, 0, trigger); close(done) }()
	trigger <- struct{}{}
	trigger <- struct{}{}
	cancel()
	<-done
	if got, _ := v.Current(); got < 1 {
		t.Fatalf("triggered loads not run: %d", got)
	}
}

func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f := &File{Path: path}
	if b, _, changed, err := f.ReadIfChanged(); err != nil || changed || b != nil {
		t.Fatalf("missing file: %q %v %v", b, changed, err)
	}
	os.WriteFile(path, []byte("a"), 0o600)
	b, fi, changed, err := f.ReadIfChanged()
	if err != nil || !changed || string(b) != "a" {
		t.Fatalf("new file: %q %v %v", b, changed, err)
	}
	if _, _, changed, _ := f.ReadIfChanged(); !changed {
		t.Fatal("not accepted yet: must read again")
	}
	f.Accept(fi)
	if _, _, changed, err := f.ReadIfChanged(); changed || err != nil {
		t.Fatalf("unchanged: %v %v", changed, err)
	}
	tmp := path + ".tmp"
	os.WriteFile(tmp, []byte("b"), 0o600)
	os.Rename(tmp, path) // same size, new inode
	if b, _, changed, _ := f.ReadIfChanged(); !changed || string(b) != "b" {
		t.Fatalf("renamed over: %q %v", b, changed)
	}
	os.Remove(path)
	if _, _, _, err := f.ReadIfChanged(); err == nil {
		t.Fatal("a deleted file must be an error, not empty")
	}
}
