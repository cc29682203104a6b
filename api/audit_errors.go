package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/merchant"
)

// Errors raised by the auditor API.
var (
	errNoBearer     = errors.New("api: no bearer token in the Authorization header")
	errTokenInQuery = errors.New("api: token in the query string")
)

// paramError is a query or path parameter that does not parse; its text is
// written for the client.
type paramError struct{ name, msg string }

func (e *paramError) Error() string { return fmt.Sprintf("api: parameter %s: %s", e.name, e.msg) }

var errBadParam = errors.New("api: invalid parameter")

func (e *paramError) Unwrap() error { return errBadParam }

// auditErrorTable maps the auditor API's own errors; everything else falls
// back to the merchant API's table (ruleFor), so not_found, unavailable and
// internal read the same on both listeners. It lives apart from errorTable
// because its codes are not merchant-facing.
var auditErrorTable = []errorRule{
	{audit.ErrUnavailable, nil, http.StatusServiceUnavailable, "unavailable", "auditor_keys_unavailable", unavailableTitle, "The auditor-token keys could not be read"},
	{merchant.ErrUnavailable, nil, http.StatusServiceUnavailable, "unavailable", "audit_log_unavailable", unavailableTitle, "The operator audit log could not be read"},
	{errNoBearer, nil, http.StatusUnauthorized, "token_invalid", "bearer_missing", "A bearer token is required", "Send the token as Authorization: Bearer <token>"},
	{audit.ErrToken, nil, http.StatusUnauthorized, "token_invalid", "token_not_accepted", "Bearer token not accepted", ""},
	{audit.ErrForbidden, nil, http.StatusForbidden, "forbidden", "role_missing", "The token does not carry the auditor role", ""},
	{errTokenInQuery, nil, http.StatusBadRequest, "token_in_query", "token_in_query", "Tokens are accepted only in the Authorization header", ""},
	{errBadParam, nil, http.StatusBadRequest, "invalid_parameter", "invalid_parameter", "A parameter is invalid", ""},
	{errCursorInvalid, nil, http.StatusBadRequest, "cursor_invalid", "cursor_invalid", "The cursor was not issued by this server or was altered", ""},
	{ledger.ErrIntegrity, nil, http.StatusInternalServerError, "integrity_failure", "integrity_failure", "The ledger failed an integrity check", ""},
}

func auditRuleFor(err error) errorRule {
	for _, r := range auditErrorTable {
		if errors.Is(err, r.err) {
			return r
		}
	}
	return ruleFor(err)
}

// auditProblem builds the client-facing problem for err. Only texts written for
// clients are copied: a parameter's complaint and an integrity finding (an
// auditor is owed the entry or account that failed).
func auditProblem(err error, requestID string) Problem {
	rule := auditRuleFor(err)
	p := Problem{
		Type:      "https://quill.dev/problems/" + rule.code,
		Title:     rule.title,
		Status:    rule.status,
		Code:      rule.code,
		Reason:    rule.reason,
		Detail:    rule.detail,
		RequestID: requestID,
	}
	var pe *paramError
	switch {
	case errors.As(err, &pe):
		p.Detail = pe.name + ": " + pe.msg
	case rule.code == "integrity_failure":
		p.Detail = err.Error()
	}
	return p
}

// writeAuditError answers err as problem+json and records it for the access log.
func writeAuditError(w http.ResponseWriter, r *http.Request, err error) {
	st := auditStateFrom(r.Context())
	p := auditProblem(err, st.id)
	st.err, st.code = err, p.Code
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="quill-audit", error="invalid_token"`)
	}
	body, _ := json.Marshal(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	w.Write(body)
}
