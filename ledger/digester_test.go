package ledger

import "testing"

// TestDigesterMatchesDigests: a reused Digester gives exactly the package
// functions' digests, whatever it hashed before (longer or shorter inputs,
// more or fewer postings, postings given in any order).
func TestDigesterMatchesDigests(t *testing.T) {
	e, rec, prev := exampleEntry()
	big := e
	big.Description = string(make([]byte, 3000))
	big.Postings = append([]Posting{{Account: "user:9", Currency: "CNY", Amount: 5}, {Account: "bank:settlement", Currency: "CNY", Amount: -5}}, e.Postings...)
	dep := Deposit("TOPUP", "D1", "42", "CNY", 100, e.Evidence)
	var d Digester
	for i, x := range []Entry{big, e, dep, big, dep, e} {
		if d.Fingerprint(x) != Fingerprint(x) {
			t.Fatalf("%d: fingerprint differs", i)
		}
		if d.EvidenceDigest(x.Evidence) != EvidenceDigest(x.Evidence) {
			t.Fatalf("%d: evidence digest differs", i)
		}
		r := rec
		r.Description, r.Fingerprint = x.Description, Fingerprint(x)
		evd := EvidenceDigest(x.Evidence)
		if d.ChainHash(prev, r, x.Postings, evd) != ChainHash(prev, r, x.Postings, evd) {
			t.Fatalf("%d: chain hash differs", i)
		}
	}
	// Sorting happens on a copy: the caller's postings keep their order.
	first := big.Postings[0]
	d.Fingerprint(big)
	if big.Postings[0] != first {
		t.Fatal("Digester reordered the caller's postings")
	}
}
