// Package vaulttest gives tests a real HashiCorp Vault: tools/devvault (Vault
// v1.14.1's own in-process server with the KV v2 plugin), run as a
// subprocess on a loopback port, and a TCP proxy in front of it that a test
// can cut to make Vault unreachable.
//
// The devvault binary is built once per test process (into a temporary
// directory, from the shared Go build cache) unless QUILL_DEVVAULT names a
// prebuilt one, as scripts/test.sh does. Every devvault is in memory and
// exits when the test process closes its stdin, so nothing outlives a test
// run. Tests talk to it with the service's own vault/api: nothing here
// imitates Vault's HTTP API.
package vaulttest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error

	sharedOnce sync.Once
	shared     *Vault
	sharedErr  error
)

// Binary returns the devvault program, building it on first use.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("QUILL_DEVVAULT"); p != "" {
			binPath = p
			return
		}
		_, self, _, ok := runtime.Caller(0)
		if !ok {
			buildErr = fmt.Errorf("vaulttest: cannot locate tools/devvault")
			return
		}
		src := filepath.Join(filepath.Dir(self), "..", "..", "tools", "devvault")
		dir, err := os.MkdirTemp("", "quill-devvault-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "devvault")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("vaulttest: building tools/devvault: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

// Vault is a running devvault.
type Vault struct {
	Addr      string `json:"addr"`       // http://127.0.0.1:PORT
	RootToken string `json:"root_token"` // a root token (loopback dev only)
	Mount     string `json:"mount"`      // the KV v2 mount
	RoleID    string `json:"role_id"`    // with -approle: role "quill"
	SecretID  string `json:"secret_id"`  // with -approle

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *lockedBuilder
}

// Start runs a private devvault with extra flags (-approle,
// -approle-token-ttl 2s, …); the test's cleanup stops it.
func Start(tb testing.TB, args ...string) *Vault {
	tb.Helper()
	v, err := launch(Binary(tb), args...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Stop)
	return v
}

// Shared returns one devvault for the whole test process, for tests that
// neither seal nor stop it; they keep apart by using their own path prefix
// (Prefix).
func Shared(tb testing.TB) *Vault {
	tb.Helper()
	bin := Binary(tb)
	sharedOnce.Do(func() { shared, sharedErr = launch(bin) })
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

// Prefix returns a fresh path prefix for one test's rings.
func Prefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "t-" + hex.EncodeToString(b)
}

func launch(bin string, args ...string) (*Vault, error) {
	cmd := exec.Command(bin, append([]string{"-stdin"}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	v := &Vault{cmd: cmd, stdin: stdin, lines: make(chan string, 16), stderr: &lockedBuilder{}}
	cmd.Stderr = v.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			v.lines <- sc.Text()
		}
		close(v.lines)
	}()
	select {
	case line, ok := <-v.lines:
		if ok && json.Unmarshal([]byte(line), v) == nil && v.Addr != "" {
			return v, nil
		}
	case <-time.After(2 * time.Minute):
	}
	v.Stop()
	return nil, fmt.Errorf("vaulttest: devvault did not start; its log:\n%s", v.stderr.String())
}

// Stop closes devvault's stdin, which ends it, and waits.
func (v *Vault) Stop() {
	v.stdin.Close()
	done := make(chan struct{})
	go func() { v.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		v.cmd.Process.Kill()
		<-done
	}
}

// Seal seals the Vault: every request then answers 503 "Vault is sealed".
func (v *Vault) Seal(tb testing.TB) { tb.Helper(); v.command(tb, "seal") }

// Unseal unseals it and waits until the KV v2 mount accepts writes again.
func (v *Vault) Unseal(tb testing.TB) { tb.Helper(); v.command(tb, "unseal") }

func (v *Vault) command(tb testing.TB, cmd string) {
	tb.Helper()
	if _, err := fmt.Fprintln(v.stdin, cmd); err != nil {
		tb.Fatal(err)
	}
	select {
	case line := <-v.lines:
		if want := fmt.Sprintf(`{"sealed":%t}`, cmd == "seal"); line != want {
			tb.Fatalf("devvault answered %q to %s, want %s", line, cmd, want)
		}
	case <-time.After(time.Minute):
		tb.Fatalf("devvault did not answer %s", cmd)
	}
}

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil // keep the head of the log, not all of it
	}
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Proxy is a loopback TCP proxy in front of a Vault that a test can cut
// (the port then refuses connections and open ones are closed) and restore
// on the same port.
type Proxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

// NewProxy proxies to the Vault at addr (http://host:port); the test's
// cleanup closes it.
func NewProxy(tb testing.TB, addr string) *Proxy {
	tb.Helper()
	p := &Proxy{target: strings.TrimPrefix(addr, "http://"), conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	tb.Cleanup(p.Cut)
	return p
}

// URL is the proxy's address as a Vault URL.
func (p *Proxy) URL() string { return "http://" + p.addr }

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *Proxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut while dialing
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// Cut closes the listener and every proxied connection.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore listens on the same port again.
func (p *Proxy) Restore(tb testing.TB) {
	tb.Helper()
	var err error
	for range 100 { // the closed socket may hold the port for a moment
		var ln net.Listener
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("vaulttest: proxy cannot listen on %s again: %v", p.addr, err)
}
