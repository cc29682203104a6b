package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/signing"
)

// paymentResponse is the body of a payment or deposit. Amounts are decimal
// strings in major units, like the request.
type paymentResponse struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	OrderID     string `json:"order_id"`
	MerchantID  string `json:"merchant_id"`
	Status      string `json:"status"`
	Amount      string `json:"amount"`
	Fee         string `json:"fee"`
	Currency    string `json:"currency"`
	Payer       string `json:"payer"`
	Description string `json:"description,omitempty"`
	EntryID     int64  `json:"entry_id"`
	EntryHash   string `json:"entry_hash"`
	CreatedAt   string `json:"created_at"`
}

func toResponse(rec ledger.Recorded) paymentResponse {
	return paymentResponse{
		ID:          string(rec.Kind)[:3] + "_" + strconv.FormatInt(rec.ID, 10),
		Kind:        string(rec.Kind),
		OrderID:     rec.OrderID,
		MerchantID:  rec.Merchant,
		Status:      "succeeded",
		Amount:      policy.FormatAmount(rec.Amount, rec.Currency),
		Fee:         policy.FormatAmount(rec.Fee, rec.Currency),
		Currency:    rec.Currency,
		Payer:       rec.Payer,
		Description: rec.Description,
		EntryID:     rec.ID,
		EntryHash:   hex.EncodeToString(rec.Hash[:]),
		CreatedAt:   rec.CreatedAt.UTC().Format(time.RFC3339Nano),
	}
}

// evidenceOf is what authorized the request, stored with its entry so an
// auditor can re-verify it offline. Scheme A stores the Authorization header.
// Scheme B (rfc9421) has no Authorization header; the same field holds the
// two field lines the signature was verified from, one per line:
//
//	Signature-Input: sig1=("@method" "@target-uri" "content-type" "content-digest");created=…;keyid="…";nonce="…";alg="…"
//	Signature: sig1=:…:
//
// (the verified label's members only, as Quill serialized them). With the
// method, target and body also stored, and the merchant's key by KeyID, that
// is enough to rebuild the signature base (the Host is Quill's own, and
// Content-Digest is recomputed from the body); Content-Type, if covered, is
// always application/json here.
func evidenceOf(r *http.Request, v verifiedRequest) ledger.Evidence {
	auth := v.Authorization
	if v.Scheme == signing.SchemeHTTPSig {
		auth = schemeBEvidence(v.Verified)
	}
	return ledger.Evidence{
		Scheme:        v.Scheme,
		KeyID:         v.KeyID,
		Authorization: auth,
		Method:        r.Method,
		Target:        r.RequestURI,
		Body:          v.body,
	}
}

// schemeBEvidence is the Evidence.Authorization of a scheme B request.
func schemeBEvidence(v signing.Verified) string {
	return "Signature-Input: " + v.SignatureInput + "\nSignature: " + v.Signature
}

// paymentKind is a payment: the payer's wallet is debited, the merchant
// credited and the platform fee split off, idempotently on (merchant, order id).
func paymentKind(rules Rules, reader ledger.Reader) createKind[policy.PaymentRequest] {
	return createKind[policy.PaymentRequest]{
		build: func(ctx context.Context, m policy.Merchant, req policy.PaymentRequest) (ledger.Entry, error) {
			p, err := rules.Payment(ctx, m, req)
			if err != nil {
				return ledger.Entry{}, err
			}
			return ledger.Payment(m.ID, p.OrderID, p.Payer, p.Currency, p.Amount, p.Fee, p.Description, ledger.Evidence{}), nil
		},
		claim: func(ctx context.Context, m policy.Merchant, req policy.PaymentRequest) ledger.Entry {
			amount := claimedAmount(req.Amount, req.Currency)
			fee := policy.ComputeFee(amount, m.FeeBps)
			return ledger.Payment(m.ID, req.OrderID, rules.PayerSubject(ctx, req.PayerToken), req.Currency, amount, fee, req.Description, ledger.Evidence{})
		},
		id:       func(req policy.PaymentRequest) string { return req.OrderID },
		recorded: entryOfKind(reader, ledger.KindPayment),
		respond:  respondRecorded,
	}
}

// depositKind is a deposit: a user's wallet is topped up from the settlement
// account; only merchants allowed to deposit may call it.
func depositKind(rules Rules, reader ledger.Reader) createKind[policy.DepositRequest] {
	return createKind[policy.DepositRequest]{
		build: func(ctx context.Context, m policy.Merchant, req policy.DepositRequest) (ledger.Entry, error) {
			d, err := rules.Deposit(ctx, m, req)
			if err != nil {
				return ledger.Entry{}, err
			}
			return ledger.Deposit(m.ID, d.OrderID, d.User, d.Currency, d.Amount, ledger.Evidence{}), nil
		},
		claim: func(_ context.Context, m policy.Merchant, req policy.DepositRequest) ledger.Entry {
			return ledger.Deposit(m.ID, req.OrderID, req.UserID, req.Currency, claimedAmount(req.Amount, req.Currency), ledger.Evidence{})
		},
		id:       func(req policy.DepositRequest) string { return req.OrderID },
		recorded: entryOfKind(reader, ledger.KindDeposit),
		respond:  respondRecorded,
	}
}

// decodeFor loads the merchant's profile and strictly decodes the body into T.
// A *policy.ValidationError from decoding is returned alongside the partly
// decoded request so the field rules can add their own errors to the list.
func decodeFor[T any](r *http.Request, merchants policy.Directory, v verifiedRequest) (policy.Merchant, T, error) {
	var req T
	m, err := merchants.Merchant(r.Context(), v.Merchant)
	if err != nil {
		return m, req, err
	}
	if err := requireJSON(r); err != nil {
		return m, req, err
	}
	return m, req, decodeStrict(v.body, &req)
}

// mergeFieldErrors folds the decoding field errors (decodeErr) into the field
// rules' error (rulesErr), so one 422 lists every failing field once.
func mergeFieldErrors(decodeErr, rulesErr error) error {
	var dec *policy.ValidationError
	if !errors.As(decodeErr, &dec) {
		return rulesErr
	}
	var rules *policy.ValidationError
	if rulesErr != nil && !errors.As(rulesErr, &rules) {
		return rulesErr // unavailable, forbidden: those win
	}
	merged := &policy.ValidationError{Fields: append([]policy.FieldError(nil), dec.Fields...)}
	if rules != nil {
		named := make(map[string]bool, len(dec.Fields))
		for _, f := range dec.Fields {
			named[f.Field] = true
		}
		for _, f := range rules.Fields {
			if !named[f.Field] {
				merged.Fields = append(merged.Fields, f)
			}
		}
	}
	return merged
}

func respondRecorded(w http.ResponseWriter, rec ledger.Recorded) {
	if rec.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusOK, toResponse(rec))
}

// handleGetPayment returns the merchant's payment by order id.
func handleGetPayment(reader ledger.Reader) http.Handler {
	return handler(func(w http.ResponseWriter, r *http.Request) error {
		v, _ := verifiedFrom(r.Context())
		orderID, ok := pathParam(r, "order_id")
		if !ok {
			return errPaymentNotFound // no order id can hold it
		}
		rec, err := reader.Entry(r.Context(), v.Merchant, orderID)
		if errors.Is(err, ledger.ErrNotFound) || (err == nil && rec.Kind != ledger.KindPayment) {
			err = errPaymentNotFound
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, toResponse(rec))
		return nil
	})
}

// pathParam returns the decoded path parameter name, and false if it cannot be
// an id: empty, over maxTarget bytes, not UTF-8, or holding a control
// character (NUL included). chi matches on the escaped path when the target
// has escapes that decoding would change (r.URL.RawPath set) and on the
// decoded path otherwise, so the parameter is unescaped only in the first case:
// decoding twice would turn %2531 into 1.
func pathParam(r *http.Request, name string) (string, bool) {
	v := chi.URLParam(r, name)
	if r.URL.RawPath != "" {
		var err error
		if v, err = url.PathUnescape(v); err != nil {
			return "", false
		}
	}
	return v, plausibleID(v)
}

// plausibleID reports whether s could be an id stored in the ledger; checked
// before a lookup so client bytes the database refuses are a miss, not a 500.
func plausibleID(s string) bool {
	if s == "" || len(s) > maxTarget || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return false
		}
	}
	return true
}

// certificate describes one platform response-signing key, selected by serial.
type certificate struct {
	SerialNo      string `json:"serial_no"`
	Algorithm     string `json:"algorithm"`
	Status        string `json:"status"`
	EffectiveTime string `json:"effective_time"`
	ExpireTime    string `json:"expire_time,omitempty"`
	PublicKey     string `json:"public_key"`
}

// handleCertificates publishes the platform keys by serial so clients can
// verify responses across a rotation: the RSA keys of scheme A and the
// Ed25519 (or P-256) keys of scheme B side by side, algorithm saying which.
func handleCertificates(p PlatformKeys) http.Handler {
	return handler(func(w http.ResponseWriter, r *http.Request) error {
		ks, err := p.PlatformPublicKeys(r.Context())
		if err != nil {
			return err
		}
		out := struct {
			Data []certificate `json:"data"`
		}{Data: make([]certificate, 0, len(ks))}
		for _, k := range ks {
			pemBytes, err := keys.MarshalPublicKeyPEM(k.Public)
			if err != nil {
				return err
			}
			c := certificate{
				SerialNo:      k.ID,
				Algorithm:     string(k.Algorithm),
				Status:        string(k.Status),
				EffectiveTime: k.CreatedAt.UTC().Format(time.RFC3339),
				PublicKey:     string(pemBytes),
			}
			if !k.NotAfter.IsZero() {
				c.ExpireTime = k.NotAfter.UTC().Format(time.RFC3339)
			}
			out.Data = append(out.Data, c)
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own response types always marshal
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
