package attack

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	limitsOnce sync.Once
	limitsSrv  *server
)

// limited is a server with the default failure limit (20 refusals per
// merchant per 10 s; throttled answers held 200 ms instead of 1 s, to keep
// the test short) and small read, handshake and connection limits.
func limited(t *testing.T) *server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the real server")
	}
	limitsOnce.Do(func() {
		limitsSrv = start(t, "limits",
			"--auth-fail-max", "20", "--auth-fail-window", "10s", "--auth-fail-delay", "200ms",
			"--read-timeout", "2s", "--handshake-timeout", "2s", "--max-handshakes", "2",
			"--max-conns", "12", "--max-conns-per-merchant", "4")
	})
	if limitsSrv == nil {
		t.Fatal("the limits server did not start")
	}
	return limitsSrv
}

// keepAlive is one mTLS keep-alive connection sending raw requests.
type keepAlive struct {
	s    *server
	conn *tls.Conn
	br   *bufio.Reader
}

func (s *server) keepAlive(t testing.TB, merchant string) *keepAlive {
	t.Helper()
	conn, err := s.dial(hostPort(s.base), s.cert(merchant), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	return &keepAlive{s: s, conn: conn, br: bufio.NewReader(conn)}
}

func (k *keepAlive) send(raw string) (*response, error) { return k.s.roundTrip(k.br, k.conn, raw) }

// TestFloodingMerchantThrottled is issue 11 item 14 (cost amplification):
// a merchant holding only its client certificate floods forged requests on
// all the connections it may open, while the honest merchant pays. The
// flooder gets at most 20 RSA-signed 401s per 10 s window and then the one
// cached, signed 429 too_many_failures with Retry-After (so the flood costs
// no signature per request); every honest payment succeeds meanwhile, and
// the honest merchant's own refusals are not throttled by the flood. The
// latency side (honest p99 within 2× of its no-flood value) is the
// benchmark BenchmarkHonestP99UnderFlood (cmd/quill, docs/BENCHMARKS.md
// "issue 5"): a figure, not a test assertion.
func TestFloodingMerchantThrottled(t *testing.T) {
	s := limited(t)
	_, tok := s.wallet(t, "100.00")
	before := s.state(t)
	flooder := s.merchants[flooding]
	start := time.Now()
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		sigs429  = map[string]bool{}
		bad      []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 { // the per-merchant connection cap
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := s.keepAlive(t, flooding)
			defer k.conn.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := signWith(t, stranger(t), flooding, flooder.KeyID, "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", tok), time.Now())
				res, err := k.send(r.raw())
				mu.Lock()
				switch {
				case err != nil:
					bad = append(bad, err.Error())
				case !res.Signed:
					bad = append(bad, fmt.Sprintf("unsigned %d", res.Status))
				default:
					statuses[res.Status]++
					if res.Status == http.StatusTooManyRequests {
						sigs429[res.Header.Get("Wechatpay-Signature")] = true
						if res.Header.Get("Retry-After") == "" || !strings.Contains(string(res.Body), `"too_many_failures"`) {
							bad = append(bad, "429 without Retry-After or code: "+string(res.Body))
						}
					}
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	// The honest merchant pays during the flood, 20 times.
	honestOK := 0
	for range 20 {
		if r := s.send(t, honest, "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", tok)); r.Status == http.StatusOK && r.Signed {
			honestOK++
		} else {
			t.Errorf("honest payment during the flood: %d %s", r.Status, r.Body)
		}
	}
	// Its own forged request is its own failure, not throttled by the flood.
	own := signWith(t, stranger(t), honest, s.merchants[honest].KeyID, "GET", "/v1/certificates", nil, time.Now())
	refused(t, s.exchange(t, s.cert(honest), own.raw()), http.StatusUnauthorized, "signature_invalid", "signature_mismatch")
	// Let the flood run until it has been throttled a good while.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := statuses[http.StatusTooManyRequests]
		mu.Unlock()
		if n >= 40 || time.Now().After(deadline) {
			break
		}
	}
	close(stop)
	wg.Wait()
	windows := int(time.Since(start)/(10*time.Second)) + 1
	t.Logf("flood: %v in %d window(s); honest: %d/20 paid", statuses, windows, honestOK)
	if len(bad) > 0 {
		t.Fatalf("flood answers: %q", bad[:min(len(bad), 5)])
	}
	if statuses[http.StatusTooManyRequests] < 40 {
		t.Fatalf("the flood was not throttled: %v", statuses)
	}
	if n := statuses[http.StatusUnauthorized]; n > 20*windows {
		t.Fatalf("%d signed 401s in %d window(s): the limit is 20 per window", n, windows)
	}
	// One signature per 10 s presign period, whatever the flood's rate.
	if len(sigs429) > windows+1 {
		t.Fatalf("%d distinct 429 signatures for %d 429s", len(sigs429), statuses[http.StatusTooManyRequests])
	}
	after := s.state(t)
	if after.entries != before.entries+int64(honestOK) {
		t.Fatalf("entries %d → %d, want only the %d honest payments", before.entries, after.entries, honestOK)
	}
}

// vmHWM is the server process's peak resident memory, in KiB.
func (s *server) vmHWM(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestOversizedBodiesBoundedMemory is issue 11 item 14 (bodies): sixteen
// clients at once each announce and stream a 16 MiB body (and one sends
// chunks without a length); each gets a signed 413 body_too_large once 64
// KiB are read, the server's peak memory grows by far less than the bodies'
// 256 MiB, and nothing is recorded.
func TestOversizedBodiesBoundedMemory(t *testing.T) {
	s := shared(t)
	_, tok := s.wallet(t, "10.00")
	before, hwm := s.state(t), s.vmHWM(t)
	const clients, size = 16, 16 << 20
	var wg sync.WaitGroup
	errs := make(chan error, clients+1)
	upload := func(chunked bool) {
		defer wg.Done()
		body := paymentBody(newOrderID(), "1.00", tok)
		r := s.sign(t, honest, "POST", "/v1/payments", body)
		conn, err := s.dial(hostPort(s.base), s.cert(honest), nil)
		if err != nil {
			errs <- err
			return
		}
		defer conn.Close()
		head := "POST /v1/payments HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + r.auth + "\r\nContent-Type: application/json\r\n"
		if chunked {
			head += "Transfer-Encoding: chunked\r\n\r\n"
		} else {
			head += "Content-Length: " + itoa(size) + "\r\n\r\n"
		}
		go func() {
			io.WriteString(conn, head)
			chunk := []byte(strings.Repeat(" ", 32<<10))
			for sent := 0; sent < size; sent += len(chunk) {
				var err error
				if chunked {
					_, err = fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk)
				} else {
					_, err = conn.Write(chunk)
				}
				if err != nil {
					return // the server answered and closed: expected
				}
			}
		}()
		res, err := s.roundTrip(bufio.NewReader(conn), io.Discard, "")
		if err != nil {
			errs <- err
			return
		}
		if res.Status != http.StatusRequestEntityTooLarge || !res.Signed || !strings.Contains(string(res.Body), `"body_too_large"`) {
			errs <- fmt.Errorf("%d signed=%v %s", res.Status, res.Signed, res.Body)
		}
	}
	for i := range clients + 1 {
		wg.Add(1)
		go upload(i == clients)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	grew := s.vmHWM(t) - hwm
	t.Logf("peak RSS grew by %d KiB for %d MiB of bodies", grew, clients*size>>20)
	if grew > 64<<10 {
		t.Fatalf("peak RSS grew by %d KiB: bodies were buffered", grew)
	}
	s.unchanged(t, before)
}

// TestDeeplyNestedJSON is issue 11 item 14 (nesting): a correctly signed
// body that nests arrays or objects thousands deep, within the size limit,
// is a signed 400 or 422 (never a 5xx), nothing is recorded and the server
// serves the next payment.
func TestDeeplyNestedJSON(t *testing.T) {
	s := shared(t)
	_, tok := s.wallet(t, "10.00")
	for _, c := range []struct{ name, value string }{
		{"arrays in a string field", strings.Repeat("[", 20000) + strings.Repeat("]", 20000)},
		{"objects in an unknown member", strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)},
		{"unclosed arrays", strings.Repeat("[", 60000)},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := s.state(t)
			member := "description"
			if strings.Contains(c.name, "unknown") {
				member = "extra"
			}
			body := fmt.Sprintf(`{"order_id":%q,"amount":"1.00","currency":"CNY","payer_token":%q,%q:%s}`, newOrderID(), tok, member, c.value)
			r := s.send(t, honest, "POST", "/v1/payments", []byte(body))
			if !r.Signed || (r.Status != http.StatusBadRequest && r.Status != http.StatusUnprocessableEntity) {
				t.Fatalf("%d signed=%v %.300s", r.Status, r.Signed, r.Body)
			}
			s.unchanged(t, before)
		})
	}
	if r := s.send(t, honest, "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", tok)); r.Status != http.StatusOK {
		t.Fatalf("after the nesting: %d %s", r.Status, r.Body)
	}
}

// closedWithoutAnswer waits (up to 30 s; generous, not a timing claim) for
// the server to close conn, and fails if it answers instead.
func closedWithoutAnswer(t testing.TB, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	b := make([]byte, 1)
	n, err := conn.Read(b)
	var ne net.Error
	switch {
	case n > 0:
		t.Fatalf("the server answered (%q…)", b[:n])
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatal("the connection is still open after 30 s")
	}
}

// TestSlowClientsClosed is issue 11 item 14 (slowloris, slow body): a
// client trickling its headers is cut by the header timeout without an
// answer; one that stops sending its body gets a signed 408 request_timeout
// and its nonce is not claimed; the honest merchant is served meanwhile.
func TestSlowClientsClosed(t *testing.T) {
	s := limited(t)
	_, tok := s.wallet(t, "10.00")
	before := s.state(t)
	var wg sync.WaitGroup
	for range 3 { // three slowloris connections of the flooder
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := s.dial(hostPort(s.base), s.cert(flooding), nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			io.WriteString(conn, "GET /v1/certificates HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range 200 {
					if _, err := conn.Write([]byte("a")); err != nil {
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
			}()
			closedWithoutAnswer(t, conn)
			conn.Close()
			<-done
		}()
	}
	if r := s.send(t, honest, "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", tok)); r.Status != http.StatusOK {
		t.Errorf("honest payment beside slow clients: %d %s", r.Status, r.Body)
	}
	// A body that stops arriving.
	r := s.sign(t, honest, "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", tok))
	raw := r.raw()
	conn, err := s.dial(hostPort(s.base), s.cert(honest), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := s.roundTrip(bufio.NewReader(conn), conn, raw[:len(raw)-10])
	if err != nil {
		t.Fatal(err)
	}
	refused(t, res, http.StatusRequestTimeout, "request_timeout", "")
	if s.nonceClaimed(t, honest, r.nonce) {
		t.Fatal("the stalled request claimed its nonce")
	}
	wg.Wait()
	after := s.state(t)
	if after.entries != before.entries+1 {
		t.Fatalf("entries %d → %d, want the one honest payment", before.entries, after.entries)
	}
}

// TestConnectionFloodsCapped is issue 11 item 14 (connections): TCP
// connections that never send a ClientHello do not keep the honest merchant
// out and are cut by the handshake timeout; a merchant's connections past
// its cap, and anyone's past the overall cap, are closed without an
// answer; the honest merchant gets through once a slot is free.
// TestConnectionCapPerMerchant (cmd/quill) and internal/netlimit's tests
// cover the caps one by one.
func TestConnectionFloodsCapped(t *testing.T) {
	s := limited(t)
	// Handshake flood: 10 connections that send nothing.
	var idle []net.Conn
	for range 10 {
		c, err := net.Dial("tcp", hostPort(s.base))
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	if r := s.send(t, honest, "GET", "/v1/certificates", nil); r.Status != http.StatusOK {
		t.Fatalf("during the handshake flood: %d", r.Status)
	}
	for _, c := range idle {
		closedWithoutAnswer(t, c)
		c.Close()
	}

	// served reports whether a request on k gets an answer.
	served := func(k *keepAlive) bool {
		if k == nil {
			return false
		}
		_, err := k.send(s.sign(t, honest, "GET", "/v1/certificates", nil).raw())
		return err == nil
	}
	var open []*keepAlive
	defer func() {
		for _, k := range open {
			k.conn.Close()
		}
	}()
	// hold opens a connection as merchant; nil if the server cut it
	// during the handshake.
	hold := func(merchant string) *keepAlive {
		conn, err := s.dial(hostPort(s.base), s.cert(merchant), nil)
		if err != nil {
			return nil
		}
		k := &keepAlive{s: s, conn: conn, br: bufio.NewReader(conn)}
		open = append(open, k)
		return k
	}
	// The flooder's connections past its cap of 4.
	for range 4 {
		if k := hold(flooding); !served(k) {
			t.Fatal("a connection under the merchant cap refused")
		}
	}
	if served(hold(flooding)) {
		t.Fatal("a fifth connection of one merchant served over a cap of 4")
	}
	// Everyone's past the overall cap of 12 (4 flooder + 4 + 4 held).
	for _, m := range []string{other, topUp} {
		for range 4 {
			hold(m)
		}
	}
	time.Sleep(200 * time.Millisecond) // the server counts the closed fifth asynchronously
	if served(hold(honest)) {
		t.Fatal("a connection served over the overall cap of 12")
	}
	// Freeing one slot lets the honest merchant in.
	open[0].conn.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if served(hold(honest)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no honest connection served after a slot was freed")
		}
	}
}
