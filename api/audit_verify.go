package api

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/signing"
)

// MerchantKeyHistory looks up a merchant's signing-key versions, whatever
// their status now, so old evidence stays verifiable.
type MerchantKeyHistory interface {
	// PublicKey returns owner's key version id, or an error wrapping
	// keys.ErrNotFound (or keys.ErrUnavailable).
	PublicKey(ctx context.Context, owner, id string) (keys.PublicKey, error)
}

// EntryVerificationJSON is the answer of GET /v1/audit/entries/{id}/verification,
// and what quillctl audit verify-entry computes offline from an EntryJSON:
// the entry's digests recomputed from its content and evidence, and the
// merchant's signature checked over the exact request received.
type EntryVerificationJSON struct {
	EntryID     int64                 `json:"entry_id"`
	OK          bool                  `json:"ok"`
	Fingerprint DigestCheckJSON       `json:"fingerprint"`
	Hash        DigestCheckJSON       `json:"hash"`
	Signature   SignatureCheckJSON    `json:"signature"`
	Request     VerifiedRequestJSON   `json:"request"`
	Failures    []string              `json:"failures"`
	Entry       EntryVerificationHead `json:"entry"`
}

// EntryVerificationHead names the entry that was verified.
type EntryVerificationHead struct {
	Kind      string `json:"kind"`
	Merchant  string `json:"merchant"`
	OrderID   string `json:"order_id"`
	Amount    string `json:"amount"`
	Currency  string `json:"currency"`
	CreatedAt string `json:"created_at"`
}

// DigestCheckJSON compares a stored digest with the one recomputed (hex).
type DigestCheckJSON struct {
	OK         bool   `json:"ok"`
	Stored     string `json:"stored"`
	Recomputed string `json:"recomputed"`
}

// VerifiedRequestJSON describes the stored request that was checked.
type VerifiedRequestJSON struct {
	Method     string `json:"method"`
	Target     string `json:"target"`
	BodyBytes  int    `json:"body_bytes"`
	BodySHA256 string `json:"body_sha256"`
}

// SignatureCheckJSON is the outcome of re-verifying the merchant's signature.
type SignatureCheckJSON struct {
	OK            bool   `json:"ok"`
	Scheme        string `json:"scheme"`
	KeyID         string `json:"key_id"`
	KeyStatus     string `json:"key_status,omitempty"`
	KeyRegistered string `json:"key_registered_at,omitempty"`
	SignedAt      string `json:"signed_at,omitempty"`
	SignedBefore  string `json:"signed_before_recorded,omitempty"` // duration, e.g. "1s"
	Reason        string `json:"reason,omitempty"`
}

// errBadEvidence marks an EntryJSON that cannot even be decoded.
var errBadEvidence = errors.New("api: malformed entry")

// VerifyEntry re-verifies an entry as GET /v1/audit/entries/{id} returns it:
// it recomputes the fingerprint, evidence digest and chain hash from the
// answer, and checks the scheme A signature with the merchant's key version
// named by the evidence, as it stood when the entry was written. A finding is
// in the result (OK false, Failures); the error is for an answer that does
// not decode or a key store that cannot be read (signing.ErrUnavailable).
func VerifyEntry(ctx context.Context, e EntryJSON, ks MerchantKeyHistory) (EntryVerificationJSON, error) {
	body, err := base64.StdEncoding.DecodeString(e.Evidence.Body)
	if err != nil {
		return EntryVerificationJSON{}, fmt.Errorf("%w: entry %d: evidence body is not base64", errBadEvidence, e.ID)
	}
	ee := ledger.EntryEvidence{
		Recorded: ledger.Recorded{ID: e.ID, Kind: ledger.Kind(e.Kind), Merchant: e.Merchant, OrderID: e.OrderID, RefundID: e.RefundID, Payer: e.Payer,
			Currency: e.Currency, Amount: e.AmountMinor, Fee: e.FeeMinor, Description: e.Description,
			CreatedAt: time.UnixMicro(e.CreatedMicros).UTC()},
		Evidence: ledger.Evidence{Scheme: e.Evidence.Scheme, KeyID: e.Evidence.KeyID, Authorization: e.Evidence.Authorization,
			Method: e.Evidence.Method, Target: e.Evidence.Target, Body: body},
	}
	for _, p := range e.Postings {
		ee.Postings = append(ee.Postings, ledger.Posting{Account: p.Account, Currency: p.Currency, Amount: p.AmountMinor})
	}
	for _, d := range []struct {
		name string
		hex  string
		dst  *[32]byte
	}{{"prev_hash", e.PrevHash, &ee.PrevHash}, {"hash", e.Hash, &ee.Hash}, {"fingerprint", e.Fingerprint, &ee.Fingerprint}} {
		b, err := hex.DecodeString(d.hex)
		if err != nil || len(b) != 32 {
			return EntryVerificationJSON{}, fmt.Errorf("%w: entry %d: malformed %s", errBadEvidence, e.ID, d.name)
		}
		copy(d.dst[:], b)
	}
	return verifyEvidence(ctx, ee, ks)
}

// verifyEvidence checks a stored entry against its own digests and its
// merchant's signature.
func verifyEvidence(ctx context.Context, ee ledger.EntryEvidence, ks MerchantKeyHistory) (EntryVerificationJSON, error) {
	ev := ee.Evidence
	rec := ee.Recorded
	rec.Fingerprint = ledger.Fingerprint(rec.Content(ee.Postings))
	hash := ledger.ChainHash(ee.PrevHash, rec, ee.Postings, ledger.EvidenceDigest(ev))
	bodySum := sha256.Sum256(ev.Body)
	out := EntryVerificationJSON{
		EntryID:     ee.ID,
		Fingerprint: DigestCheckJSON{rec.Fingerprint == ee.Fingerprint, hex.EncodeToString(ee.Fingerprint[:]), hex.EncodeToString(rec.Fingerprint[:])},
		Hash:        DigestCheckJSON{hash == ee.Hash, hex.EncodeToString(ee.Hash[:]), hex.EncodeToString(hash[:])},
		Request:     VerifiedRequestJSON{ev.Method, ev.Target, len(ev.Body), hex.EncodeToString(bodySum[:])},
		Entry: EntryVerificationHead{string(ee.Kind), ee.Merchant, ee.OrderID, money(ee.Amount, ee.Currency), ee.Currency,
			utcTime(ee.CreatedAt)},
		Failures: []string{},
	}
	if !out.Fingerprint.OK {
		out.Failures = append(out.Failures, "the content does not match its fingerprint")
	}
	if !out.Hash.OK {
		out.Failures = append(out.Failures, "the entry and its evidence do not hash to its chain hash")
	}
	sig, err := verifySchemeA(ctx, ev, ee.Merchant, ee.CreatedAt, ks)
	if err != nil {
		return EntryVerificationJSON{}, err
	}
	out.Signature = sig
	if !sig.OK {
		out.Failures = append(out.Failures, sig.Reason)
	}
	out.OK = len(out.Failures) == 0
	return out, nil
}

// verifySchemeA checks a scheme A signature with the merchant's key version
// ev.KeyID as it stood at t. The error is only for a key store that cannot be
// read; every finding is in the result.
func verifySchemeA(ctx context.Context, ev ledger.Evidence, merchant string, at time.Time, ks MerchantKeyHistory) (SignatureCheckJSON, error) {
	out := SignatureCheckJSON{Scheme: ev.Scheme, KeyID: ev.KeyID}
	fail := func(format string, a ...any) (SignatureCheckJSON, error) {
		out.Reason = fmt.Sprintf(format, a...)
		return out, nil
	}
	if ev.Scheme != signing.SchemeWeChatPay {
		return fail("scheme %q is not re-verifiable from the stored evidence", ev.Scheme)
	}
	cr, err := signing.ParseAuthorization(ev.Authorization)
	if err != nil {
		return fail("the stored Authorization header does not parse: %v", err)
	}
	if cr.Merchant != merchant || cr.Serial != ev.KeyID {
		return fail("the header names merchant %s key %s, the entry %s key %s", cr.Merchant, cr.Serial, merchant, ev.KeyID)
	}
	k, err := ks.PublicKey(ctx, merchant, ev.KeyID)
	if errors.Is(err, keys.ErrUnavailable) {
		return out, fmt.Errorf("%w: %w", signing.ErrUnavailable, err)
	}
	if err != nil {
		return fail("key %s of %s: %v", ev.KeyID, merchant, err)
	}
	out.KeyStatus, out.KeyRegistered = string(k.Status), utcTime(k.CreatedAt)
	switch {
	case k.Algorithm != keys.RSAPKCS1SHA256:
		return fail("key %s is registered for %s, not scheme A", k.ID, k.Algorithm)
	case k.CreatedAt.After(at.Add(time.Minute)):
		return fail("key %s was registered after the entry was written", k.ID)
	case k.Status == keys.Retiring && !k.NotAfter.IsZero() && !at.Before(k.NotAfter):
		return fail("key %s had retired (%s) when the entry was written", k.ID, k.NotAfter.UTC().Format(time.RFC3339))
	case k.Status == keys.Revoked:
		return fail("key %s has been revoked: its signatures are no longer trusted", k.ID)
	}
	pub, ok := k.Public.(*rsa.PublicKey)
	if !ok {
		return fail("key %s is not an RSA key", k.ID)
	}
	sig, err := base64.StdEncoding.DecodeString(cr.Signature)
	if err != nil {
		return fail("the signature is not base64")
	}
	if ts, err := strconv.ParseInt(cr.Timestamp, 10, 64); err == nil {
		signed := time.Unix(ts, 0).UTC()
		out.SignedAt, out.SignedBefore = signed.Format(time.RFC3339), at.Sub(signed).Round(time.Second).String()
	}
	d := sha256.Sum256(signing.StringToSign(ev.Method, ev.Target, cr.Timestamp, cr.Nonce, ev.Body))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) != nil {
		return fail("the merchant's signature does not verify over the stored request")
	}
	out.OK = true
	return out, nil
}

// handleEntryVerification re-verifies entry {id} on the server, from the rows
// as stored, with the key store's merchant keys. Scope rules are the entry's:
// an entry outside the auditor's merchants is not found.
func handleEntryVerification(rep ledger.Reports, ks MerchantKeyHistory) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
		if err != nil || id < 1 {
			writeAuditError(w, r, ledger.ErrNotFound)
			return
		}
		ee, err := rep.EntryEvidence(r.Context(), id, scopeOf(r))
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		if ks == nil {
			writeAuditError(w, r, fmt.Errorf("%w: no merchant key store wired for entry verification", signing.ErrUnavailable))
			return
		}
		out, err := verifyEvidence(r.Context(), ee, ks)
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		writeAuditJSON(w, out)
	}
}
