package attack

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
)

var (
	fuzzWalletOnce sync.Once
	fuzzUser       string
	fuzzToken      string
)

// mutate changes one byte of b at pos (mod len): op 0 xors it with x, 1
// deletes it, 2 inserts x before it. It returns nil if nothing changed.
func mutate(b []byte, pos uint16, op uint8, x byte) []byte {
	if len(b) == 0 {
		return nil
	}
	i := int(pos) % len(b)
	out := bytes.Clone(b)
	switch op % 3 {
	case 0:
		if x == 0 {
			return nil
		}
		out[i] ^= x
	case 1:
		out = append(out[:i], out[i+1:]...)
	default:
		out = append(out[:i], append([]byte{x}, out[i:]...)...)
	}
	if bytes.Equal(out, b) {
		return nil
	}
	return out
}

// quotedValues returns the positions of the bytes inside the header's
// quoted values: what the signature's fields say, not the separators
// around them (whitespace after a comma and the scheme's case are free).
func quotedValues(h string) []int {
	var pos []int
	in := false
	for i := 0; i < len(h); i++ {
		switch {
		case h[i] == '"':
			in = !in
		case in:
			pos = append(pos, i)
		}
	}
	return pos
}

// FuzzTamperedRequestRefused is issue 11 item 10, fuzzed: a payment the
// merchant signed, with one byte of what the signature covers changed,
// deleted or inserted — in the method, the request-target, the body or a
// value of the Authorization header — is never accepted, and the ledger
// does not move (the process's wallet; the order). Each input is sent to the real server over mTLS; the seed
// corpus (testdata/fuzz) runs in every `go test`, fuzzing only from
// scripts/fuzz.sh.
func FuzzTamperedRequestRefused(f *testing.F) {
	f.Add(uint8(0), uint16(0), uint8(0), byte(0x20))   // method case
	f.Add(uint8(1), uint16(3), uint8(0), byte(0x01))   // target byte
	f.Add(uint8(1), uint16(12), uint8(2), byte('/'))   // target: a slash inserted
	f.Add(uint8(1), uint16(12), uint8(2), byte('?'))   // target: an empty query
	f.Add(uint8(2), uint16(40), uint8(0), byte(0x01))  // body byte
	f.Add(uint8(2), uint16(0), uint8(2), byte(' '))    // body: leading space
	f.Add(uint8(2), uint16(9999), uint8(1), byte(0))   // body: a byte deleted
	f.Add(uint8(3), uint16(0), uint8(0), byte(0x01))   // the mchid
	f.Add(uint8(3), uint16(20), uint8(0), byte(0x02))  // the nonce
	f.Add(uint8(3), uint16(50), uint8(2), byte('0'))   // the timestamp: a digit inserted
	f.Add(uint8(3), uint16(500), uint8(0), byte(0x04)) // the signature
	f.Fuzz(func(t *testing.T, part uint8, pos uint16, op uint8, x byte) {
		s := shared(t)
		fuzzWalletOnce.Do(func() { fuzzUser, fuzzToken = s.wallet(t, "1000.00") })
		order := newOrderID()
		r := s.sign(t, honest, "POST", "/v1/payments", paymentBody(order, "1.00", fuzzToken))
		switch part % 4 {
		case 0:
			m := mutate([]byte(r.method), pos, op, x)
			if m == nil {
				return
			}
			r.method = string(m)
		case 1:
			m := mutate([]byte(r.target), pos, op, x)
			if m == nil {
				return
			}
			r.target = string(m)
		case 2:
			if r.body = mutate(r.body, pos, op, x); r.body == nil {
				return
			}
			sent.addBody(r.body)
		default:
			vals := quotedValues(r.auth)
			i := vals[int(pos)%len(vals)]
			m := mutate([]byte(r.auth), uint16(i), op, x)
			if m == nil {
				return
			}
			r.auth = string(m)
		}
		// Fuzzing workers share the server, so the ledger as a whole moves
		// under each; what this input could change is this process's
		// wallet (every payment debits it) and its order.
		before := s.walletBalance(t, fuzzUser)
		res, err := s.tryExchange(s.cert(honest), nil, r.raw())
		if err == nil && res.Status < 400 {
			t.Fatalf("tampered request accepted: %d %s\n%q", res.Status, res.Body, r.raw())
		}
		if err == nil && res.Status >= 500 && res.Status != http.StatusServiceUnavailable {
			t.Fatalf("tampered request: %d %s", res.Status, res.Body)
		}
		if after := s.walletBalance(t, fuzzUser); after != before {
			t.Fatalf("the wallet moved %d → %d", before, after)
		}
		var n int
		if err := s.db.QueryRow(t.Context(), `SELECT count(*) FROM entries WHERE order_id = $1`, order).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d entries for the order (%v)", n, err)
		}
	})
}
