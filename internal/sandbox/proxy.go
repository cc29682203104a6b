package sandbox

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy relays TCP from a loopback port of its own to a target, so a test
// can take the target away from one client (Refuse) without stopping it, or
// cut a PostgreSQL connection exactly at COMMIT (CutAtCommit).
type Proxy struct {
	Addr string

	target   string
	ln       net.Listener
	refusing atomic.Bool
	armed    atomic.Pointer[commitCut]

	mu    sync.Mutex
	conns map[*proxyConn]struct{}
}

// CommitCut says where CutAtCommit cuts.
type CommitCut int

const (
	// AfterCommit lets COMMIT reach the server and waits for its reply (the
	// transaction is committed) but never delivers the reply: the client
	// cannot tell whether it committed.
	AfterCommit CommitCut = iota + 1
	// BeforeCommit cuts the connection instead of sending COMMIT: the server
	// rolls the transaction back, and the client again cannot tell.
	BeforeCommit
)

type commitCut struct {
	where      CommitCut
	thenRefuse bool
	done       chan struct{}
}

type proxyConn struct {
	client, server net.Conn
	hold           atomic.Bool   // the reply to a COMMIT is not to be relayed
	replied        chan struct{} // closed when a held reply arrived
	once           sync.Once
}

// commitMessage is a simple-protocol Query message "commit", which is how
// pgx sends Tx.Commit.
var commitMessage = []byte("Q\x00\x00\x00\x0bcommit\x00")

// NewProxy starts a proxy to target; the test's cleanup stops it and cuts
// every connection.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[*proxyConn]struct{}{}}
	go p.accept()
	tb.Cleanup(func() { ln.Close(); p.cutAll() })
	return p
}

// Refuse cuts every connection and refuses new ones until Relay.
func (p *Proxy) Refuse() {
	p.refusing.Store(true)
	p.cutAll()
}

// Relay accepts and relays connections again.
func (p *Proxy) Relay() { p.refusing.Store(false) }

// CutAtCommit arms the proxy: the next COMMIT any connection sends is cut
// where says, and with thenRefuse the proxy then refuses connections (as
// Refuse) so that the client cannot look its outcome up at once. The
// returned channel is closed once the cut happened.
func (p *Proxy) CutAtCommit(where CommitCut, thenRefuse bool) <-chan struct{} {
	c := &commitCut{where: where, thenRefuse: thenRefuse, done: make(chan struct{})}
	p.armed.Store(c)
	return c.done
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refusing.Load() {
			c.Close()
			continue
		}
		go p.relay(c)
	}
}

func (p *Proxy) relay(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	pc := &proxyConn{client: c, server: up, replied: make(chan struct{})}
	p.mu.Lock()
	p.conns[pc] = struct{}{}
	p.mu.Unlock()
	go p.toServer(pc)
	buf := make([]byte, 32<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 && pc.hold.Load() {
			// cutCommit closes the connection, after the other cuts.
			pc.once.Do(func() { close(pc.replied) })
			return
		}
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	p.drop(pc)
}

func (p *Proxy) toServer(pc *proxyConn) {
	defer p.drop(pc)
	buf := make([]byte, 32<<10)
	for {
		n, err := pc.client.Read(buf)
		if n > 0 {
			if cut := p.armed.Load(); cut != nil && bytes.Contains(buf[:n], commitMessage) && p.armed.CompareAndSwap(cut, nil) {
				p.cutCommit(pc, cut, buf[:n])
				return
			}
			if _, werr := pc.server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cutCommit carries out cut on pc, whose client just sent chunk holding
// COMMIT.
func (p *Proxy) cutCommit(pc *proxyConn, cut *commitCut, chunk []byte) {
	if cut.thenRefuse {
		p.refusing.Store(true) // before anything the client could notice
	}
	if cut.where == AfterCommit {
		pc.hold.Store(true)
		if _, err := pc.server.Write(chunk); err == nil {
			select { // the server's reply: the commit is decided
			case <-pc.replied:
			case <-time.After(10 * time.Second):
			}
		}
	}
	if cut.thenRefuse {
		p.cutAll() // pc too
	} else {
		p.drop(pc)
	}
	close(cut.done)
}

func (p *Proxy) drop(pc *proxyConn) {
	pc.client.Close()
	pc.server.Close()
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

func (p *Proxy) cutAll() {
	p.mu.Lock()
	all := make([]*proxyConn, 0, len(p.conns))
	for pc := range p.conns {
		all = append(all, pc)
	}
	p.mu.Unlock()
	for _, pc := range all {
		p.drop(pc)
	}
}
