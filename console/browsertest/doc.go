// Package browsertest drives the auditor console (package console) in a real
// Chromium, with chromedp, against a real quill server: it is its own Go
// module so the service's go.mod does not carry the browser driver. See
// docs/CONSOLE.md.
package browsertest
