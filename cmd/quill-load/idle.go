package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// idleResult is what the idle scenario measured.
type idleResult struct {
	Connections      int     `json:"connections"`
	Opened           int     `json:"opened"`
	HeldSeconds      float64 `json:"held_seconds"`
	ServerPID        int     `json:"server_pid,omitempty"`
	RSSBeforeKB      int64   `json:"server_rss_before_kb,omitempty"`
	RSSHeldKB        int64   `json:"server_rss_held_kb,omitempty"`
	KBPerConnection  float64 `json:"server_kb_per_connection,omitempty"`
	RSSNotMeasured   string  `json:"rss_not_measured,omitempty"`
	OpenSeconds      float64 `json:"open_seconds"`
	ConnectionsPerS  float64 `json:"connections_per_second"`
	StillOpenAtClose int     `json:"still_open_at_close"`
}

// idle opens --idle-conns mTLS connections, completes one signed GET on each
// (its response signature verified), holds them all for --hold and reads
// the server's RSS before and while holding. Connections are dialled one by
// one on raw TLS so that each carries exactly one request.
func (g *gen) idle(ctx context.Context, sum *summary) error {
	n := g.o.IdleConns
	m := g.merchants[0]
	probe, err := g.newClient(m.Merchant, 1, schemeA)
	if err != nil {
		return err
	}
	platform, err := platformKeys(ctx, probe)
	if err != nil {
		return fmt.Errorf("platform keys: %w", err)
	}
	probe.http.CloseIdleConnections()
	// Responses are checked as the lanes check them (the platform
	// signature, the response window), against the keys listed now.
	verifier := &responseVerifierA{crypto: g.crypto}
	verify := func(res *http.Response, body []byte) error {
		return verifier.VerifyResponse(ctx, nil, res, body, platform)
	}
	u, err := url.Parse(g.o.URL)
	if err != nil {
		return err
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	res := &idleResult{Connections: n, ServerPID: g.o.ServerPID}
	sum.Idle = res

	g.logf("signing %d requests in advance…", n)
	t := time.Now()
	g.signedAt = time.Now()
	wire := make([][]byte, n)
	target := "/v1/certificates"
	signer, err := g.presigner(m.Merchant)
	if err != nil {
		return err
	}
	if err := parallel(runtime.NumCPU(), n, func(i int) error {
		hdr, err := signer(http.MethodGet, target, nil)
		wire[i] = fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\n%s: %s\r\nAccept: application/json\r\nUser-Agent: quill-load\r\n\r\n", target, u.Host, hdr[0], hdr[1])
		return err
	}); err != nil {
		return err
	}
	sum.Setup.PresignSeconds = time.Since(t).Seconds()

	if g.o.ServerPID > 0 {
		if res.RSSBeforeKB, err = serverRSS(g.o.ServerPID); err != nil {
			return err
		}
	}
	conf := &tls.Config{RootCAs: g.roots, Certificates: []tls.Certificate{m.TLS}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	conns := make([]net.Conn, n)
	hist := newHist()
	var mu sync.Mutex
	var done, unverified atomic.Int64
	errs := map[string]int64{}
	examples := map[string]string{}
	fail := func(class, example string) {
		mu.Lock()
		defer mu.Unlock()
		errs[class]++
		if _, ok := examples[class]; !ok {
			examples[class] = truncate(example, 200)
		}
	}
	g.logf("opening %d connections, one request on each…", n)
	bar := newBar(n, "connecting", g.o.Quiet)
	stopBar := make(chan struct{})
	go func() {
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				bar.set(int(done.Load()))
			case <-stopBar:
				return
			}
		}
	}()
	start := time.Now()
	parallel(32, n, func(i int) error {
		defer done.Add(1)
		if ctx.Err() != nil {
			return nil
		}
		t0 := time.Now()
		d := tls.Dialer{Config: conf, NetDialer: &net.Dialer{Timeout: g.o.Timeout}}
		dctx, cancel := context.WithTimeout(ctx, g.o.Timeout)
		defer cancel()
		c, err := d.DialContext(dctx, "tcp", addr)
		if err != nil {
			fail(transportClass(err), err.Error())
			return nil
		}
		c.SetDeadline(time.Now().Add(g.o.Timeout))
		status, body, verr, err := oneRequest(c, wire[i], verify)
		if err != nil {
			c.Close()
			fail(transportClass(err), err.Error())
			return nil
		}
		c.SetDeadline(time.Time{})
		if verr != nil {
			unverified.Add(1)
		}
		if status != http.StatusOK {
			fail(codeOf(status, body), string(body))
		}
		mu.Lock() // the histogram is not safe for concurrent use
		hist.RecordValue(max(1, time.Since(t0).Microseconds()))
		mu.Unlock()
		conns[i] = c
		return nil
	})
	res.OpenSeconds = time.Since(start).Seconds()
	close(stopBar)
	bar.set(n)
	bar.finish()
	for _, c := range conns {
		if c != nil {
			res.Opened++
		}
	}
	res.ConnectionsPerS = float64(res.Opened) / res.OpenSeconds
	g.logf("holding %d connections for %s…", res.Opened, g.o.Hold)
	holdStart := time.Now()
	select {
	case <-time.After(g.o.Hold):
	case <-ctx.Done():
	}
	res.HeldSeconds = time.Since(holdStart).Seconds()
	if g.o.ServerPID > 0 {
		if res.RSSHeldKB, err = serverRSS(g.o.ServerPID); err != nil {
			return err
		}
		if res.Opened > 0 {
			res.KBPerConnection = float64(res.RSSHeldKB-res.RSSBeforeKB) / float64(res.Opened)
		}
	} else {
		res.RSSNotMeasured = "no --server-pid"
	}
	// A connection the server dropped while held reads EOF at once.
	for _, c := range conns {
		if c == nil {
			continue
		}
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); isTimeout(err) {
			res.StillOpenAtClose++
		}
		c.Close()
	}
	if lost := res.Opened - res.StillOpenAtClose; lost > 0 {
		errs["idle: closed by the server while held"] += int64(lost)
	}

	d := &drive{latency: hist, sent: int64(n), unverified: unverified.Load(), errors: errs, examples: examples,
		elapsed: time.Duration(res.OpenSeconds * float64(time.Second)), stoppedBy: "requests"}
	d.ok = int64(res.Opened)
	for k, v := range errs {
		if !strings.HasPrefix(k, "transport: ") && !strings.HasPrefix(k, "idle: ") {
			d.ok -= v
		}
	}
	sum.fill(d, g.o)
	return nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// oneRequest writes a pre-built HTTP/1.1 request on c, reads the response and
// verifies its platform signature.
func oneRequest(c net.Conn, wire []byte, verify func(*http.Response, []byte) error) (status int, body []byte, verr error, err error) {
	if _, err := c.Write(wire); err != nil {
		return 0, nil, nil, err
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return 0, nil, nil, err
	}
	if br.Buffered() > 0 {
		return 0, nil, nil, fmt.Errorf("unexpected %d bytes after the response", br.Buffered())
	}
	return resp.StatusCode, body, verify(resp, body), nil
}

// serverRSS reads VmRSS (kB) of pid from /proc.
func serverRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("server RSS: %w", err)
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(rest))
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("server RSS: no VmRSS in /proc/%d/status", pid)
}
