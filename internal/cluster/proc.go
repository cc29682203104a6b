package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a process started by Start, in its own process group.
type Proc struct {
	Name string
	Log  string // file receiving stdout and stderr

	cmd  *exec.Cmd
	once sync.Once
	done chan struct{}
}

// Start runs name with args and env appended to the environment, output to
// dir/<label>.log, and kills its process group when tb ends.
func Start(tb testing.TB, dir, label string, env []string, name string, args ...string) *Proc {
	tb.Helper()
	p, err := start(dir, label, env, name, args...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Kill)
	return p
}

func start(dir, label string, env []string, name string, args ...string) (*Proc, error) {
	logPath := filepath.Join(dir, label+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cluster: start %s: %w", label, err)
	}
	p := &Proc{Name: label, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Kill sends SIGKILL to the process group and waits for the leader to exit.
// It is idempotent.
func (p *Proc) Kill() {
	p.once.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	})
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Run runs a command to completion with a deadline and returns its combined
// output.
func Run(timeout time.Duration, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out safeBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return out.String(), fmt.Errorf("%s %v: %w\n%s", name, args, err, out.String())
		}
		return out.String(), nil
	case <-time.After(timeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return out.String(), fmt.Errorf("%s %v: no result in %s\n%s", name, args, timeout, out.String())
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// FreePorts returns n distinct loopback ports that were free a moment ago.
// With bus set, port+10000 was free too (a Redis Cluster bus port).
func FreePorts(tb testing.TB, n int, bus bool) []int {
	tb.Helper()
	var (
		out  []int
		held []net.Listener
	)
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for tries := 0; len(out) < n && tries < 1000; tries++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if bus {
			if port+10000 > 65535 {
				l.Close()
				continue
			}
			b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
			if err != nil {
				l.Close()
				continue
			}
			held = append(held, b)
		}
		held = append(held, l)
		out = append(out, port)
	}
	if len(out) < n {
		tb.Fatalf("cluster: only %d free ports found", len(out))
	}
	return out
}

// Need fails tb unless every binary is found, naming the Debian package.
func Need(tb testing.TB, pkg string, bins ...string) {
	tb.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			tb.Fatalf("cluster: %s not found (apt-get install %s; scripts/test.sh does it): %v", b, pkg, err)
		}
	}
}

// Eventually polls f until it returns nil or timeout passes, and returns the
// last error.
func Eventually(timeout, every time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		time.Sleep(every)
	}
}

// errNotYet is what a poll returns while a condition does not hold yet.
var errNotYet = errors.New("not yet")
