package vault

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/quillpay/quill/internal/fakeclock"
	"github.com/quillpay/quill/internal/vaulttest"
	"github.com/quillpay/quill/keys"
)

func edPublic(tb testing.TB, id string) keys.PublicKey {
	tb.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return keys.PublicKey{ID: id, Public: pub}
}

func edPlatform(tb testing.TB, id string) keys.PrivateKey {
	tb.Helper()
	k, err := keys.Generate(keys.Ed25519, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return keys.NewPrivateKey(id, keys.Ed25519, k)
}

func newCache(tb testing.TB, src keys.Source, clk *fakeclock.Clock) *keys.Cache {
	tb.Helper()
	c, err := keys.NewCache(src, keys.CacheOptions{
		Name: fmt.Sprint(src), Now: clk.Now,
		RefreshEvery: 10 * time.Second, MaxStale: time.Minute, MissRefreshEvery: time.Second,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func rawClient(tb testing.TB, v *vaulttest.Vault) *api.Client {
	tb.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = v.Addr
	c, err := api.NewClient(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	c.SetToken(v.RootToken)
	return c
}

// Store, read, rotate, revoke: every change lands in Vault in the documented
// layout and reads back through the cache with the ring's rules.
func TestRoundTrip(t *testing.T) {
	v := vaulttest.Shared(t)
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	prefix := vaulttest.Prefix()
	s := openStore(t, v.Addr, v.RootToken, prefix, clk.Now)
	m := keys.Manager{Rings: s}

	p1 := edPlatform(t, "P1")
	if err := m.AddPlatformKey(bg, p1); err != nil {
		t.Fatal(err)
	}
	if err := m.AddPublicKey(bg, "M100", edPublic(t, "K1")); err != nil {
		t.Fatal(err)
	}
	if err := m.AddPublicKey(bg, keys.PayerOwner, edPublic(t, "J1")); err != nil {
		t.Fatal(err)
	}
	if err := m.AddPublicKey(bg, keys.AuditorOwner, edPublic(t, "A1")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := m.Rotate(bg, "M100", edPublic(t, "K2"), 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := m.RotatePlatform(bg, edPlatform(t, "P2"), 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := m.AddPublicKey(bg, "M100", edPublic(t, "K1")); !errors.Is(err, keys.ErrExists) {
		t.Fatalf("re-adding K1 = %v, want ErrExists", err)
	}

	c := newCache(t, s, clk)
	if err := c.Refresh(bg); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(bg); err != nil {
		t.Fatal(err)
	}
	k1, err := c.PublicKey(bg, "M100", "K1")
	if err != nil || k1.Status != keys.Retiring || k1.Version != 1 || !k1.NotAfter.Equal(clk.Now().Add(10*time.Minute)) {
		t.Fatalf("K1 after rotation = %+v, %v", k1, err)
	}
	if k2, err := c.PublicKey(bg, "M100", "K2"); err != nil || k2.Status != keys.Active || k2.Version != 2 {
		t.Fatalf("K2 = %+v, %v", k2, err)
	}
	for _, o := range []struct{ owner, id string }{{keys.PayerOwner, "J1"}, {keys.AuditorOwner, "A1"}} {
		if _, _, err := c.VerifyingKey(bg, o.owner, o.id, clk.Now()); err != nil {
			t.Errorf("%s/%s: %v", o.owner, o.id, err)
		}
	}

	// The platform private key came back from Vault, signs, and cannot be printed.
	pk, err := c.PlatformKey(bg)
	if err != nil || pk.ID() != "P2" {
		t.Fatalf("PlatformKey = %v, %v; want P2", pk, err)
	}
	sig, err := pk.Signer().Sign(rand.Reader, []byte("msg"), crypto.Hash(0))
	if err != nil || !ed25519.Verify(pk.Public().(ed25519.PublicKey), []byte("msg"), sig) {
		t.Fatalf("platform key from Vault does not sign: %v", err)
	}
	priv := pk.Signer().(ed25519.PrivateKey)
	for _, verb := range []string{"%v", "%+v", "%#v", "%x"} {
		if out := fmt.Sprintf(verb, pk); strings.Contains(out, fmt.Sprintf("%x", priv[:8])) || strings.Contains(out, "PRIVATE") {
			t.Fatalf("%s of the platform key shows material: %s", verb, out)
		}
	}
	if pub, _ := c.PlatformPublicKeys(bg); len(pub) != 2 || pub[0].ID != "P2" || pub[1].ID != "P1" {
		t.Fatalf("PlatformPublicKeys = %v; want P2 then P1 (in its overlap)", pub)
	}

	// Revoke: refused at once, on the next refresh, and final.
	if err := m.SetStatus(bg, "M100", "K1", keys.Revoked, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(bg); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.VerifyingKey(bg, "M100", "K1", clk.Now()); !errors.Is(err, keys.ErrRevoked) {
		t.Fatalf("revoked K1 verifies: %v", err)
	}
	if err := m.SetStatus(bg, "M100", "K1", keys.Active, time.Time{}); !errors.Is(err, keys.ErrRevoked) {
		t.Fatalf("reinstating K1 = %v, want ErrRevoked", err)
	}
	if err := m.SetMinVersion(bg, "M100", 2); err != nil {
		t.Fatal(err)
	}

	// The documented layout: one KV v2 secret per ring.
	raw, err := rawClient(t, v).KVv2(v.Mount).Get(bg, prefix+"/rings/M100")
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"format", "owner", "min_version", "versions"} {
		if _, ok := raw.Data[field]; !ok {
			t.Errorf("ring secret has no %q field: %v", field, keysOf(raw.Data))
		}
	}
	if raw.Data["owner"] != "M100" || fmt.Sprint(raw.Data["min_version"]) != "2" {
		t.Errorf("ring secret owner %v, min_version %v", raw.Data["owner"], raw.Data["min_version"])
	}
	if vs, _ := raw.Data["versions"].([]any); len(vs) != 2 {
		t.Errorf("ring secret has %d versions, want 2", len(vs))
	}
	if raw.VersionMetadata.Version != 4 { // add, rotate, revoke, min_version
		t.Errorf("ring secret is at KV version %d, want 4 (one write per change)", raw.VersionMetadata.Version)
	}
	plat, err := rawClient(t, v).KVv2(v.Mount).Get(bg, prefix+"/rings/"+keys.PlatformOwner)
	if err != nil {
		t.Fatal(err)
	}
	if vs, _ := plat.Data["versions"].([]any); len(vs) != 2 || !strings.Contains(fmt.Sprint(vs[0]), "PRIVATE KEY") {
		t.Errorf("platform ring does not hold its private keys")
	}
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Two rotations that race: the one that writes second read a version that
// is no longer current, so its check-and-set write fails with ErrConflict
// and the ring is as the winner left it.
func TestConcurrentRotationsConflict(t *testing.T) {
	v := vaulttest.Shared(t)
	s := openStore(t, v.Addr, v.RootToken, vaulttest.Prefix(), nil)
	m := keys.Manager{Rings: s}
	if err := m.AddPublicKey(bg, "M1", edPublic(t, "K1")); err != nil {
		t.Fatal(err)
	}

	// Deterministic interleaving: B rotates in full between A's read and A's write.
	errB := errors.New("unset")
	errA := s.EditRing(bg, "M1", func(r *keys.Ring, now time.Time) error {
		errB = m.Rotate(bg, "M1", edPublic(t, "KB"), time.Hour)
		return keys.Manager{Rings: ringOnly{r, now}}.Rotate(bg, "M1", edPublic(t, "KA"), time.Hour)
	})
	if errB != nil {
		t.Fatalf("rotation B = %v, want success", errB)
	}
	if !errors.Is(errA, keys.ErrConflict) {
		t.Fatalf("rotation A = %v, want ErrConflict", errA)
	}
	if !strings.Contains(errA.Error(), "M1") || !strings.Contains(errA.Error(), "retry") {
		t.Errorf("conflict error %q should name the ring and say to retry", errA)
	}
	rings, err := s.LoadRings(bg)
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := rings[0].Keys()
	if got := idsOf(ks); got != "KB:active,K1:retiring" {
		t.Fatalf("ring after the race = %s; want the winner's rotation only", got)
	}

	// Free-for-all: every rotation either lands or gets ErrConflict, and the
	// ring ends with exactly one active key and one version per winner.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := m.Rotate(bg, "M1", edPublic(t, fmt.Sprintf("R%d", i)), time.Hour)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case !errors.Is(err, keys.ErrConflict):
				t.Errorf("rotation R%d = %v, want success or ErrConflict", i, err)
			}
		}()
	}
	wg.Wait()
	rings, err = s.LoadRings(bg)
	if err != nil {
		t.Fatal(err)
	}
	ks, _ = rings[0].Keys()
	active := 0
	for _, k := range ks {
		if k.Status == keys.Active {
			active++
		}
	}
	if won < 1 || len(ks) != 2+won || active != 1 || rings[0].Latest() != len(ks) {
		t.Fatalf("after %d winning rotations: %s (latest %d)", won, idsOf(ks), rings[0].Latest())
	}
}

// ringOnly lets a test apply a Manager operation to a ring it holds.
type ringOnly struct {
	r   *keys.Ring
	now time.Time
}

func (o ringOnly) EditRing(_ context.Context, _ string, change func(*keys.Ring, time.Time) error) error {
	return change(o.r, o.now)
}

func idsOf(ks []keys.PublicKey) string {
	var out []string
	for _, k := range ks {
		out = append(out, k.ID+":"+string(k.Status))
	}
	return strings.Join(out, ",")
}

// A change that fails (bad input, a broken rule) writes nothing.
func TestFailedChangeLeavesVaultUnchanged(t *testing.T) {
	v := vaulttest.Shared(t)
	prefix := vaulttest.Prefix()
	s := openStore(t, v.Addr, v.RootToken, prefix, nil)
	m := keys.Manager{Rings: s}
	if err := m.AddPublicKey(bg, "M1", edPublic(t, "K1")); err != nil {
		t.Fatal(err)
	}
	kv := rawClient(t, v).KVv2(v.Mount)
	before, err := kv.Get(bg, prefix+"/rings/M1")
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func() error{
		"duplicate id":                func() error { return m.Rotate(bg, "M1", edPublic(t, "K1"), time.Hour) },
		"no public key":               func() error { return m.Rotate(bg, "M1", keys.PublicKey{ID: "K2"}, time.Hour) },
		"bad key id":                  func() error { return m.Rotate(bg, "M1", edPublic(t, "bad id!"), time.Hour) },
		"negative overlap":            func() error { return m.Rotate(bg, "M1", edPublic(t, "K2"), -time.Second) },
		"unknown key":                 func() error { return m.SetStatus(bg, "M1", "NOPE", keys.Revoked, time.Time{}) },
		"min above latest":            func() error { return m.SetMinVersion(bg, "M1", 5) },
		"platform key without signer": func() error { return m.AddPlatformKey(bg, keys.PrivateKey{}) },
	} {
		if err := change(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	after, err := kv.Get(bg, prefix+"/rings/M1")
	if err != nil {
		t.Fatal(err)
	}
	if after.VersionMetadata.Version != before.VersionMetadata.Version {
		t.Fatalf("ring went from KV version %d to %d after only failed changes", before.VersionMetadata.Version, after.VersionMetadata.Version)
	}
	if _, err := kv.Get(bg, prefix+"/rings/"+keys.PlatformOwner); !errors.Is(err, api.ErrSecretNotFound) {
		t.Fatalf("a failed platform change created the platform ring: %v", err)
	}

	// Vault goes away between the read and the write of a rotation: the
	// rotation fails with ErrUnavailable and, once Vault is back, the ring is
	// as it was.
	proxy := vaulttest.NewProxy(t, v.Addr)
	ps := openStore(t, proxy.URL(), v.RootToken, prefix, nil)
	err = ps.EditRing(bg, "M1", func(r *keys.Ring, now time.Time) error {
		proxy.Cut()
		return keys.Manager{Rings: ringOnly{r, now}}.Rotate(bg, "M1", edPublic(t, "K2"), time.Hour)
	})
	if !errors.Is(err, keys.ErrUnavailable) {
		t.Fatalf("rotation with Vault cut before the write = %v, want ErrUnavailable", err)
	}
	proxy.Restore(t)
	rings, err := ps.LoadRings(bg)
	if err != nil {
		t.Fatal(err)
	}
	if ks, _ := rings[0].Keys(); idsOf(ks) != "K1:active" {
		t.Fatalf("ring after a rotation that could not be written: %s", idsOf(ks))
	}
}

// Vault goes away during refreshes: the last good keys serve until the
// staleness limit, then ErrUnavailable; ready again once it is back.
func TestVaultStoppedDuringRefresh(t *testing.T) {
	v := vaulttest.Shared(t)
	proxy := vaulttest.NewProxy(t, v.Addr)
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s := openStore(t, proxy.URL(), v.RootToken, vaulttest.Prefix(), clk.Now)
	m := keys.Manager{Rings: s}
	if err := m.AddPlatformKey(bg, edPlatform(t, "P1")); err != nil {
		t.Fatal(err)
	}
	if err := m.AddPublicKey(bg, "M1", edPublic(t, "K1")); err != nil {
		t.Fatal(err)
	}
	c := newCache(t, s, clk)
	if err := c.Refresh(bg); err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	clk.Advance(10 * time.Second)
	err := c.Refresh(bg)
	if !errors.Is(err, keys.ErrUnavailable) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Refresh with Vault cut = %v; want ErrUnavailable, unreachable", err)
	}
	if strings.Contains(err.Error(), v.RootToken) {
		t.Fatal("the error quotes the token")
	}
	clk.Advance(40 * time.Second) // 50s after the last good load
	if _, _, err := c.VerifyingKey(bg, "M1", "K1", clk.Now()); err != nil {
		t.Fatalf("within the staleness limit K1 = %v; want the last good key", err)
	}
	if _, err := c.PlatformKey(bg); err != nil {
		t.Fatalf("within the staleness limit PlatformKey = %v", err)
	}
	ready := c.Ready(bg)
	if ready == nil || !strings.Contains(ready.Error(), "unreachable") || !strings.Contains(ready.Error(), proxy.URL()) {
		t.Fatalf("Ready = %v; want not ready, naming Vault and the error class", ready)
	}
	// An unknown key id asks Vault (rate-limited) and still answers not found.
	if _, err := c.PublicKey(bg, "M1", "NEW"); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("unknown id with Vault cut = %v, want ErrNotFound", err)
	}

	clk.Advance(10 * time.Second) // the limit
	if _, _, err := c.VerifyingKey(bg, "M1", "K1", clk.Now()); !errors.Is(err, keys.ErrUnavailable) {
		t.Fatalf("past the staleness limit K1 = %v, want ErrUnavailable", err)
	}
	if _, err := c.PlatformKey(bg); !errors.Is(err, keys.ErrUnavailable) {
		t.Fatalf("past the staleness limit PlatformKey = %v, want ErrUnavailable", err)
	}

	proxy.Restore(t)
	if err := c.Refresh(bg); err != nil {
		t.Fatalf("Refresh after Vault is back = %v", err)
	}
	if err := c.Ready(bg); err != nil {
		t.Fatalf("Ready after Vault is back = %v", err)
	}
	if _, _, err := c.VerifyingKey(bg, "M1", "K1", clk.Now()); err != nil {
		t.Fatalf("after Vault is back K1 = %v", err)
	}
}

// Vault unreachable at start: not ready, nothing served.
func TestUnavailableAtStart(t *testing.T) {
	v := vaulttest.Shared(t)
	proxy := vaulttest.NewProxy(t, v.Addr)
	proxy.Cut()
	clk := fakeclock.New(time.Now())
	s := openStore(t, proxy.URL(), v.RootToken, vaulttest.Prefix(), clk.Now)
	c := newCache(t, s, clk)
	if err := c.Refresh(bg); !errors.Is(err, keys.ErrUnavailable) {
		t.Fatalf("Refresh = %v, want ErrUnavailable", err)
	}
	if err := c.Ready(bg); err == nil || !strings.Contains(err.Error(), "no keys loaded") || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Ready = %v; want not ready: no keys loaded, unreachable", err)
	}
	if _, err := c.PlatformKey(bg); !errors.Is(err, keys.ErrUnavailable) {
		t.Fatalf("PlatformKey = %v, want ErrUnavailable", err)
	}
	if _, err := c.PublicKey(bg, "M1", "K1"); !errors.Is(err, keys.ErrUnavailable) {
		t.Fatalf("PublicKey = %v, want ErrUnavailable", err)
	}
}

// Vault sealed at start, then unsealed; sealed again later.
func TestSealed(t *testing.T) {
	v := vaulttest.Start(t)
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s := openStore(t, v.Addr, v.RootToken, "", clk.Now)
	if err := (keys.Manager{Rings: s}).AddPlatformKey(bg, edPlatform(t, "P1")); err != nil {
		t.Fatal(err)
	}
	v.Seal(t)
	c := newCache(t, s, clk)
	err := c.Refresh(bg)
	if !errors.Is(err, keys.ErrUnavailable) || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("Refresh on a sealed Vault = %v; want ErrUnavailable, sealed", err)
	}
	if _, err := c.PlatformKey(bg); !errors.Is(err, keys.ErrUnavailable) {
		t.Fatalf("PlatformKey with Vault sealed at start = %v, want ErrUnavailable", err)
	}
	if err := c.Ready(bg); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("Ready = %v; want not ready, sealed", err)
	}

	v.Unseal(t)
	if err := c.Refresh(bg); err != nil {
		t.Fatalf("Refresh after unseal = %v", err)
	}
	if k, err := c.PlatformKey(bg); err != nil || k.ID() != "P1" {
		t.Fatalf("PlatformKey after unseal = %v, %v", k, err)
	}

	v.Seal(t)
	clk.Advance(30 * time.Second)
	if err := c.Refresh(bg); err == nil {
		t.Fatal("Refresh on a sealed Vault succeeded")
	}
	if _, err := c.PlatformKey(bg); err != nil {
		t.Fatalf("sealed within the staleness limit: PlatformKey = %v", err)
	}
	if err := c.Ready(bg); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("Ready = %v; want not ready, sealed", err)
	}
}

// AppRole: log in, keep the short-lived token alive, and never quote the
// secret id.
func TestAppRoleLoginAndRenewal(t *testing.T) {
	v := vaulttest.Start(t, "-approle", "-approle-token-ttl", "2s")
	renewed := make(chan struct{}, 16)
	s, err := Open(Config{
		Address: v.Addr, AppRole: AppRole{RoleID: v.RoleID, SecretID: v.SecretID},
		OnRenew: func() { renewed <- struct{}{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := keys.Manager{Rings: s}
	if err := m.AddPublicKey(bg, "M1", edPublic(t, "K1")); err != nil {
		t.Fatal(err)
	}
	// The token the login returned lives on, through renewals, past three
	// of its 2s TTLs. (Without renewal the store would log in again, so
	// look at that first token itself.)
	first := s.c.Token()
	start := time.Now()
	for n := 0; n < 2 || time.Since(start) < 6*time.Second; n++ {
		select {
		case <-renewed:
		case <-time.After(30 * time.Second):
			t.Fatal("the token was not renewed")
		}
	}
	look, err := rawClient(t, v).Auth().Token().Lookup(first)
	if err != nil {
		t.Fatalf("the first AppRole token is gone after %s: %v", time.Since(start).Round(time.Second), err)
	}
	if ttl, _ := look.TokenTTL(); ttl <= 0 {
		t.Fatalf("first token TTL %s", ttl)
	}
	if s.c.Token() != first {
		t.Fatal("the store logged in again instead of renewing")
	}
	if rings, err := s.LoadRings(bg); err != nil || len(rings) != 1 {
		t.Fatalf("LoadRings after the first token's TTL = %v, %v", rings, err)
	}
	if got := fmt.Sprintf("%v %+v", s, s.cfg); strings.Contains(got, v.SecretID) {
		t.Fatalf("the store prints its secret id: %s", got)
	}

	bad, err := Open(Config{Address: v.Addr, AppRole: AppRole{RoleID: v.RoleID, SecretID: "wrong-" + v.SecretID}})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.LoadRings(bg)
	if !errors.Is(err, keys.ErrUnavailable) || !strings.Contains(err.Error(), "approle login") {
		t.Fatalf("LoadRings with a wrong secret id = %v; want ErrUnavailable from the login", err)
	}
	if strings.Contains(err.Error(), v.SecretID) {
		t.Fatal("the login error quotes the secret id")
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no address":     {Token: "t"},
		"not a URL":      {Address: "127.0.0.1:8200", Token: "t"},
		"no credentials": {Address: "http://127.0.0.1:8200"},
		"half approle":   {Address: "http://127.0.0.1:8200", AppRole: AppRole{RoleID: "r"}},
		"dotdot prefix":  {Address: "http://127.0.0.1:8200", Token: "t", Prefix: "../sys"},
	} {
		if _, err := Open(cfg); !errors.Is(err, keys.ErrInvalid) {
			t.Errorf("%s: Open = %v, want ErrInvalid", name, err)
		}
	}
}
