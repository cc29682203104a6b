// Package layout holds the tests that keep the project's shape: which package
// may import which (BRIEF.md "Top-level layout"), and that every package and
// exported identifier is documented (STYLE.md 13). It has no code of its own.
package layout
