package ledger

// The canonical byte strings behind the three digests: Fingerprint,
// EvidenceDigest and ChainHash are SHA-256 of these, so there is one encoding
// of each. They are exported so the documentation's worked example
// (docs/AUDIT.md) is produced and checked by a test, and so third parties can
// compare their own encoder byte for byte.

// FingerprintInput returns the bytes Fingerprint hashes.
func FingerprintInput(e Entry) []byte {
	var c encoder
	c.fingerprintInput(e)
	return c.b
}

func (c *encoder) fingerprintInput(e Entry) {
	c.str(fingerprintTag)
	c.str(string(e.Kind))
	c.str(e.Merchant)
	c.str(e.OrderID)
	c.str(e.Payer)
	c.str(e.Currency)
	c.i64(e.Amount)
	c.i64(e.Fee)
	c.str(e.Description)
	c.postings(e.Postings)
	if e.Kind == KindRefund {
		c.str(e.RefundID)
	}
}

// EvidenceInput returns the bytes EvidenceDigest hashes.
func EvidenceInput(ev Evidence) []byte {
	var c encoder
	c.evidenceInput(ev)
	return c.b
}

func (c *encoder) evidenceInput(ev Evidence) {
	c.str(evidenceTag)
	c.str(ev.Scheme)
	c.str(ev.KeyID)
	c.str(ev.Authorization)
	c.str(ev.Method)
	c.str(ev.Target)
	c.bytes(ev.Body)
}

// ChainInput returns the bytes ChainHash hashes: prev (32 raw bytes) followed
// by the canonical entry.
func ChainInput(prev [32]byte, r Recorded, postings []Posting, evidenceDigest [32]byte) []byte {
	c := encoder{b: make([]byte, 0, 512)}
	c.chainInput(prev, r, postings, evidenceDigest)
	return c.b
}

func (c *encoder) chainInput(prev [32]byte, r Recorded, postings []Posting, evidenceDigest [32]byte) {
	c.b = append(c.b, prev[:]...)
	c.str(entryTag)
	c.i64(r.ID)
	c.str(string(r.Kind))
	c.str(r.Merchant)
	c.str(r.OrderID)
	c.str(r.Payer)
	c.str(r.Currency)
	c.i64(r.Amount)
	c.i64(r.Fee)
	c.str(r.Description)
	c.bytes(r.Fingerprint[:])
	c.i64(r.CreatedAt.UnixMicro())
	c.postings(postings)
	c.bytes(evidenceDigest[:])
	if r.Kind == KindRefund {
		c.str(r.RefundID)
	}
}
