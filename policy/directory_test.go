package policy

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/fakeclock"
)

func writeFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// lookup returns the merchant's name, or the error text.
func lookup(tb testing.TB, d *FileDirectory, id string) string {
	tb.Helper()
	m, err := d.Merchant(context.Background(), id)
	if err != nil {
		return err.Error()
	}
	return m.Name
}

func TestLoadDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "merchants.json")
	writeFile(t, path, `{"merchants":[
		{"id":"M100","name":"Cafe","can_deposit":true,"fee_bps":60,"rules":{}},
		{"id":"M200","name":"Shop","fee_bps":0,"rules":{"currencies":["USD","JPY"],"min_amount":"1","max_amount":"500","order_id_pattern":"^[a-z]+$"}}
	]}`)
	d, err := LoadDirectory(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := d.Merchant(context.Background(), "M200")
	if err != nil || m.Name != "Shop" || m.Rules.MaxAmount != "500" || len(m.Rules.Currencies) != 2 {
		t.Fatalf("Merchant(M200) = %+v, %v", m, err)
	}
	if _, err := d.Merchant(context.Background(), "M999"); !errors.Is(err, ErrUnknownMerchant) {
		t.Fatalf("Merchant(M999) error = %v; want ErrUnknownMerchant", err)
	}
	if got := d.Merchants(); len(got) != 2 || got[0].ID != "M100" || got[1].ID != "M200" {
		t.Fatalf("Merchants() = %+v", got)
	}
	if err := d.LoadError(); err != nil {
		t.Fatalf("LoadError() = %v", err)
	}
}

func TestLoadDirectoryInvalid(t *testing.T) {
	tests := map[string]string{
		"not json":        `{"merchants":[`,
		"unknown field":   `{"merchants":[{"id":"M1","fees":1}]}`,
		"trailing data":   `{"merchants":[]} {}`,
		"bad id":          `{"merchants":[{"id":"M 1"}]}`,
		"empty id":        `{"merchants":[{"id":""}]}`,
		"long id":         `{"merchants":[{"id":"M123456789012345678901234567890123"}]}`,
		"fee too high":    `{"merchants":[{"id":"M1","fee_bps":10001}]}`,
		"negative fee":    `{"merchants":[{"id":"M1","fee_bps":-1}]}`,
		"bad pattern":     `{"merchants":[{"id":"M1","rules":{"order_id_pattern":"("}}]}`,
		"bad currency":    `{"merchants":[{"id":"M1","rules":{"currencies":["XXX"]}}]}`,
		"min above max":   `{"merchants":[{"id":"M1","rules":{"min_amount":"9","max_amount":"1"}}]}`,
		"duplicate id":    `{"merchants":[{"id":"M1"},{"id":"M1"}]}`,
		"amount number":   `{"merchants":[{"id":"M1","rules":{"min_amount":1}}]}`,
		"fee as a string": `{"merchants":[{"id":"M1","fee_bps":"60"}]}`,
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.json")
			writeFile(t, path, content)
			if d, err := LoadDirectory(path); err == nil {
				t.Fatalf("LoadDirectory accepted %s: %+v", content, d.Merchants())
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		if _, err := LoadDirectory(filepath.Join(t.TempDir(), "nope.json")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error = %v; want fs.ErrNotExist", err)
		}
	})
}

func TestFileDirectoryReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "merchants.json")
	writeFile(t, path, `{"merchants":[{"id":"M1","name":"v1"}]}`)
	d, err := LoadDirectory(path)
	if err != nil {
		t.Fatal(err)
	}
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	d.Now = clock.Now
	if got := lookup(t, d, "M1"); got != "v1" {
		t.Fatalf("M1 = %q", got)
	}

	if err := SaveMerchant(path, Merchant{ID: "M1", Name: "v2"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(500 * time.Millisecond)
	if got := lookup(t, d, "M1"); got != "v1" {
		t.Fatalf("before the check interval M1 = %q; want v1 (checked at most once per second)", got)
	}
	clock.Advance(500 * time.Millisecond)
	if got := lookup(t, d, "M1"); got != "v2" {
		t.Fatalf("after a second M1 = %q; want v2", got)
	}

	// An invalid file keeps the last good copy and reports why.
	writeFile(t, path, `{"merchants":[{"id":"M1","name":"v3","fee_bps":20000}]}`)
	clock.Advance(time.Second)
	if got := lookup(t, d, "M1"); got != "v2" {
		t.Fatalf("after a bad file M1 = %q; want v2", got)
	}
	if err := d.LoadError(); !errors.Is(err, ErrRules) {
		t.Fatalf("LoadError() = %v; want ErrRules", err)
	}
	clock.Advance(time.Second)
	lookup(t, d, "M1")
	if err := d.LoadError(); !errors.Is(err, ErrRules) {
		t.Fatalf("unchanged bad file: LoadError() = %v; want it kept", err)
	}

	// A vanished file too.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if got := lookup(t, d, "M1"); got != "v2" {
		t.Fatalf("after removal M1 = %q; want v2", got)
	}
	if err := d.LoadError(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadError() = %v; want fs.ErrNotExist", err)
	}

	// Fixed: the new content is served and the error cleared.
	if err := SaveMerchant(path, Merchant{ID: "M2", Name: "new"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatalf("Reload() = %v", err)
	}
	if got := lookup(t, d, "M2"); got != "new" || d.LoadError() != nil {
		t.Fatalf("after fix M2 = %q, LoadError() = %v", got, d.LoadError())
	}
	if _, err := d.Merchant(context.Background(), "M1"); !errors.Is(err, ErrUnknownMerchant) {
		t.Fatalf("M1 after fix: %v; want ErrUnknownMerchant (not in the new file)", err)
	}
}

func TestFileDirectoryConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "merchants.json")
	if err := SaveMerchant(path, Merchant{ID: "M1", Name: "v0"}); err != nil {
		t.Fatal(err)
	}
	d, err := LoadDirectory(path)
	if err != nil {
		t.Fatal(err)
	}
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	d.Now = clock.Now
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if _, err := d.Merchant(context.Background(), "M1"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 20 {
		if err := SaveMerchant(path, Merchant{ID: "M1", Name: "v" + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	wg.Wait()
	clock.Advance(time.Second)
	if got := lookup(t, d, "M1"); got != "vt" {
		t.Fatalf("final M1 = %q; want vt", got)
	}
}

func TestSaveMerchant(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "merchants.json")
	for _, m := range []Merchant{
		{ID: "M2", Name: "two", FeeBps: 10},
		{ID: "M1", Name: "one", CanDeposit: true, Rules: Rules{Currencies: []string{"CNY", "USD"}}},
		{ID: "M2", Name: "two again", FeeBps: 20},
	} {
		if err := SaveMerchant(path, m); err != nil {
			t.Fatalf("SaveMerchant(%s): %v", m.ID, err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v; want 0600", fi.Mode().Perm())
	}
	d, err := LoadDirectory(path)
	if err != nil {
		t.Fatal(err)
	}
	ms := d.Merchants()
	if len(ms) != 2 || ms[0].ID != "M1" || !ms[0].CanDeposit || len(ms[0].Rules.Currencies) != 2 || ms[1].Name != "two again" || ms[1].FeeBps != 20 {
		t.Fatalf("merchants = %+v", ms)
	}

	before, _ := os.ReadFile(path)
	for name, m := range map[string]Merchant{
		"bad id":    {ID: "a/b"},
		"bad fee":   {ID: "M3", FeeBps: 10001},
		"bad rules": {ID: "M3", Rules: Rules{MaxAmount: "abc"}},
	} {
		if err := SaveMerchant(path, m); err == nil {
			t.Fatalf("SaveMerchant accepted %s", name)
		}
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("a rejected merchant changed the file")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != filepath.Base(path) && e.Name() != filepath.Base(path)+".lock" {
			t.Fatalf("directory holds %s; want only the merchant file and its lock (no temp files)", e.Name())
		}
	}

	writeFile(t, path, "garbage")
	if err := SaveMerchant(path, Merchant{ID: "M9"}); err == nil {
		t.Fatal("SaveMerchant overwrote an unreadable file")
	}
}

func TestReservedMerchantIDs(t *testing.T) {
	for _, id := range []string{"_payer", "_platform", "-x"} {
		if err := ValidateMerchant(Merchant{ID: id}); err == nil {
			t.Errorf("merchant id %q accepted; a leading _ or - is reserved", id)
		}
	}
	if err := ValidateMerchant(Merchant{ID: "M_1-a"}); err != nil {
		t.Errorf("ordinary id refused: %v", err)
	}
}
