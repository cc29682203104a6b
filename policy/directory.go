package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quillpay/quill/internal/atomicfile"
)

// directoryCheckInterval is how often FileDirectory looks at the file's mtime.
const directoryCheckInterval = time.Second

// directoryFile is the on-disk form of a FileDirectory.
type directoryFile struct {
	Merchants []Merchant `json:"merchants"`
}

// FileDirectory is a Directory backed by a JSON file {"merchants":[...]}. It
// notices changes to the file (checking its mtime, size and identity at most
// once per second, from the goroutine that looks a merchant up) and reloads
// it; if the new file is invalid it keeps serving the last good copy and
// reports the problem through LoadError. It is safe for concurrent use.
// Merchants it returns share their Rules.Currencies slice with the directory
// and must be treated as read-only.
type FileDirectory struct {
	// Now is the clock used to pace change checks; nil means time.Now. Set it
	// before first use.
	Now func() time.Time

	path      string
	state     atomic.Pointer[directoryState]
	nextCheck atomic.Int64 // unix nanoseconds
	mu        sync.Mutex   // serializes reloads
	seen      fs.FileInfo  // stat of the last file read, good or bad; under mu
	seenErr   error        // why that file was rejected, nil if it loaded; under mu
}

type directoryState struct {
	merchants map[string]Merchant
	loadErr   error // last reload failure, nil once a good file is loaded
}

// LoadDirectory reads the merchant file at path and validates every merchant
// (ValidateMerchant, ids unique). The first load must succeed.
func LoadDirectory(path string) (*FileDirectory, error) {
	d := &FileDirectory{path: path}
	fi, ms, err := readDirectory(path)
	if err != nil {
		return nil, err
	}
	d.seen = fi
	d.state.Store(&directoryState{merchants: ms})
	return d, nil // nextCheck 0: the first lookup checks the file, pacing by d.Now from then on
}

func (d *FileDirectory) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Merchant returns the profile of id, or an error wrapping ErrUnknownMerchant.
func (d *FileDirectory) Merchant(ctx context.Context, id string) (Merchant, error) {
	d.maybeReload()
	m, ok := d.state.Load().merchants[id]
	if !ok {
		return Merchant{}, fmt.Errorf("%w: %q", ErrUnknownMerchant, id)
	}
	return m, nil
}

// Merchants returns every merchant, sorted by id.
func (d *FileDirectory) Merchants() []Merchant {
	d.maybeReload()
	ms := d.state.Load().merchants
	out := make([]Merchant, 0, len(ms))
	for _, m := range ms {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Merchant) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// LoadError returns why the latest change to the file could not be loaded, or
// nil if the directory serves the file's current contents.
func (d *FileDirectory) LoadError() error {
	return d.state.Load().loadErr
}

// Reload checks the file now, whatever the pacing, and loads it if it
// changed. It returns the load error, if any; the last good copy stays in use.
func (d *FileDirectory) Reload() error {
	d.nextCheck.Store(d.now().Add(directoryCheckInterval).UnixNano())
	return d.reload()
}

func (d *FileDirectory) maybeReload() {
	now := d.now().UnixNano()
	next := d.nextCheck.Load()
	if now < next || !d.nextCheck.CompareAndSwap(next, now+int64(directoryCheckInterval)) {
		return
	}
	d.reload()
}

func (d *FileDirectory) reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur := d.state.Load()
	fi, err := os.Stat(d.path)
	if err != nil {
		d.state.Store(&directoryState{merchants: cur.merchants, loadErr: err})
		return err
	}
	if d.seen != nil && os.SameFile(d.seen, fi) && fi.ModTime().Equal(d.seen.ModTime()) && fi.Size() == d.seen.Size() {
		if cur.loadErr != d.seenErr { // e.g. the file vanished and came back unchanged
			d.state.Store(&directoryState{merchants: cur.merchants, loadErr: d.seenErr})
		}
		return d.seenErr
	}
	rfi, ms, err := readDirectory(d.path)
	if rfi != nil {
		d.seen, d.seenErr = rfi, err // a bad file is not re-read until it changes again
	}
	if err != nil {
		d.state.Store(&directoryState{merchants: cur.merchants, loadErr: err})
		return err
	}
	d.state.Store(&directoryState{merchants: ms})
	return nil
}

// readDirectory reads and validates the file; fi is its stat when it could be
// opened, even if the content is invalid.
func readDirectory(path string) (fs.FileInfo, map[string]Merchant, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("policy: merchant directory: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("policy: merchant directory: %w", err)
	}
	var df directoryFile
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&df); err != nil {
		return fi, nil, fmt.Errorf("policy: merchant directory %s: %w", path, err)
	}
	if dec.More() {
		return fi, nil, fmt.Errorf("policy: merchant directory %s: trailing data", path)
	}
	ms := make(map[string]Merchant, len(df.Merchants))
	for _, m := range df.Merchants {
		if err := ValidateMerchant(m); err != nil {
			return fi, nil, fmt.Errorf("policy: merchant directory %s: %w", path, err)
		}
		if _, dup := ms[m.ID]; dup {
			return fi, nil, fmt.Errorf("policy: merchant directory %s: %w: duplicate merchant id %q", path, ErrRules, m.ID)
		}
		ms[m.ID] = m
	}
	return fi, ms, nil
}

// ValidateMerchant checks a merchant profile: id matches ^[A-Za-z0-9_-]{1,32}$,
// fee_bps is within 0..10000 and the rules compile. Errors wrap ErrRules.
func ValidateMerchant(m Merchant) error {
	if !validMerchantID(m.ID) {
		return fmt.Errorf("%w: merchant id %q must match ^[A-Za-z0-9_-]{1,32}$", ErrRules, m.ID)
	}
	if m.FeeBps < 0 || m.FeeBps > 10000 {
		return fmt.Errorf("%w: merchant %q: fee_bps %d outside 0..10000", ErrRules, m.ID, m.FeeBps)
	}
	if _, err := m.Rules.Compile(); err != nil {
		return fmt.Errorf("merchant %q: %w", m.ID, err)
	}
	return nil
}

func validMerchantID(s string) bool {
	// A leading "_" is reserved for the key store's own owners (_platform,
	// _payer): a merchant by that name could register payer-token keys.
	return len(s) <= 32 && validUserID(s) && s[0] != '_' && s[0] != '-'
}

// SaveMerchant adds m to the merchant file at path, replacing any merchant
// with the same id, creating the file if it does not exist. The file is
// rewritten atomically (temporary file, fsync, rename) with mode 0600, so a
// running FileDirectory sees either the old or the new file. Concurrent
// SaveMerchant calls on one file are serialized by a lock file (path.lock).
func SaveMerchant(path string, m Merchant) error {
	if err := ValidateMerchant(m); err != nil {
		return err
	}
	unlock, err := atomicfile.Lock(path + ".lock")
	if err != nil {
		return fmt.Errorf("policy: save merchant: %w", err)
	}
	defer unlock()
	var df directoryFile
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("policy: save merchant: %w", err)
	default:
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&df); err != nil {
			return fmt.Errorf("policy: save merchant: existing file %s: %w", path, err)
		}
	}
	i := slices.IndexFunc(df.Merchants, func(x Merchant) bool { return x.ID == m.ID })
	if i >= 0 {
		df.Merchants[i] = m
	} else {
		df.Merchants = append(df.Merchants, m)
	}
	slices.SortFunc(df.Merchants, func(a, b Merchant) int { return strings.Compare(a.ID, b.ID) })
	out, err := json.MarshalIndent(df, "", "  ")
	if err != nil {
		return fmt.Errorf("policy: save merchant: %w", err)
	}
	if err := atomicfile.Write(path, append(out, '\n'), 0o600); err != nil {
		return fmt.Errorf("policy: save merchant: %w", err)
	}
	return nil
}
