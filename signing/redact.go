package signing

import "regexp"

// Secrets a hint must never echo. A failure's Expected echoes the request as
// Quill received it, and clients log error bodies: a payer token in the echo
// would be a bearer credential in the merchant's logs. So the values of
// members named like secrets are replaced whatever their shape, and so is
// anything shaped like a JWT or JWS (base64url JSON: "eyJ…", with or without
// its other segments) wherever it appears.
var (
	secretMember = regexp.MustCompile(`(?i)("(?:payer_token|token|access_token|refresh_token|id_token|password|passwd|secret|client_secret|api_key|apikey|authorization)"\s*:\s*)"(?:[^"\\]|\\.)*"?`)
	jwtShaped    = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,4}`)
)

// Redacted replaces a secret in a redacted echo.
const Redacted = "[redacted]"

// Redact returns s with the values of secret-named JSON members (payer_token,
// token, access_token, password, secret, …) and every JWT-shaped substring
// replaced by Redacted. Failure.Expected is redacted already; callers that
// show other client-supplied text (a hint, a log line) pass it through Redact
// too. Redact is idempotent.
func Redact(s string) string {
	s = secretMember.ReplaceAllString(s, `$1"`+Redacted+`"`)
	return jwtShaped.ReplaceAllString(s, Redacted)
}
