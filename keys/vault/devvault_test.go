package vault

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests here run against a real Vault: tools/devvault (Vault v1.14.1's
// own server code with the KV v2 plugin), built once per test run and started
// as a subprocess. QUILL_DEVVAULT may name a prebuilt binary (scripts/test.sh
// builds one before the suite).

var (
	binDir      string
	buildOnce   sync.Once
	devVaultBin string
	buildErr    error

	sharedOnce sync.Once
	shared     *devVault
	sharedErr  error
)

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "quill-devvault-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	os.RemoveAll(binDir)
	os.Exit(code)
}

// devVaultBinary returns the devvault program, building it on first use.
func devVaultBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("QUILL_DEVVAULT"); p != "" {
			devVaultBin = p
			return
		}
		src, err := filepath.Abs("../../tools/devvault")
		if err != nil {
			buildErr = err
			return
		}
		devVaultBin = filepath.Join(binDir, "devvault")
		cmd := exec.Command("go", "build", "-o", devVaultBin, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building tools/devvault: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return devVaultBin
}

// devVault is a running devvault process.
type devVault struct {
	Addr      string `json:"addr"`
	RootToken string `json:"root_token"`
	Mount     string `json:"mount"`
	RoleID    string `json:"role_id"`
	SecretID  string `json:"secret_id"`

	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// startDevVault starts a private Vault; the test's cleanup stops it.
func startDevVault(tb testing.TB, args ...string) *devVault {
	tb.Helper()
	v, err := launch(devVaultBinary(tb), args...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.stop)
	return v
}

// sharedVault is one Vault for the tests that do not seal or stop it; each
// test works under its own prefix.
func sharedVault(tb testing.TB) *devVault {
	tb.Helper()
	bin := devVaultBinary(tb)
	sharedOnce.Do(func() { shared, sharedErr = launch(bin) })
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

func launch(bin string, args ...string) (*devVault, error) {
	cmd := exec.Command(bin, append([]string{"-stdin"}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &syncWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	v := &devVault{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
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
	v.stop()
	return nil, fmt.Errorf("devvault did not start; stderr:\n%s", stderr.String())
}

// stop closes stdin (devvault exits) and waits.
func (v *devVault) stop() {
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

// command sends seal or unseal and waits for devvault's answer.
func (v *devVault) command(tb testing.TB, cmd string) {
	tb.Helper()
	if _, err := fmt.Fprintln(v.stdin, cmd); err != nil {
		tb.Fatal(err)
	}
	select {
	case line := <-v.lines:
		want := fmt.Sprintf(`{"sealed":%t}`, cmd == "seal")
		if line != want {
			tb.Fatalf("devvault answered %q to %s, want %s", line, cmd, want)
		}
	case <-time.After(time.Minute):
		tb.Fatalf("devvault did not answer %s", cmd)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// uniquePrefix keeps tests on the shared Vault apart.
func uniquePrefix(tb testing.TB) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "t-" + hex.EncodeToString(b)
}

// cutProxy is a loopback TCP proxy in front of Vault that a test can cut
// (the port then refuses connections) and restore on the same port.
type cutProxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newCutProxy(tb testing.TB, target string) *cutProxy {
	tb.Helper()
	p := &cutProxy{target: strings.TrimPrefix(target, "http://"), conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	tb.Cleanup(p.cut)
	return p
}

func (p *cutProxy) URL() string { return "http://" + p.addr }

func (p *cutProxy) serve(ln net.Listener) {
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

func (p *cutProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// cut closes the listener and every proxied connection.
func (p *cutProxy) cut() {
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

// restore listens on the same port again.
func (p *cutProxy) restore(tb testing.TB) {
	tb.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the old socket may take a moment to let go of the port
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("proxy cannot listen on %s again: %v", p.addr, err)
}

// openStore opens a Store on v under a fresh prefix with the root token.
func openStore(tb testing.TB, addr, token, prefix string, now func() time.Time) *Store {
	tb.Helper()
	s, err := Open(Config{Address: addr, Token: token, Prefix: prefix, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

var bg = context.Background()
