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
	errSignerUnavailable = errors.New("api: response signer unavailable")
	errTargetTooLong     = errors.New("api: request-target too long")
	errMalformedRequest  = errors.New("api: malformed request")
	errBodyTimeout       = errors.New("api: request body not received in time")
	errTooManyFailures   = errors.New("api: too many refused requests from this merchant")
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

// errorRule maps one error to its HTTP answer. Codes are stable: clients branch
// on them.
type errorRule struct {
	err    error
	status int
	code   string
	title  string
}

// errorTable is the one place an error becomes an HTTP status. The first rule
// whose error matches (errors.Is) wins, so more specific rules come first.
var errorTable = []errorRule{
	{ledger.ErrOutcomeUnknown, http.StatusServiceUnavailable, "outcome_unknown", "The write may or may not have happened; retry with the same order id, which is idempotent"},
	{signing.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "A dependency is unavailable; nothing was done, retry later"},
	{policy.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "A dependency is unavailable; nothing was done, retry later"},
	{ledger.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "A dependency is unavailable; nothing was done, retry later"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "unavailable", "A dependency is unavailable; nothing was done, retry later"},
	{errSignerUnavailable, http.StatusServiceUnavailable, "unavailable", "A dependency is unavailable; nothing was done, retry later"},
	{errNoClientIdentity, http.StatusUnauthorized, "client_certificate_invalid", "The client certificate does not name a merchant"},
	{signing.ErrUnauthorized, http.StatusUnauthorized, "signature_invalid", "Request signature not accepted"},
	{policy.ErrUnknownMerchant, http.StatusForbidden, "merchant_unknown", "The merchant is not onboarded"},
	{policy.ErrForbidden, http.StatusForbidden, "forbidden", "The merchant may not perform this operation"},
	{errBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large"},
	{errUnsupportedMedia, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json"},
	{errMalformedJSON, http.StatusBadRequest, "malformed_json", "The body is not a well-formed JSON object"},
	{policy.ErrValidation, http.StatusUnprocessableEntity, "validation_failed", "One or more fields are invalid"},
	{ledger.ErrInsufficientFunds, http.StatusUnprocessableEntity, "insufficient_funds", "The payer's balance does not cover the amount"},
	{ledger.ErrOrderConflict, http.StatusConflict, "order_conflict", "The order id was already used with different content"},
	{errPaymentNotFound, http.StatusNotFound, "not_found", "No such payment"},
	{ledger.ErrNotFound, http.StatusNotFound, "not_found", "Not found"},
	{errRouteNotFound, http.StatusNotFound, "not_found", "No such route"},
	{errMethodNotAllowed, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed on this route"},
	{errTargetTooLong, http.StatusRequestURITooLong, "uri_too_long", "The request-target is longer than 4096 bytes"},
	{errMalformedRequest, http.StatusBadRequest, "malformed_request", "The request is malformed; detail says how"},
	{errBodyTimeout, http.StatusRequestTimeout, "request_timeout", "The request body was not received in time"},
	{errTooManyFailures, http.StatusTooManyRequests, "too_many_failures", "Too many refused requests from this merchant; refusals are answered 429 until Retry-After has passed"},
	{ledger.ErrUnbalanced, http.StatusUnprocessableEntity, "invalid_entry", "The request cannot be recorded as a ledger entry"},
	{ledger.ErrInvalidEntry, http.StatusUnprocessableEntity, "invalid_entry", "The request cannot be recorded as a ledger entry"},
	{context.Canceled, statusClientClosed, "client_closed_request", "The client closed the request"},
}

// statusClientClosed is nginx's 499: the client went away before the answer.
// Nobody reads it; it keeps a cancelled request out of the 5xx logs.
const statusClientClosed = 499

var internalRule = errorRule{nil, http.StatusInternalServerError, "internal", "internal error"}

// ruleFor returns the rule for err, or the internal-error rule.
func ruleFor(err error) errorRule {
	for _, r := range errorTable {
		if errors.Is(err, r.err) {
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
	Detail    string              `json:"detail,omitempty"`
	Hint      string              `json:"hint,omitempty"`
	Expected  string              `json:"expected_string_to_sign,omitempty"`
	Errors    []policy.FieldError `json:"errors,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
}

// problemFor builds the client-facing problem for err. Only messages written for
// clients are copied: hints from signing failures, field errors from policy and
// the detail of a detailed error.
func problemFor(err error, requestID string) Problem {
	rule := ruleFor(err)
	p := Problem{
		Type:      "https://quill.dev/problems/" + rule.code,
		Title:     rule.title,
		Status:    rule.status,
		Code:      rule.code,
		RequestID: requestID,
	}
	var f *signing.Failure
	if errors.As(err, &f) && rule.code == "signature_invalid" {
		p.Detail = f.Err.Error()
		p.Hint = f.Hint
		p.Expected = f.Expected
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

// writeError answers err as problem+json and records it for the access log.
// The full error (which may be internal) is logged by the log middleware, never
// sent.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err, requestIDFrom(r.Context()))
	if rec, ok := w.(*recorder); ok {
		rec.err = err
		rec.code = p.Code
	}
	body, _ := json.Marshal(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	w.Write(body)
}
