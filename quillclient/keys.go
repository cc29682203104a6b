package quillclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/quillpay/quill/keys"
)

// DefaultRefetchInterval is how long a key id that a fetch did not find stays
// unknown before another response naming it may trigger another fetch. A
// response naming a new id (after a platform-key rotation) triggers a fetch at
// once; a flood of responses naming a bogus id costs the server one listing per
// interval, and distinct bogus ids at most one per second.
const DefaultRefetchInterval = 30 * time.Second

// minFetchGap is the least time between a fetch that found nothing new and the
// next; maxMisses bounds the memory of ids not found.
const (
	minFetchGap = time.Second
	maxMisses   = 1024
)

// CertificatesPath is where Quill publishes its platform keys.
const CertificatesPath = "/v1/certificates"

// maxListing bounds the platform key listing; it is a few kilobytes.
const maxListing = 1 << 20

// keyCache holds platform keys by listing URL (one per Quill deployment) and
// fetches them when a response names an id it does not know.
type keyCache struct {
	pinned   map[string]PlatformKey // non-nil: never fetch
	interval time.Duration
	now      func() time.Time
	fetch    func(ctx context.Context, url string) (map[string]PlatformKey, error)

	mu   sync.Mutex
	sets map[string]*keySet
}

type keySet struct {
	fetching sync.Mutex // one fetch at a time; lookups of known ids do not wait

	mu       sync.Mutex
	keys     map[string]PlatformKey
	misses   map[string]time.Time // ids a fetch did not find, and when
	lastMiss time.Time            // the latest fetch that did not find its id
}

func (s *keySet) get(id string) (PlatformKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	return k, ok
}

func (c *keyCache) set(url string) *keySet {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sets[url]
	if !ok {
		s = &keySet{}
		c.sets[url] = s
	}
	return s
}

// source is the KeySource for responses from the deployment listing its keys
// at url.
func (c *keyCache) source(url string) KeySource { return keySource{c, url} }

type keySource struct {
	c   *keyCache
	url string
}

func (s keySource) PlatformKey(ctx context.Context, id string) (PlatformKey, error) {
	return s.c.lookup(ctx, s.url, id)
}

func (c *keyCache) lookup(ctx context.Context, url, id string) (PlatformKey, error) {
	if c.pinned != nil {
		if k, ok := c.pinned[id]; ok {
			return k, nil
		}
		return PlatformKey{}, fmt.Errorf("%w: %q is not among the pinned keys", ErrUnknownKey, id)
	}
	s := c.set(url)
	if k, ok := s.get(id); ok {
		return k, nil
	}
	s.fetching.Lock()
	defer s.fetching.Unlock()
	if k, ok := s.get(id); ok { // fetched while we waited
		return k, nil
	}
	now := c.now()
	s.mu.Lock()
	if at, ok := s.misses[id]; ok && now.Sub(at) < c.interval {
		s.mu.Unlock()
		return PlatformKey{}, fmt.Errorf("%w: %q (not listed %s ago; next fetch for it after %s)", ErrUnknownKey, id, now.Sub(at).Round(time.Second), c.interval)
	}
	if !s.lastMiss.IsZero() && now.Sub(s.lastMiss) < min(minFetchGap, c.interval) {
		s.mu.Unlock()
		return PlatformKey{}, fmt.Errorf("%w: %q (a fetch found nothing new under a second ago)", ErrUnknownKey, id)
	}
	s.mu.Unlock()

	ks, err := c.fetch(ctx, url)
	if err != nil && ctx.Err() != nil {
		// The caller gave up (cancel, deadline): that says nothing about
		// the server, so it must not hold back the next caller's fetch.
		return PlatformKey{}, fmt.Errorf("quillclient: fetch platform keys: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.keys = ks // replace: a key Quill no longer lists is no longer trusted
		if k, ok := s.keys[id]; ok {
			return k, nil
		}
	}
	// A failed fetch is rate-limited like a fruitless one.
	if s.misses == nil || len(s.misses) >= maxMisses {
		s.misses = map[string]time.Time{}
	}
	s.misses[id], s.lastMiss = now, now
	if err != nil {
		return PlatformKey{}, fmt.Errorf("quillclient: fetch platform keys: %w", err)
	}
	return PlatformKey{}, fmt.Errorf("%w: %q is not listed by %s", ErrUnknownKey, id, url)
}

// fetchKeys is keyCache.fetch for a Transport: a signed GET of the listing whose
// response must verify, with the scheme's verifier, under a key it lists. The
// trust anchor is the server's TLS certificate; the self-signature proves the
// listing came out of Quill whole.
func (t *Transport) fetchKeys(ctx context.Context, url string) (map[string]PlatformKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if err := t.signer.SignRequest(req, nil); err != nil {
		return nil, err
	}
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := readAll(res.Body, maxListing)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	found, err := parseListing(body)
	if err != nil {
		return nil, err
	}
	if err := t.verifier.VerifyResponse(ctx, req, res, body, staticKeys(found)); err != nil {
		return nil, fmt.Errorf("the key listing's own signature: %w", err)
	}
	return found, nil
}

// parseListing reads GET /v1/certificates:
//
//	{"data":[{"serial_no":"…","algorithm":"rsa-v1_5-sha256","public_key":"-----BEGIN PUBLIC KEY-----…"}]}
//
// Entries whose key does not parse (a type this client does not know) are
// left out; they cannot verify anything here.
func parseListing(body []byte) (map[string]PlatformKey, error) {
	var list struct {
		Data []struct {
			SerialNo  string `json:"serial_no"`
			Algorithm string `json:"algorithm"`
			PublicKey string `json:"public_key"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("key listing: %w", err)
	}
	found := make(map[string]PlatformKey, len(list.Data))
	for _, d := range list.Data {
		pub, err := keys.ParsePublicKeyPEM([]byte(d.PublicKey))
		if err != nil || d.SerialNo == "" {
			continue
		}
		found[d.SerialNo] = PlatformKey{ID: d.SerialNo, Algorithm: d.Algorithm, Public: pub}
	}
	if len(found) == 0 {
		return nil, errors.New("key listing has no usable key")
	}
	return found, nil
}

// staticKeys is a KeySource over a fixed set.
type staticKeys map[string]PlatformKey

func (s staticKeys) PlatformKey(_ context.Context, id string) (PlatformKey, error) {
	if k, ok := s[id]; ok {
		return k, nil
	}
	return PlatformKey{}, fmt.Errorf("%w: %q", ErrUnknownKey, id)
}

// readAll reads r to the end, failing with ErrResponseTooLarge past limit bytes.
func readAll(r io.Reader, limit int64) ([]byte, error) {
	var b bytes.Buffer
	n, err := b.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: over %d bytes", ErrResponseTooLarge, limit)
	}
	return b.Bytes(), nil
}
