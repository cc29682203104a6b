package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/keys"
	mch "github.com/quillpay/quill/merchant"
	merchantpg "github.com/quillpay/quill/merchant/postgres"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/quillclient"
	"github.com/quillpay/quill/signing"
	"github.com/quillpay/quill/signing/openssl"
)

// merchant is one merchant the run pays, with its dev material and profile.
type merchant struct {
	devenv.Merchant
	FeeBps int64
}

// request is one pre-signed request.
type request struct {
	method, target string
	body           []byte
	hdr            []string // signature headers: name, value, name, value…
	merchant       int32    // index into gen.merchants
	payer          int32    // index into gen.payers; -1 for a GET
	orderID        string
}

// deposit is one wallet top-up made during setup.
type deposit struct {
	orderID, user string
	amount        int64
	entryID       int64
}

// gen is one run's state.
type gen struct {
	o         options
	logf      func(string, ...any)
	runID     string // digits, unique per run: order ids and payer ids carry it
	roots     *x509.CertPool
	merchants []merchant
	payers    []string
	tokens    []string
	deposits  []deposit
	topUp     *lane
	reqs      []request
	lanes     []*lane   // connections: one per worker (hot, verify-only, mixed) or per merchant (spread)
	signedAt  time.Time // the timestamp every pre-signed request carries
	crypto    signing.Crypto
	audit     *auditor // mixed only
}

func newGen(o options, logf func(string, ...any)) (*gen, error) {
	caPEM, err := os.ReadFile(filepath.Join(o.DataDir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("dev material: %w (run scripts/dev.sh or quillctl dev init)", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no certificate in ca.pem")
	}
	// 13 digits of Unix milliseconds and 2 random ones: order ids stay unique
	// across runs within the pattern ORD[0-9]{12,29}.
	run := fmt.Sprintf("%013d%02d", time.Now().UnixMilli(), mrand.IntN(100))
	c, err := openCrypto(o.Crypto)
	if err != nil {
		return nil, err
	}
	return &gen{o: o, logf: logf, runID: run, roots: roots, crypto: c}, nil
}

// openCrypto is the backend that verifies RSA response signatures (scheme
// A), chosen as quill serve --crypto chooses its own: auto is OpenSSL when
// libcrypto loads, else Go. Scheme B responses are Ed25519, which Go's
// crypto verifies about twice as fast as OpenSSL (docs/BENCHMARKS.md), so
// they are always checked with Go.
func openCrypto(mode string) (signing.Crypto, error) {
	if mode == cryptoGo {
		return signing.GoCrypto{}, nil
	}
	c, err := openssl.Load(openssl.DefaultLibrary)
	switch {
	case err == nil:
		return c, nil
	case mode == cryptoOpenSSL:
		return nil, fmt.Errorf("--crypto openssl: %w", err)
	}
	return signing.GoCrypto{}, nil
}

// lane is one merchant's client: quillclient's transport signs each request
// (or sends one pre-signed as is) and verifies each response's platform
// signature, fetching the platform keys on first use. Scheme A responses are
// verified with the generator's --crypto backend (responseVerifierA), scheme
// B ones by quillclient.SchemeB.
type lane struct {
	base string
	http *http.Client
}

// response is a response with the outcome of its signature check.
type response struct {
	Status int
	Body   []byte
	// Verified is nil when the platform signature verified, and a
	// *quillclient.ResponseError matching quillclient.ErrUnverified otherwise
	// (Body is then empty: quillclient never hands out unverified bytes).
	Verified error
}

// Do signs and sends method target (path and query, as sent) with body. A
// transport error is returned; an HTTP error status or an unverified
// response is not an error.
func (l *lane) Do(ctx context.Context, method, target string, body []byte) (*response, error) {
	return l.Send(ctx, method, target, body, nil)
}

// Send is Do with a request signed ahead of time: hdr holds its signature
// headers as name, value pairs (scheme A: Authorization; scheme B:
// Signature-Input, Signature and, with a body, Content-Digest). A nil hdr
// signs now.
func (l *lane) Send(ctx context.Context, method, target string, body []byte, hdr []string) (*response, error) {
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.base+target, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if hdr != nil {
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		req = quillclient.Presigned(req)
	}
	res, err := l.http.Do(req)
	if err != nil {
		var re *quillclient.ResponseError
		if errors.As(err, &re) && errors.Is(err, quillclient.ErrUnverified) {
			return &response{Status: re.StatusCode, Verified: re}, nil
		}
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &response{Status: res.StatusCode, Body: b}, nil
}

// newClient is an mTLS client of m that signs with scheme (schemeA or
// schemeB) and whose transport keeps at most conns HTTP/1.1 keep-alive
// connections, as most merchant SDKs do.
func (g *gen) newClient(m devenv.Merchant, conns int, scheme string) (*lane, error) {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: g.roots, Certificates: []tls.Certificate{m.TLS}, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     5 * time.Minute,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
	}
	opts := []quillclient.Option{quillclient.WithBase(tr), quillclient.WithKeyID(m.KeyID), quillclient.WithPrivateKey(m.SigningKey)}
	if scheme == schemeB {
		opts = append(opts, quillclient.WithSchemeB(), quillclient.WithAlgorithm(signing.Algorithm(m.Algorithm)))
	} else {
		opts = append(opts, quillclient.WithMerchant(m.ID), quillclient.WithResponseVerifier(&responseVerifierA{crypto: g.crypto}))
	}
	qt, err := quillclient.NewTransport(opts...)
	if err != nil {
		return nil, fmt.Errorf("merchant %s: %w", m.ID, err)
	}
	return &lane{base: strings.TrimRight(g.o.URL, "/"), http: &http.Client{Transport: qt, Timeout: g.o.Timeout}}, nil
}

// loadMerchants loads the merchants the run pays (spread: --merchants of
// them; otherwise --merchant) and reports how many it onboarded and how long
// that took. A merchant without dev material is onboarded first (a key for
// --merchant-alg, a client certificate, a profile with --fee-bps); one whose
// dev material exists but whose profile the server's database lacks (an
// earlier run against another database, as scripts/bench-e2e.sh gives every
// leg its own) is registered for the key it has.
func (g *gen) loadMerchants() (created int, took time.Duration, err error) {
	ctx := context.Background()
	reg, err := merchantpg.Open(ctx, g.o.PgDSN, 4)
	if err != nil {
		return 0, 0, fmt.Errorf("merchant registry (--pg-dsn): %w", err)
	}
	defer reg.Close()
	ids := []string{g.o.Merchant}
	if g.o.Scenario == scenarioSpread {
		ids = make([]string, g.o.Merchants)
		for i := range ids {
			ids[i] = fmt.Sprintf("%s%05d", g.o.MerchantPrefix, i+1)
		}
	}
	var missing []string
	for _, id := range ids {
		if !devenv.MerchantExists(g.o.DataDir, id) {
			missing = append(missing, id)
		}
	}
	alg := keys.Algorithm(g.o.MerchantAlg)
	if len(missing) > 0 {
		g.logf("onboarding %d merchants (%s key, client certificate, profile each)…", len(missing), alg)
		start := time.Now()
		var done atomic.Int64
		bar := newBar(len(missing), "onboarding", g.o.Quiet)
		err := parallel(runtime.NumCPU(), len(missing), func(i int) error {
			_, err := devenv.AddMerchantWithAlgorithm(ctx, g.o.DataDir, reg, g.profile(missing[i]), alg, time.Now().Add(-time.Minute))
			bar.set(int(done.Add(1)))
			return err
		})
		bar.finish()
		if err != nil {
			return 0, 0, err
		}
		created, took = len(missing), time.Since(start)
	}
	g.merchants = make([]merchant, len(ids))
	var registered atomic.Int64
	err = parallel(runtime.NumCPU(), len(ids), func(i int) error {
		mc, err := devenv.LoadMerchant(g.o.DataDir, ids[i])
		if err != nil {
			return err
		}
		if g.o.Scheme == schemeA && mc.Algorithm != keys.RSAPKCS1SHA256 {
			return fmt.Errorf("merchant %s signs with %s: scheme A needs an rsa-v1_5-sha256 merchant (--merchant, --merchant-prefix)", mc.ID, mc.Algorithm)
		}
		prof, err := reg.Get(ctx, mch.ID(ids[i]))
		if errors.Is(err, mch.ErrUnknown) {
			prof, err = reg.Add(ctx, g.profile(ids[i]), mch.Event{Actor: "quill-load", NewKeyID: mc.KeyID, Detail: "profile for existing dev material"})
			registered.Add(1)
		}
		if err != nil {
			return fmt.Errorf("merchant %s: %w", ids[i], err)
		}
		g.merchants[i] = merchant{Merchant: mc, FeeBps: prof.FeeBps}
		return nil
	})
	if err == nil && created+int(registered.Load()) > 0 {
		// The server finds new merchants in the registry at once (an
		// unknown id reloads it) and reloads the key store on its own,
		// after a short check interval.
		time.Sleep(1500 * time.Millisecond)
	}
	return created, took, err
}

// profile is the profile of a merchant the run onboards.
func (g *gen) profile(id string) policy.Merchant {
	return policy.Merchant{ID: id, Name: "load " + id, FeeBps: g.o.FeeBps, Status: mch.Active}
}

// orderID is order seq of kind (1 deposit, 2 payment) in this run.
func (g *gen) orderID(kind, seq int) string {
	return fmt.Sprintf("ORD%s%d%09d", g.runID, kind, seq)
}

// payerOf is the payer of request i.
func (g *gen) payerOf(i int) int { return i % len(g.payers) }

// fundPayers deposits into each payer's wallet exactly what its share of the
// run's payments needs, through the API with the top-up client.
func (g *gen) fundPayers(ctx context.Context) error {
	g.tokens = make([]string, len(g.payers))
	need := make([]int64, len(g.payers))
	for i := range g.payers {
		if !validUser(g.payers[i]) {
			return fmt.Errorf("payer id %q: want 1 to 64 characters of A-Z a-z 0-9 _ -", g.payers[i])
		}
	}
	for i := range g.o.Requests {
		need[g.payerOf(i)] += g.o.amountMinor
	}
	const maxDeposit = 1_000_000_00 // the default per-request limit, in fen
	for p, n := range need {
		for n > 0 {
			a := min(n, maxDeposit)
			g.deposits = append(g.deposits, deposit{orderID: g.orderID(1, len(g.deposits)), user: g.payers[p], amount: a})
			n -= a
		}
	}
	tm, err := devenv.LoadMerchant(g.o.DataDir, g.o.TopUp)
	if err != nil {
		return err
	}
	if g.topUp, err = g.newClient(tm, 16, schemeA); err != nil {
		return err
	}
	ttl := g.o.Duration + g.o.Grace + 30*time.Minute
	now := time.Now()
	for i := range g.payers {
		if g.tokens[i], err = devenv.PayerToken(g.o.DataDir, g.payers[i], ttl, now); err != nil {
			return err
		}
	}
	g.logf("funding %d wallets with %d deposits through %s…", len(g.payers), len(g.deposits), g.o.TopUp)
	bar := newBar(len(g.deposits), "deposits", g.o.Quiet)
	defer bar.finish()
	var done atomic.Int64
	return parallel(16, len(g.deposits), func(i int) error {
		d := &g.deposits[i]
		body := fmt.Sprintf(`{"order_id":%q,"user_id":%q,"amount":%q,"currency":"CNY"}`, d.orderID, d.user, policy.FormatAmount(d.amount, "CNY"))
		r, err := g.topUp.Do(ctx, http.MethodPost, "/v1/deposits", []byte(body))
		if err != nil {
			return fmt.Errorf("deposit: %w", err)
		}
		if r.Verified != nil {
			return fmt.Errorf("deposit: %w", r.Verified)
		}
		if r.Status != http.StatusOK {
			return fmt.Errorf("deposit: %d %s", r.Status, r.Body)
		}
		var rec struct {
			EntryID int64 `json:"entry_id"`
		}
		if err := json.Unmarshal(r.Body, &rec); err != nil {
			return fmt.Errorf("deposit response: %w", err)
		}
		d.entryID = rec.EntryID
		bar.set(int(done.Add(1)))
		return nil
	})
}

func validUser(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// presign builds and signs every request of the run on all cores. They all
// carry one timestamp, taken now: the run must end within the replay window
// of it, which run checks before starting the clock.
func (g *gen) presign() error {
	g.reqs = make([]request, g.o.Requests)
	g.signedAt = time.Now()
	amount := policy.FormatAmount(g.o.amountMinor, "CNY")
	bar := newBar(len(g.reqs), "signing", g.o.Quiet)
	defer bar.finish()
	signers := make([]presignFunc, len(g.merchants))
	for i, m := range g.merchants {
		var err error
		if signers[i], err = g.presigner(m.Merchant); err != nil {
			return err
		}
	}
	var done atomic.Int64
	return parallel(runtime.NumCPU(), len(g.reqs), func(i int) error {
		r := &g.reqs[i]
		r.merchant = int32(i % len(g.merchants))
		r.payer = -1
		switch g.o.Scenario {
		case scenarioVerify:
			r.method, r.target = http.MethodGet, g.o.VerifyTarget
		default:
			p := g.payerOf(i)
			r.method, r.target, r.payer, r.orderID = http.MethodPost, "/v1/payments", int32(p), g.orderID(2, i)
			r.body = fmt.Appendf(nil, `{"order_id":%q,"amount":%q,"currency":"CNY","payer_token":%q}`, r.orderID, amount, g.tokens[p])
		}
		var err error
		r.hdr, err = signers[r.merchant](r.method, r.target, r.body)
		if n := done.Add(1); n%64 == 0 {
			bar.set(int(n))
		}
		return err
	})
}

// presignFunc signs one request ahead of time and returns its signature
// headers as name, value pairs, as lane.Send takes them.
type presignFunc func(method, target string, body []byte) ([]string, error)

// presigner signs requests of m ahead of time in the run's scheme, all with
// timestamp g.signedAt (and a fresh nonce each).
func (g *gen) presigner(m devenv.Merchant) (presignFunc, error) {
	at := g.signedAt
	clock := quillclient.WithClock(func() time.Time { return at })
	if g.o.Scheme == schemeA {
		a, err := quillclient.NewSchemeA(m.ID, m.KeyID, m.SigningKey, clock)
		if err != nil {
			return nil, fmt.Errorf("merchant %s: %w", m.ID, err)
		}
		return func(method, target string, body []byte) ([]string, error) {
			auth, err := a.Authorization(method, target, body)
			return []string{"Authorization", auth}, err
		}, nil
	}
	b, err := quillclient.NewSchemeB(m.KeyID, m.SigningKey, clock, quillclient.WithAlgorithm(signing.Algorithm(m.Algorithm)))
	if err != nil {
		return nil, fmt.Errorf("merchant %s: %w", m.ID, err)
	}
	base := strings.TrimRight(g.o.URL, "/")
	return func(method, target string, body []byte) ([]string, error) {
		// The request as lane.Send will send it: @target-uri is the URL
		// with the Host Go's transport sends, and Content-Type is covered.
		req, err := http.NewRequest(method, base+target, nil)
		if err != nil {
			return nil, err
		}
		if len(body) > 0 {
			req.Header.Set("Content-Type", "application/json")
		}
		if err := b.SignRequest(req, body); err != nil {
			return nil, err
		}
		hdr := []string{"Signature-Input", req.Header.Get("Signature-Input"), "Signature", req.Header.Get("Signature")}
		if d := req.Header.Get("Content-Digest"); d != "" {
			hdr = append(hdr, "Content-Digest", d)
		}
		return hdr, nil
	}, nil
}

// openLanes creates the connections: for hot, verify-only and the payments
// of mixed one client with one connection per worker; for spread one client
// per merchant, holding up to ceil(C/M) connections. Each is opened, and the
// platform keys fetched and checked, by a signed GET /v1/certificates before
// the clock starts.
func (g *gen) openLanes(ctx context.Context) error {
	if g.o.Scenario == scenarioSpread {
		per := (g.o.Connections + len(g.merchants) - 1) / len(g.merchants)
		g.lanes = make([]*lane, len(g.merchants))
		for i, m := range g.merchants {
			var err error
			if g.lanes[i], err = g.newClient(m.Merchant, per, g.o.Scheme); err != nil {
				return err
			}
		}
	} else {
		g.lanes = make([]*lane, g.o.senders())
		for i := range g.lanes {
			var err error
			if g.lanes[i], err = g.newClient(g.merchants[0].Merchant, 1, g.o.Scheme); err != nil {
				return err
			}
		}
	}
	g.logf("opening %d mTLS connections…", len(g.lanes))
	// The first alone: after the pause of pre-signing, a server's replay
	// guard re-checks Redis and refuses the claims that arrive meanwhile.
	if err := waitReady(ctx, g.lanes[0]); err != nil {
		return err
	}
	return parallel(min(len(g.lanes), 64), len(g.lanes)-1, func(i int) error {
		i++
		r, err := g.lanes[i].Do(ctx, http.MethodGet, "/v1/certificates", nil)
		switch {
		case err != nil:
			return fmt.Errorf("open connection: %w", err)
		case r.Verified != nil:
			return fmt.Errorf("open connection: %w", r.Verified)
		case r.Status != http.StatusOK:
			return fmt.Errorf("open connection: GET /v1/certificates: %d %s", r.Status, r.Body)
		}
		return nil
	})
}

// waitReady sends one signed GET /v1/certificates on c and repeats it while
// the server answers 503: a server that has just started, or has had no
// request for a while, refuses nonce claims until it has (re-)checked its
// Redis, and the setup's concurrent deposits and connections should not be
// what finds out. Any other failure, or 503s for 15 s, is an error.
func waitReady(ctx context.Context, c *lane) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := c.Do(ctx, http.MethodGet, "/v1/certificates", nil)
		switch {
		case err != nil:
			return fmt.Errorf("first request: %w", err)
		case r.Verified != nil:
			return fmt.Errorf("first request: %w", r.Verified)
		case r.Status == http.StatusOK:
			return nil
		case r.Status != http.StatusServiceUnavailable || time.Now().After(deadline):
			return fmt.Errorf("first request: GET /v1/certificates: %d %s", r.Status, r.Body)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// platformKeys returns the platform's public keys by serial, from a signed
// GET /v1/certificates whose own signature c has verified.
func platformKeys(ctx context.Context, c *lane) (pinnedKeys, error) {
	r, err := c.Do(ctx, http.MethodGet, "/v1/certificates", nil)
	if err != nil {
		return nil, err
	}
	if r.Verified != nil {
		return nil, r.Verified
	}
	if r.Status != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/certificates: %d %s", r.Status, r.Body)
	}
	var list struct {
		Data []struct {
			SerialNo  string `json:"serial_no"`
			Algorithm string `json:"algorithm"`
			PublicKey string `json:"public_key"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		return nil, err
	}
	out := pinnedKeys{}
	for _, d := range list.Data {
		k, err := keys.ParsePublicKeyPEM([]byte(d.PublicKey))
		if err != nil {
			return nil, err
		}
		out[d.SerialNo] = quillclient.PlatformKey{ID: d.SerialNo, Algorithm: d.Algorithm, Public: k}
	}
	return out, nil
}

// pinnedKeys is a quillclient.KeySource over a fixed set of platform keys.
type pinnedKeys map[string]quillclient.PlatformKey

func (p pinnedKeys) PlatformKey(_ context.Context, id string) (quillclient.PlatformKey, error) {
	if k, ok := p[id]; ok {
		return k, nil
	}
	return quillclient.PlatformKey{}, fmt.Errorf("%w: %q", quillclient.ErrUnknownKey, id)
}

// parallel runs f(0..n-1) on workers goroutines and returns the first error;
// after an error no new f starts.
func parallel(workers, n int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var failed atomic.Bool
	var once sync.Once
	var wg sync.WaitGroup
	for range max(1, min(workers, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err; failed.Store(true) })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
