package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/signing"
)

// Errors raised by the API layer itself.
var (
	errBodyTooLarge      = errors.New("api: request body too large")
	errMalformedJSON     = errors.New("api: body is not a JSON object")
	errUnsupportedMedia  = errors.New("api: content type must be application/json")
	errRouteNotFound     = errors.New("api: no such route")
	errMethodNotAllowed  = errors.New("api: method not allowed")
	errNoClientIdentity  = errors.New("api: client certificate names no merchant")
	errPaymentNotFound   = errors.New("api: payment not found")
	errRefundNotFound    = errors.New("api: refund not found")
	errRefundConflict    = errors.New("api: refund id already used with different content")
	errSignerUnavailable = errors.New("api: response signer unavailable")
	errTargetTooLong     = errors.New("api: request-target too long")
	errMalformedRequest  = errors.New("api: malformed request")
	errBodyTimeout       = errors.New("api: request body not received in time")
	errTooManyFailures   = errors.New("api: too many refused requests from this merchant")
	errNoSignature       = errors.New("api: the request carries no signature")
	errAmbiguousScheme   = errors.New("api: the request is signed with both schemes")
)

// detailed is an error with a detail written for the client, which the
// problem carries; the cause, if any, goes only to the log.
type detailed struct {
	err    error
	detail string
	cause  error
}

func (e *detailed) Error() string {
	if e.cause != nil {
		return e.err.Error() + ": " + e.detail + ": " + e.cause.Error()
	}
	return e.err.Error() + ": " + e.detail
}

// Unwrap returns only the sentinel: the cause must not pick another rule.
func (e *detailed) Unwrap() error { return e.err }

// malformed is a 400 malformed_request saying what is wrong.
func malformed(detail string) error { return &detailed{err: errMalformedRequest, detail: detail} }

// errorRule maps one error to its HTTP answer. Code and reason are stable:
// clients branch on them. Code is the class (one per status: every refused
// signature is signature_invalid, vague to attackers), reason the precise
// failure within it; detail is the fixed text sent for it, never an error's
// own text, so renaming a Go error does not change the wire. A rule with
// within applies only to errors that also match within.
type errorRule struct {
	err    error
	within error
	status int
	code   string
	reason string
	title  string
	detail string
}

const unavailableTitle = "A dependency is unavailable; nothing was done, retry later"

// errorTable is the one place an error becomes an HTTP status. The first rule
// whose error matches (errors.Is) wins, so more specific rules come first.
var errorTable = []errorRule{
	{ledger.ErrOutcomeUnknown, nil, http.StatusServiceUnavailable, "outcome_unknown", "outcome_unknown", "The write may or may not have happened; retry with the same order id, which is idempotent", ""},
	{signing.ErrUnavailable, nil, http.StatusServiceUnavailable, "unavailable", "signature_check_unavailable", unavailableTitle, "The replay guard or the key store could not answer with certainty"},
	{policy.ErrUnavailable, nil, http.StatusServiceUnavailable, "unavailable", "rules_unavailable", unavailableTitle, "The payer-token check or the merchant rules could not be evaluated"},
	{ledger.ErrUnavailable, nil, http.StatusServiceUnavailable, "unavailable", "ledger_unavailable", unavailableTitle, "The ledger could not be reached"},
	{context.DeadlineExceeded, nil, http.StatusServiceUnavailable, "unavailable", "deadline_exceeded", unavailableTitle, "A dependency did not answer in time"},
	{errSignerUnavailable, nil, http.StatusServiceUnavailable, "unavailable", "signer_unavailable", unavailableTitle, "No platform key can sign the answer, so the request was refused before any work"},
	{errNoClientIdentity, nil, http.StatusUnauthorized, "client_certificate_invalid", "client_certificate_invalid", "The client certificate does not name a merchant", ""},
	{errNoSignature, nil, http.StatusUnauthorized, "signature_invalid", "signature_missing", "Request signature not accepted",
		"The request carries no signature: send Authorization: WECHATPAY2-SHA256-RSA2048 … (scheme A) or Signature-Input and Signature (scheme B, RFC 9421)"},
	{signing.ErrMalformed, signing.ErrUnauthorized, http.StatusUnauthorized, "signature_invalid", "signature_malformed", "Request signature not accepted", "The signature fields do not parse or lack a required part; hint says which"},
	{signing.ErrWrongMerchant, signing.ErrUnauthorized, http.StatusUnauthorized, "signature_invalid", "merchant_mismatch", "Request signature not accepted", "The merchant in the signature is not the client certificate's"},
	{signing.ErrUnknownKey, signing.ErrUnauthorized, http.StatusUnauthorized, "signature_invalid", "key_unknown", "Request signature not accepted", "The key id names no active key of the client certificate's merchant"},
	{signing.ErrAlgorithm, signing.ErrUnauthorized, http.StatusUnauthorized, "signature_invalid", "algorithm_mismatch", "Request signature not accepted", "The signature's alg disagrees with the algorithm the key is registered with"},
	{signing.ErrStale, signing.ErrUnauthorized, http.StatusUnauthorized, "signature_invalid", "timestamp_outside_window", "Request signature not accepted", "The signature's timestamp is outside the accepted window, or it expired"},
	{signing.ErrCoverage, signing.ErrUnauthorized, http.StatusUnauthorized, "signature_invalid", "coverage_insufficient", "Request signature not accepted", "The signature does not cover a component Quill requires, or covers one the request lacks"},
	{signing.ErrBadDigest, signing.ErrUnauthorized, http.StatusUnauthorized, "signature_invalid", "content_digest_mismatch", "Request signature not accepted", "Content-Digest is missing or is not the digest of the body received: the body is the likely cause"},
	{signing.ErrBadSignature, signing.ErrUnauthorized, http.StatusUnauthorized, "signature_invalid", "signature_mismatch", "Request signature not accepted", "The signature does not verify over what Quill expected to be signed (expected_string_to_sign)"},
	{signing.ErrReplay, signing.ErrUnauthorized, http.StatusUnauthorized, "signature_invalid", "nonce_replayed", "Request signature not accepted", "The nonce was already used within the replay window"},
	{signing.ErrUnauthorized, nil, http.StatusUnauthorized, "signature_invalid", "signature_invalid", "Request signature not accepted", ""},
	{errAmbiguousScheme, nil, http.StatusBadRequest, "signature_scheme_ambiguous", "signature_scheme_ambiguous", "The request carries both an Authorization (scheme A) and Signature-Input/Signature (scheme B) signature",
		"Sign each request with exactly one scheme: remove Authorization, or Signature-Input and Signature"},
	{policy.ErrUnknownMerchant, nil, http.StatusForbidden, "merchant_unknown", "merchant_unknown", "The merchant is not onboarded", ""},
	{policy.ErrForbidden, nil, http.StatusForbidden, "forbidden", "forbidden", "The merchant may not perform this operation", ""},
	{errBodyTooLarge, nil, http.StatusRequestEntityTooLarge, "body_too_large", "body_too_large", "Request body too large", ""},
	{errUnsupportedMedia, nil, http.StatusUnsupportedMediaType, "unsupported_media_type", "unsupported_media_type", "Content-Type must be application/json", ""},
	{errMalformedJSON, nil, http.StatusBadRequest, "malformed_json", "malformed_json", "The body is not a well-formed JSON object", ""},
	{policy.ErrValidation, nil, http.StatusUnprocessableEntity, "validation_failed", "validation_failed", "One or more fields are invalid", ""},
	{ledger.ErrInsufficientFunds, nil, http.StatusUnprocessableEntity, "insufficient_funds", "insufficient_funds", "The payer's balance does not cover the amount", ""},
	{ledger.ErrOrderConflict, nil, http.StatusConflict, "order_conflict", "order_conflict", "The order id was already used with different content", ""},
	{errRefundConflict, nil, http.StatusConflict, "refund_conflict", "refund_conflict", "The refund id was already used with different content", ""},
	{ledger.ErrRefundExceedsPayment, nil, http.StatusUnprocessableEntity, "refund_exceeds_payment", "refund_exceeds_payment", "The payment's refunds would total more than the payment", ""},
	{ledger.ErrRefundCurrency, nil, http.StatusUnprocessableEntity, "refund_currency_mismatch", "refund_currency_mismatch", "The refund's currency is not the payment's", ""},
	{ledger.ErrNotRefundable, nil, http.StatusUnprocessableEntity, "not_refundable", "not_refundable", "The order id names no refundable payment (a deposit)", ""},
	{ledger.ErrMerchantFunds, nil, http.StatusUnprocessableEntity, "merchant_balance_insufficient", "merchant_balance_insufficient", "The merchant's balance does not cover the refund", ""},
	{errPaymentNotFound, nil, http.StatusNotFound, "not_found", "payment_not_found", "No such payment", ""},
	{errRefundNotFound, nil, http.StatusNotFound, "not_found", "refund_not_found", "No such refund", ""},
	{ledger.ErrNotFound, nil, http.StatusNotFound, "not_found", "not_found", "Not found", ""},
	{errRouteNotFound, nil, http.StatusNotFound, "not_found", "route_not_found", "No such route", ""},
	{errMethodNotAllowed, nil, http.StatusMethodNotAllowed, "method_not_allowed", "method_not_allowed", "Method not allowed on this route", ""},
	{errHeadersTooLarge, nil, http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "headers_too_large", "The request line and headers are larger than 16 KiB", ""},
	{errTargetTooLong, nil, http.StatusRequestURITooLong, "uri_too_long", "uri_too_long", "The request-target is longer than 4096 bytes", ""},
	{errCursorInvalid, nil, http.StatusBadRequest, "malformed_request", "cursor_invalid", "The request is malformed; detail says how",
		"The cursor was not issued for this listing to this merchant, or was altered: send a next_cursor exactly as received"},
	{errMalformedRequest, nil, http.StatusBadRequest, "malformed_request", "malformed_request", "The request is malformed; detail says how", ""},
	{errBodyTimeout, nil, http.StatusRequestTimeout, "request_timeout", "request_timeout", "The request body was not received in time", ""},
	{errTooManyFailures, nil, http.StatusTooManyRequests, "too_many_failures", "too_many_failures", "Too many refused requests from this merchant; refusals are answered 429 until Retry-After has passed", ""},
	{ledger.ErrUnbalanced, nil, http.StatusUnprocessableEntity, "invalid_entry", "entry_unbalanced", "The request cannot be recorded as a ledger entry", ""},
	{ledger.ErrInvalidEntry, nil, http.StatusUnprocessableEntity, "invalid_entry", "invalid_entry", "The request cannot be recorded as a ledger entry", ""},
	{context.Canceled, nil, statusClientClosed, "client_closed_request", "client_closed_request", "The client closed the request", ""},
}

// statusClientClosed is nginx's 499: the client went away before the answer.
// Nobody reads it; it keeps a cancelled request out of the 5xx logs.
const statusClientClosed = 499

var internalRule = errorRule{nil, nil, http.StatusInternalServerError, "internal", "internal", "internal error", ""}

// ruleFor returns the rule for err, or the internal-error rule.
func ruleFor(err error) errorRule {
	for _, r := range errorTable {
		if errors.Is(err, r.err) && (r.within == nil || errors.Is(err, r.within)) {
			return r
		}
	}
	return internalRule
}

// Problem is an RFC 9457 problem details body with Quill's extensions.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Code      string              `json:"code"`
	Reason    string              `json:"reason,omitempty"`
	Detail    string              `json:"detail,omitempty"`
	Hint      string              `json:"hint,omitempty"`
	Expected  string              `json:"expected_string_to_sign,omitempty"`
	Errors    []policy.FieldError `json:"errors,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
}

// problemFor builds the client-facing problem for err. Only messages written for
// clients are copied: the rule's fixed detail, hints from signing failures
// (with any secret redacted), field errors from policy and the detail of a
// detailed error.
func problemFor(err error, requestID string) Problem {
	rule := ruleFor(err)
	p := Problem{
		Type:      "https://quill.dev/problems/" + rule.code,
		Title:     rule.title,
		Status:    rule.status,
		Code:      rule.code,
		Reason:    rule.reason,
		Detail:    rule.detail,
		RequestID: requestID,
	}
	var f *signing.Failure
	if errors.As(err, &f) && rule.code == "signature_invalid" {
		p.Hint = signing.Redact(f.Hint)
		p.Expected = signing.Redact(f.Expected)
	}
	var d *detailed
	if errors.As(err, &d) && d.err == rule.err {
		p.Detail = d.detail
	}
	var v *policy.ValidationError
	if errors.As(err, &v) {
		p.Errors = v.Fields
	}
	return p
}

// writeError answers err as problem+json and records it, through the
// request's context, for the access log: whatever wraps w, the log line says
// why. The full error (which may be internal) is logged by the envelope,
// never sent.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err, requestIDFrom(r.Context()))
	if a := accessFrom(r.Context()); a != nil {
		a.err, a.code, a.reason = err, p.Code, p.Reason
	}
	body, _ := json.Marshal(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	w.Write(body)
}
