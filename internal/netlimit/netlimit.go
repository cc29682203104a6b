package netlimit

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the limits of a Listener. Zero values are not defaults:
// callers validate their configuration and pass every limit.
type Options struct {
	MaxConns         int           // concurrent connections, handshaking or served
	MaxHandshakes    int           // concurrent TLS handshakes past the ClientHello
	MaxConnsPerKey   int           // concurrent served connections per Key
	HandshakeTimeout time.Duration // from accept to a finished handshake
	// Key names the client of a finished handshake (the merchant of the client
	// certificate); "" is not limited per key.
	Key func(tls.ConnectionState) string
}

// Stats are counters (since the previous TakeStats, or since Listen for
// Totals) and two gauges.
type Stats struct {
	HandshakeFailures int64  // handshakes that failed or timed out
	LastFailure       string // the last handshake error, as a sample
	RefusedConns      int64  // connections closed at once: MaxConns reached
	RefusedPerKey     int64  // connections closed after the handshake: MaxConnsPerKey reached
	Conns             int    // open connections now (gauge)
	Handshakes        int    // handshakes holding a slot now (gauge)
}

// Listener accepts TLS connections within Options' limits. Accept returns
// connections whose handshake has completed (*tls.Conn, as net/http expects).
type Listener struct {
	inner net.Listener
	conf  *tls.Config
	o     Options

	ready     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	acceptErr error // set before done is closed when the inner listener fails

	slots chan struct{} // handshake semaphore

	mu     sync.Mutex
	conns  int
	perKey map[string]int
	last   string

	// Counters since Listen; taken holds their values at the last TakeStats.
	failures, refusedConns, refusedPerKey atomic.Int64
	taken                                 Stats
}

// Listen wraps inner. conf is the server's TLS configuration; it is cloned,
// and its GetConfigForClient, if any, still runs.
func Listen(inner net.Listener, conf *tls.Config, o Options) *Listener {
	l := &Listener{
		inner:  inner,
		o:      o,
		ready:  make(chan net.Conn),
		done:   make(chan struct{}),
		slots:  make(chan struct{}, o.MaxHandshakes),
		perKey: map[string]int{},
	}
	l.conf = conf.Clone()
	next := conf.GetConfigForClient
	l.conf.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c, ok := hello.Conn.(*conn)
		if !ok {
			return nil, errors.New("netlimit: foreign connection")
		}
		select {
		case l.slots <- struct{}{}:
			c.slot = true
		case <-hello.Context().Done():
			return nil, hello.Context().Err()
		}
		if next != nil {
			return next(hello)
		}
		return nil, nil
	}
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	var delay time.Duration
	for {
		raw, err := l.inner.Accept()
		if err != nil {
			if isTemporary(err) {
				// As net/http does for temporary accept errors (EMFILE…).
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-l.done:
					return
				}
			}
			l.closeOnce.Do(func() { l.acceptErr = err; close(l.done) })
			return
		}
		delay = 0
		l.mu.Lock()
		full := l.conns >= l.o.MaxConns
		if !full {
			l.conns++
		}
		l.mu.Unlock()
		if full {
			l.refusedConns.Add(1)
			raw.Close()
			continue
		}
		go l.handshake(&conn{Conn: raw, l: l})
	}
}

// isTemporary reports an accept error worth retrying (EMFILE, ECONNABORTED):
// the deprecated net.Error method is still how accept says so.
func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

func (l *Listener) handshake(c *conn) {
	tc := tls.Server(c, l.conf)
	ctx, cancel := context.WithTimeout(context.Background(), l.o.HandshakeTimeout)
	c.SetDeadline(time.Now().Add(l.o.HandshakeTimeout))
	err := tc.HandshakeContext(ctx)
	cancel()
	if c.slot {
		<-l.slots
		c.slot = false
	}
	if err != nil {
		l.failures.Add(1)
		l.mu.Lock()
		l.last = err.Error()
		l.mu.Unlock()
		c.Close() // no close_notify: the peer never finished a handshake
		return
	}
	c.SetDeadline(time.Time{})
	if key := l.key(tc.ConnectionState()); key != "" {
		l.mu.Lock()
		full := l.perKey[key] >= l.o.MaxConnsPerKey
		if !full {
			l.perKey[key]++
			c.key = key
		}
		l.mu.Unlock()
		if full {
			l.refusedPerKey.Add(1)
			tc.Close()
			return
		}
	}
	select {
	case l.ready <- tc:
	case <-l.done:
		tc.Close()
	}
}

func (l *Listener) key(cs tls.ConnectionState) string {
	if l.o.Key == nil {
		return ""
	}
	return l.o.Key(cs)
}

// Accept returns the next connection whose handshake has completed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		if l.acceptErr != nil {
			return nil, l.acceptErr
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting; handshakes in progress are dropped as they finish.
// Connections already returned by Accept are not closed.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.inner.Close()
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// TakeStats returns the counters since the last call, resetting them, and
// the current gauges.
func (l *Listener) TakeStats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	total := l.totalsLocked()
	s := Stats{
		HandshakeFailures: total.HandshakeFailures - l.taken.HandshakeFailures,
		RefusedConns:      total.RefusedConns - l.taken.RefusedConns,
		RefusedPerKey:     total.RefusedPerKey - l.taken.RefusedPerKey,
		Conns:             total.Conns,
		Handshakes:        total.Handshakes,
	}
	l.taken = total
	if s.HandshakeFailures > 0 {
		s.LastFailure = l.last
	}
	l.last = ""
	return s
}

// Totals returns the counters since Listen (monotonic, for metrics; TakeStats
// does not reset them) and the current gauges. LastFailure is left empty.
func (l *Listener) Totals() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.totalsLocked()
}

func (l *Listener) totalsLocked() Stats {
	return Stats{
		HandshakeFailures: l.failures.Load(),
		RefusedConns:      l.refusedConns.Load(),
		RefusedPerKey:     l.refusedPerKey.Load(),
		Conns:             l.conns,
		Handshakes:        len(l.slots),
	}
}

// conn is an accepted connection: closing it frees its slots.
type conn struct {
	net.Conn
	l    *Listener
	slot bool   // holds a handshake slot (set and cleared by the handshake goroutine)
	key  string // counted under this key
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.conns--
		if c.key != "" {
			if c.l.perKey[c.key]--; c.l.perKey[c.key] <= 0 {
				delete(c.l.perKey, c.key)
			}
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
