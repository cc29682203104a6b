// Command quill-load is Quill's load generator: signed payments end to end
// (mTLS + scheme-A signature + nonce + durable ledger write + signed response),
// all crediting one merchant, from many pre-funded wallets.
//
// To measure the server rather than the client, every request is signed
// before the clock starts (RSA-2048 signing costs the client ~1 ms each), then
// the requests are sent by -c workers and each response's platform signature
// is verified. It stops by itself after -n requests or -duration, whichever
// comes first, and refuses any target that is not a loopback address.
//
//	quill-load -n 20000 -c 64          # against the dev server of scripts/dev.sh
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quillpay/quill/internal/client"
	"github.com/quillpay/quill/internal/devenv"
)

type options struct {
	baseURL     string
	dir         string
	merchant    string
	topUp       string
	requests    int
	concurrency int
	duration    time.Duration
	wallets     int
	amount      string
}

func main() {
	var o options
	flag.StringVar(&o.baseURL, "url", "https://127.0.0.1:8443", "server base URL (loopback only)")
	flag.StringVar(&o.dir, "data-dir", "var/dev", "dev material directory")
	flag.StringVar(&o.merchant, "merchant", "M100", "merchant every payment credits")
	flag.StringVar(&o.topUp, "topup", "TOPUP", "client allowed to deposit, funds the wallets")
	flag.IntVar(&o.requests, "n", 10000, "payments to send (signed in advance)")
	flag.IntVar(&o.concurrency, "c", 64, "concurrent connections")
	flag.DurationVar(&o.duration, "duration", 2*time.Minute, "stop after this long even if requests remain")
	flag.IntVar(&o.wallets, "wallets", 500, "distinct payer wallets")
	flag.StringVar(&o.amount, "amount", "0.01", "amount of each payment (CNY)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "quill-load:", err)
		os.Exit(1)
	}
}

// requireLoopback refuses to load anything but this machine.
func requireLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("target %q is not a loopback address", host)
	}
	return nil
}

func newClient(o options, id string, conns int) (*client.Client, error) {
	mc, err := devenv.LoadMerchant(o.dir, id)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(filepath.Join(o.dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{mc.TLS}, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		ForceAttemptHTTP2:   false, // one request per connection at a time, like most SDKs
	}
	return &client.Client{BaseURL: o.baseURL, Merchant: mc.ID, KeyID: mc.KeyID, Key: mc.SigningKey,
		HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

type signed struct {
	body []byte
	auth string
}

func run(o options) error {
	if err := requireLoopback(o.baseURL); err != nil {
		return err
	}
	if o.requests < 1 || o.concurrency < 1 || o.wallets < 1 {
		return errors.New("-n, -c and -wallets must be positive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.duration+5*time.Minute)
	defer cancel()
	pay, err := newClient(o, o.merchant, o.concurrency)
	if err != nil {
		return err
	}
	top, err := newClient(o, o.topUp, 16)
	if err != nil {
		return err
	}

	run := fmt.Sprintf("%d", time.Now().UnixNano())
	fmt.Printf("funding %d wallets…\n", o.wallets)
	perWallet := o.requests/o.wallets + 1
	users := make([]string, o.wallets)
	tokens := make([]string, o.wallets)
	err = parallel(16, o.wallets, func(i int) error {
		users[i] = fmt.Sprintf("load-%s-%d", run, i)
		body := fmt.Sprintf(`{"order_id":"ORD%s%07d","user_id":%q,"amount":"%d.00","currency":"CNY"}`, run[:13], i, users[i], perWallet)
		r, err := top.Do(ctx, "POST", "/v1/deposits", []byte(body))
		if err != nil {
			return err
		}
		if r.Status != http.StatusOK {
			return fmt.Errorf("deposit: %d %s", r.Status, r.Body)
		}
		tokens[i], err = devenv.PayerToken(o.dir, users[i], o.duration+10*time.Minute, time.Now())
		return err
	})
	if err != nil {
		return err
	}

	fmt.Printf("signing %d payments in advance on %d cores…\n", o.requests, runtime.NumCPU())
	reqs := make([]signed, o.requests)
	err = parallel(runtime.NumCPU(), o.requests, func(i int) error {
		w := i % o.wallets
		reqs[i].body = []byte(fmt.Sprintf(`{"order_id":"ORD%s%08d","amount":%q,"currency":"CNY","payer_token":%q}`,
			run[4:13], i+10_000_000, o.amount, tokens[w]))
		var err error
		reqs[i].auth, err = pay.Authorization("POST", "/v1/payments", reqs[i].body)
		return err
	})
	if err != nil {
		return err
	}

	fmt.Printf("sending with %d connections…\n", o.concurrency)
	var (
		next      atomic.Int64
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, o.requests)
		statuses  = map[int]int{}
		unsigned  atomic.Int64
		failures  atomic.Int64
	)
	deadline := time.Now().Add(o.duration)
	start := time.Now()
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) {
					return
				}
				t0 := time.Now()
				r, err := pay.Send(ctx, "POST", "/v1/payments", reqs[i].body, reqs[i].auth)
				took := time.Since(t0)
				if err != nil {
					failures.Add(1)
					continue
				}
				if r.Verified != nil {
					unsigned.Add(1)
				}
				mu.Lock()
				latencies = append(latencies, took)
				statuses[r.Status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(float64(len(latencies))*p))]
	}
	ok := statuses[http.StatusOK]
	report := map[string]any{
		"requests":              len(latencies),
		"ok":                    ok,
		"statuses":              statuses,
		"transport_errors":      failures.Load(),
		"unverified_responses":  unsigned.Load(),
		"seconds":               elapsed.Seconds(),
		"payments_per_second":   float64(ok) / elapsed.Seconds(),
		"p50_ms":                ms(pct(0.50)),
		"p90_ms":                ms(pct(0.90)),
		"p99_ms":                ms(pct(0.99)),
		"max_ms":                ms(pct(1)),
		"concurrency":           o.concurrency,
		"wallets":               o.wallets,
		"client_side_verifying": true,
	}
	b, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(b))
	if ok == 0 || unsigned.Load() > 0 {
		return fmt.Errorf("%d ok, %d responses failed signature verification", ok, unsigned.Load())
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(workers, n int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
