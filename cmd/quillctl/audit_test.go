package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/ledger/postgres"
	"github.com/quillpay/quill/merchant"
	merchantpg "github.com/quillpay/quill/merchant/postgres"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/signing"
)

// auditEnv is a dev directory, a real ledger with signed entries, and the
// auditor API over it on a loopback TLS server.
type auditEnv struct {
	dir    string
	reg    *merchantpg.Store
	dsn    string
	store  *postgres.Store
	ks     *keys.FileStore
	client *auditClient
	// cutAfter, when positive, aborts the next journal response after that
	// many body bytes: an interrupted export.
	cutAfter atomic.Int64
}

// auditorKeyStore and platformKeys adapt the dev key store as cmd/quill does.
type auditorKeyStore struct{ ks *keys.FileStore }

func (a auditorKeyStore) AuditorKey(ctx context.Context, kid string) (crypto.PublicKey, error) {
	k, err := a.ks.PublicKey(ctx, keys.AuditorOwner, kid)
	if err != nil {
		return nil, err
	}
	return k.Public, nil
}

type platformKeys struct{ ks *keys.FileStore }

func (p platformKeys) PlatformKeyHistory(ctx context.Context) ([]keys.PublicKey, error) {
	return p.ks.PublicKeys(ctx, keys.PlatformOwner)
}

func (p platformKeys) CheckpointKey(ctx context.Context, id string) (crypto.PublicKey, error) {
	k, err := p.ks.PublicKey(ctx, keys.PlatformOwner, id)
	return k.Public, err
}

type cutWriter struct {
	http.ResponseWriter
	left *atomic.Int64
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if n := c.left.Load(); n > 0 && int64(len(b)) >= n {
		c.ResponseWriter.Write(b[:n])
		c.left.Store(0)
		c.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	c.left.Add(-int64(len(b)))
	return c.ResponseWriter.Write(b)
}

func (c *cutWriter) Flush() { c.ResponseWriter.(http.Flusher).Flush() }

func newAuditEnv(t *testing.T) *auditEnv {
	t.Helper()
	env := &auditEnv{dir: t.TempDir(), dsn: testenv.Postgres(t)}
	now := time.Now()
	if err := devenv.Init(env.dir, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reg, err := devenv.OpenRegistry(ctx, env.dsn) // migrates env.dsn too
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	env.reg = reg
	if _, err := devenv.AddMerchant(ctx, env.dir, reg, policy.Merchant{ID: "M100", Name: "m", FeeBps: 60}, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if env.store, err = postgres.Open(ctx, env.dsn, postgres.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.store.Close)
	if env.ks, err = keys.OpenFileStore(filepath.Join(env.dir, "keys"), keys.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	cursorKey, err := devenv.AuditCursorSecret(env.dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.NewAuditHandler(api.AuditDeps{
		Tokens:  &audit.Verifier{Keys: auditorKeyStore{env.ks}, Issuer: devenv.AuditorIssuer, Audience: devenv.AuditorAudience},
		Reports: env.store, Checkpoints: env.store, CheckpointKeys: platformKeys{env.ks},
		PlatformKeys: platformKeys{env.ks}, Events: reg, CursorKey: cursorKey, Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/audit/journal") && env.cutAfter.Load() > 0 {
			w = &cutWriter{ResponseWriter: w, left: &env.cutAfter}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tok, err := devenv.AuditorToken(env.dir, "test", audit.All, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	env.client = &auditClient{base: srv.URL, token: tok, http: srv.Client()}
	return env
}

// record writes a deposit and n payments of M100 signed with M100's real key.
func (env *auditEnv) record(t *testing.T, n int) []ledger.Recorded {
	t.Helper()
	mc, err := devenv.LoadMerchant(env.dir, "M100")
	if err != nil {
		t.Fatal(err)
	}
	sign := func(target string, body []byte) ledger.Evidence {
		nonce, _ := signing.NewNonce(rand.Reader)
		auth, err := signing.SignRequest(mc.SigningKey, "M100", mc.KeyID, "POST", target, body, time.Now(), nonce)
		if err != nil {
			t.Fatal(err)
		}
		return ledger.Evidence{Scheme: signing.SchemeWeChatPay, KeyID: mc.KeyID, Authorization: auth, Method: "POST", Target: target, Body: body}
	}
	var recs []ledger.Recorded
	ctx := context.Background()
	r, err := env.store.Record(ctx, ledger.Deposit("M100", "D1", "42", "CNY", 1_000_000, sign("/v1/deposits", []byte(`{"d":1}`))))
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, r)
	for i := 0; i < n; i++ {
		body := []byte(fmt.Sprintf(`{"order_id":"ORD%012d","amount":"1.%02d"}`, i, i%100))
		e := ledger.Payment("M100", fmt.Sprintf("ORD%012d", i), "42", "CNY", int64(100+i%100), 1, "line\nbreak, \"quoted\"", sign("/v1/payments?x=1", body))
		if r, err = env.store.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestExportResumesAfterInterruption(t *testing.T) {
	env := newAuditEnv(t)
	env.record(t, 40)
	ctx := context.Background()
	for _, format := range []string{"csv", "ndjson"} {
		t.Run(format, func(t *testing.T) {
			full := filepath.Join(t.TempDir(), "full."+format)
			if err := runExport(ctx, env.client, exportOptions{format: format, out: full, params: url.Values{}}); err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(full)
			if n := bytes.Count(want, []byte("\n")); n < 81 {
				t.Fatalf("full export has %d lines", n)
			}
			// Cut twice mid-row, then let it finish.
			out := filepath.Join(t.TempDir(), "cut."+format)
			var progress bytes.Buffer
			for i, cut := range []int64{1500, 2500} {
				env.cutAfter.Store(cut)
				err := runExport(ctx, env.client, exportOptions{format: format, out: out, params: url.Values{}, progress: &progress})
				if err == nil || !strings.Contains(err.Error(), "interrupted") {
					t.Fatalf("cut %d: %v", i, err)
				}
				if _, err := os.Stat(out + ".export-state"); err != nil {
					t.Fatalf("cut %d: no state kept: %v", i, err)
				}
			}
			if err := runExport(ctx, env.client, exportOptions{format: format, out: out, params: url.Values{}, progress: &progress}); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(out)
			if !bytes.Equal(got, want) {
				t.Fatalf("resumed export differs from the full one:\n%s\n---\n%s", got, want)
			}
			if _, err := os.Stat(out + ".export-state"); !errors.Is(err, os.ErrNotExist) {
				t.Error("state file left after a complete export")
			}
			if !strings.Contains(progress.String(), "rows") {
				t.Errorf("no progress shown: %q", progress.String())
			}
			// A finished file is not overwritten by accident.
			if err := runExport(ctx, env.client, exportOptions{format: format, out: out, params: url.Values{}}); err == nil {
				t.Error("export over an existing file without --force")
			}
		})
	}
}

func TestVerifyEntryAndChain(t *testing.T) {
	env := newAuditEnv(t)
	recs := env.record(t, 3)
	ctx := context.Background()
	get := func(id int64) api.EntryJSON {
		var e api.EntryJSON
		if err := env.client.getJSON(ctx, fmt.Sprintf("/v1/audit/entries/%d", id), &e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	var out bytes.Buffer
	for _, r := range recs {
		if err := verifyEntry(ctx, get(r.ID), env.ks, &out); err != nil {
			t.Fatalf("entry %d: %v\n%s", r.ID, err, out.String())
		}
	}
	e := get(2)
	for _, c := range []struct {
		name   string
		mutate func(e *api.EntryJSON)
		want   string
	}{
		{"body changed", func(e *api.EntryJSON) { e.Evidence.Body = "e30=" }, "signature does not verify"},
		{"target changed", func(e *api.EntryJSON) { e.Evidence.Target = "/v1/payments" }, "signature does not verify"},
		{"amount changed", func(e *api.EntryJSON) { e.AmountMinor++ }, "fingerprint"},
		{"hash changed", func(e *api.EntryJSON) { e.Hash = strings.Repeat("0", 64) }, "chain hash"},
		{"unknown key", func(e *api.EntryJSON) {
			e.Evidence.KeyID = "NOPE"
		}, "header names"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := e
			bad.Postings = append([]api.PostingJSON(nil), e.Postings...)
			c.mutate(&bad)
			if err := verifyEntry(ctx, bad, env.ks, &out); err == nil || !strings.Contains(out.String(), c.want) {
				t.Fatalf("verifyEntry = %v; output lacks %q:\n%s", err, c.want, out.String())
			}
		})
	}
	// The key version must have been valid when the entry was written.
	mc, _ := devenv.LoadMerchant(env.dir, "M100")
	if err := (keys.Manager{Rings: env.ks}).SetStatus(ctx, "M100", mc.KeyID, keys.Retiring, recs[0].CreatedAt.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	env.ks.Reload()
	out.Reset()
	if err := verifyEntry(ctx, get(2), env.ks, &out); err == nil || !strings.Contains(out.String(), "had retired") {
		t.Fatalf("retired key: %v\n%s", err, out.String())
	}

	// verify-chain: a signed checkpoint, checked here, then a tampered posting.
	pk, _ := env.ks.PlatformKey(ctx)
	if _, _, err := env.store.CreateCheckpoint(ctx, time.Now(), pk.ID(), pk.Signer(), false); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := verifyChain(ctx, env.client, 0, 0, &out); err != nil || !strings.Contains(out.String(), "1 signatures checked here") {
		t.Fatalf("verifyChain: %v\n%s", err, out.String())
	}
	conn, err := pgx.Connect(ctx, env.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica; UPDATE postings SET amount = amount + 1 WHERE entry_id = 3 AND seq = 0`); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := verifyChain(ctx, env.client, 0, 0, &out); err == nil || !strings.Contains(out.String(), "first bad entry: 3") {
		t.Fatalf("after tampering: %v\n%s", err, out.String())
	}
}

func TestAuditTokenOnlyFromDevMaterial(t *testing.T) {
	dir := t.TempDir()
	if _, err := quillctl(t, dir, "audit", "token"); err == nil {
		t.Fatal("token minted from an empty data dir")
	}
	if _, err := quillctl(t, dir, "dev", "init"); err != nil {
		t.Fatal(err)
	}
	out, err := quillctl(t, dir, "audit", "token", "--scope", "M100,M200", "--sub", "bob")
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
	v := &audit.Verifier{Keys: auditorKeyStore{ks}, Issuer: devenv.AuditorIssuer, Audience: devenv.AuditorAudience}
	a, err := v.Verify(context.Background(), strings.TrimSpace(out))
	if err != nil || a.Subject != "bob" || !a.Scope.Allows("M200") || a.Scope.Allows("M300") {
		t.Fatalf("minted token: %+v %v", a, err)
	}
	// Without the dev CA key the directory is not dev material.
	os.Remove(filepath.Join(dir, "ca.key.pem"))
	if _, err := quillctl(t, dir, "audit", "token"); err == nil {
		t.Fatal("token minted outside a dev data dir")
	}
}

func TestAuditTokenRefusedWithNonDevConfig(t *testing.T) {
	dir := t.TempDir()
	if _, err := quillctl(t, dir, "dev", "init"); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "quill.conf")
	if err := os.WriteFile(conf, []byte("QUILL_VAULT_ADDR=https://vault.internal:8200\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--config", conf, "audit", "token"},
		{"--config", conf, "report", "trial-balance", "--audit-url", "https://127.0.0.1:1"}, // would mint one itself
	} {
		out, err := quillctl(t, dir, args...)
		if err == nil || !strings.Contains(err.Error(), "not a dev one") || strings.Contains(out, "eyJ") {
			t.Errorf("quillctl %v: %v\n%s", args, err, out)
		}
	}
	t.Setenv("QUILL_VAULT_ADDR", "https://vault.internal:8200")
	if _, err := quillctl(t, dir, "audit", "token"); err == nil {
		t.Error("token minted with QUILL_VAULT_ADDR in the environment")
	}
	t.Setenv("QUILL_VAULT_ADDR", "")
	if out, err := quillctl(t, dir, "audit", "token"); err != nil || !strings.HasPrefix(out, "eyJ") {
		t.Errorf("dev config: %v %s", err, out)
	}
}

func TestAuditEventsCommand(t *testing.T) {
	env := newAuditEnv(t)
	ctx := context.Background()
	for _, ev := range []merchant.Event{
		{Action: merchant.KeyRotated, Subject: "M100", OldKeyID: "K1", NewKeyID: "K2"},
		{Action: merchant.KeyRevoked, Subject: "M200", OldKeyID: "K9"},
		{Action: merchant.KeyRotated, Subject: "_platform", NewKeyID: "P2"},
		{Action: merchant.MerchantDisabled, Subject: "M100"},
	} {
		ev.Actor = "alice@ops"
		if _, err := env.reg.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := env.reg.Events(ctx, merchant.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	// Pages of one: every event, in order.
	if err := runAuditEvents(ctx, env.client, auditEventsOptions{pageSize: 1, json: true}, &out); err != nil {
		t.Fatal(err)
	}
	var got []api.AuditEventJSON
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got) != len(stored) {
		t.Fatalf("%d events listed, %d stored: %v\n%s", len(got), len(stored), err, out.String())
	}
	for i := range stored {
		if got[i].Seq != stored[i].Seq || got[i].Action != string(stored[i].Action) || got[i].Subject != stored[i].Subject {
			t.Fatalf("event %d: %+v, stored %+v", i, got[i], stored[i])
		}
	}
	out.Reset()
	if err := runAuditEvents(ctx, env.client, auditEventsOptions{pageSize: 500, action: "key", subject: "M100"}, &out); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "key.rotated") || !strings.Contains(lines[1], "K2") {
		t.Fatalf("table:\n%s", out.String())
	}
	// Scoped to M200: its own event and the platform key's.
	tok, err := devenv.AuditorToken(env.dir, "bob", audit.Merchants("M200"), time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	scoped := *env.client
	scoped.token = tok
	out.Reset()
	if err := runAuditEvents(ctx, &scoped, auditEventsOptions{pageSize: 500, json: true}, &out); err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got) != 2 || got[0].Subject != "M200" || got[1].Subject != "_platform" {
		t.Fatalf("scoped: %v %s", err, out.String())
	}
	if err := runAuditEvents(ctx, env.client, auditEventsOptions{pageSize: 500, action: "Key"}, &out); err == nil || !strings.Contains(err.Error(), "invalid_parameter") {
		t.Fatalf("bad action: %v", err)
	}
}

// TestExportRefusesAFileShorterThanItsState: a file that lost its tail (a
// system crash after the state was saved) is not extended with zeros.
func TestExportRefusesAFileShorterThanItsState(t *testing.T) {
	env := newAuditEnv(t)
	env.record(t, 40)
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "cut.csv")
	env.cutAfter.Store(2500)
	if err := runExport(ctx, env.client, exportOptions{format: "csv", out: out, params: url.Values{}}); err == nil {
		t.Fatal("the cut export succeeded")
	}
	if err := os.Truncate(out, 100); err != nil {
		t.Fatal(err)
	}
	err := runExport(ctx, env.client, exportOptions{format: "csv", out: out, params: url.Values{}})
	if err == nil || !strings.Contains(err.Error(), "export again") {
		t.Fatalf("resume over a shortened file: %v", err)
	}
	if fi, _ := os.Stat(out); fi.Size() != 100 {
		t.Fatalf("the refused resume changed the file: %d bytes", fi.Size())
	}
}
