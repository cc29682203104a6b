// Package console is the auditor console: a few static pages (HTML, plain ES
// modules, CSS, embedded with go:embed; no build step, no external request)
// that sign in with an auditor token and draw the auditor API's answers —
// trial balance, statements with a balance chart, entries with their signed
// evidence and its re-verification, the chain and its checkpoints, exports.
//
// It is served by the auditor listener under /console/. Everything the pages
// show comes from the auditor API, called with the token in the Authorization
// header, so the API's scope rules are the console's. The token lives in the
// tab's sessionStorage and nowhere else: no cookie carries authority, so there
// is nothing to forge across sites. Every response carries a strict
// Content-Security-Policy (scripts and styles from the console only, no
// inline script, no eval, no framing), nosniff, no-referrer and frame denial.
//
// In dev mode only (Options.DevToken set), POST /console/dev-token mints a
// short-lived, unscoped dev auditor token for one-click sign-in; otherwise
// that route does not exist.
package console
