package api

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/signing"
)

// DefaultMaxBody caps request bodies; payment requests are a few hundred bytes.
const DefaultMaxBody = 64 << 10

// Rules checks decoded requests against a merchant's field rules.
type Rules interface {
	// Payment returns the payment to record or a *policy.ValidationError listing
	// every failing field (policy.ErrUnavailable if a dependency cannot answer).
	Payment(ctx context.Context, m policy.Merchant, req policy.PaymentRequest) (policy.Payment, error)
	// Deposit is Payment's counterpart for deposits; it returns
	// policy.ErrForbidden for a merchant that may not deposit.
	Deposit(ctx context.Context, m policy.Merchant, req policy.DepositRequest) (policy.Deposit, error)
	// PayerSubject returns whom a payer token names if Quill can vouch for
	// its signature, even expired or revoked, and "" otherwise: only to
	// compare a retry with the payment it repeats.
	PayerSubject(ctx context.Context, token string) string
	// Refund checks a refund request: its ids, amount and currency (whether
	// the payment exists and has that much left is the ledger's to say).
	Refund(ctx context.Context, m policy.Merchant, req policy.RefundRequest) (policy.Refund, error)
}

// PlatformKeys lists the platform keys clients may need to verify responses.
type PlatformKeys interface {
	// PlatformPublicKeys returns the active keys and those retiring within
	// their grace period.
	PlatformPublicKeys(ctx context.Context) ([]keys.PublicKey, error)
}

// Deps are the merchant API's dependencies, wired in cmd/quill.
type Deps struct {
	Auth     Authenticator
	Identify Identify       // the merchant named by the client certificate
	Signer   ResponseSigner // scheme A responses (Wechatpay-* headers, RSA)
	// MessageSigner signs responses to scheme B requests (RFC 9421, the
	// Ed25519 platform key); nil refuses scheme B requests 503.
	MessageSigner MessageSigner
	Merchants     policy.Directory
	Rules         Rules
	Ledger        ledger.Writer
	Reader        ledger.Reader
	Platform      PlatformKeys
	Log           zerolog.Logger
	MaxBody       int64           // DefaultMaxBody if zero
	Failures      *FailureLimiter // throttles refused requests per merchant; nil: no limit
	// Observe, if set, is called once per request from the access-log point
	// with what was logged (metrics); it must not block.
	Observe func(RequestRecord)
	// Listings serves a merchant's listings and daily statements.
	Listings ledger.Listings
	// CursorKey seals listing cursors (at least 32 bytes, shared by every
	// node); empty: a random key of this process.
	CursorKey []byte
}

// NewHandler returns the merchant API. All routes are here.
func NewHandler(d Deps) http.Handler {
	if d.MaxBody == 0 {
		d.MaxBody = DefaultMaxBody
	}
	cursors := merchantCursors(d.CursorKey)
	r := chi.NewRouter()
	r.Use(envelope(newRequestIDs(), Signers{A: d.Signer, B: d.MessageSigner}, newThrottle(d.Failures, d.Identify, d.Signer), d.Log,
		accessHooks{identify: d.Identify, observe: d.Observe}), limitHeaders(MaxHeaderBytes, writeError))
	r.NotFound(handler(func(http.ResponseWriter, *http.Request) error { return errRouteNotFound }).ServeHTTP)
	r.MethodNotAllowed(methodNotAllowed(r, writeError))
	r.Group(func(r chi.Router) {
		r.Use(authenticate(d.Auth, d.Identify, d.MaxBody))
		r.Method(http.MethodPost, "/v1/payments", handleCreate(paymentKind(d.Rules, d.Reader), d.Merchants, d.Ledger))
		r.Method(http.MethodGet, "/v1/payments/{order_id}", handleGetPayment(d.Reader))
		r.Method(http.MethodPost, "/v1/deposits", handleCreate(depositKind(d.Rules, d.Reader), d.Merchants, d.Ledger))
		r.Method(http.MethodPost, "/v1/refunds", handleCreate(refundKind(d.Rules, d.Reader), d.Merchants, d.Ledger))
		r.Method(http.MethodGet, "/v1/refunds/{refund_id}", handleGetRefund(d.Reader))
		r.Method(http.MethodGet, "/v1/certificates", handleCertificates(d.Platform))
		r.Method(http.MethodGet, "/v1/payments", handleList(d.Listings, cursors, listing{
			kind: ledger.KindPayment, cursor: cursorPayments, statuses: []string{"succeeded"}, item: paymentItem}))
		r.Method(http.MethodGet, "/v1/refunds", handleList(d.Listings, cursors, listing{
			kind: ledger.KindRefund, cursor: cursorRefunds, statuses: []string{"succeeded"}, item: refundItem}))
		r.Method(http.MethodGet, "/v1/statements/{date}", handleMerchantStatement(d.Listings))
	})
	return r
}

// handler is a handler that returns its failure instead of answering it:
// the one place a handler's error becomes a problem response is ServeHTTP.
// A handler that returns an error must not have written anything.
type handler func(w http.ResponseWriter, r *http.Request) error

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h(w, r); err != nil {
		writeError(w, r, err)
	}
}

// ReadyCheck is one dependency the service needs to answer requests.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// NewOpsHandler serves /healthz (the process is up) and /readyz (every check
// passes within timeout) for the plain-HTTP loopback ops listener. Both name
// the running version. A failing check is reported with its error, so an
// operator can act on it: check errors name the store, since when and the
// error class, never a secret (each ReadyCheck is written that way), and
// are cut to maxReadyReason bytes.
func NewOpsHandler(version string, timeout time.Duration, checks ...ReadyCheck) http.Handler {
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": version})
	})
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		status, result := http.StatusOK, map[string]string{}
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				status, result[c.Name] = http.StatusServiceUnavailable, "failing: "+readyReason(err)
				continue
			}
			result[c.Name] = "ok"
		}
		writeJSON(w, status, map[string]any{"ready": status == http.StatusOK, "version": version, "checks": result})
	})
	return r
}

// maxReadyReason bounds the error text /readyz shows per check.
const maxReadyReason = 300

// readyReason is err's text for /readyz: redacted like every client-facing
// echo (no JWT-shaped or secret-named values) and cut to maxReadyReason.
func readyReason(err error) string {
	s := signing.Redact(err.Error())
	if len(s) > maxReadyReason {
		s = s[:maxReadyReason] + "…"
	}
	return s
}
