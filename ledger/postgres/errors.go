package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/quillpay/quill/ledger"
)

// Constraint names from the migrations that map to domain errors.
var constraintErrors = map[string]error{
	"entries_merchant_order_key": ledger.ErrOrderConflict,
	"balances_non_negative":      ledger.ErrInsufficientFunds,
	"entries_balanced":           ledger.ErrUnbalanced,
	"entries_min_postings":       ledger.ErrInvalidEntry,
	"entries_postings_complete":  ledger.ErrInvalidEntry,
	"postings_seq_range":         ledger.ErrInvalidEntry,
	"entries_amount_positive":    ledger.ErrInvalidEntry,
	"entries_fee_range":          ledger.ErrInvalidEntry,
	"postings_amount_nonzero":    ledger.ErrInvalidEntry,
	// Refunds (0011): a duplicate refund id, a refund that names no payment
	// of its own, or refunds that would total more than the payment.
	"entries_merchant_refund_key": ledger.ErrOrderConflict,
	"entries_refund_columns":      ledger.ErrInvalidEntry,
	"entries_refund_target":       ledger.ErrNotRefundable,
	"entries_refund_total":        ledger.ErrRefundExceedsPayment,
}

// translate turns a driver error into a ledger error: a violated constraint
// into its sentinel, no rows into ErrNotFound, an unreachable or shutting-down
// server into ErrUnavailable. Driver types never leave this package: the
// detail is kept as text only.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ledger.ErrNotFound
	}
	var ie *internalError
	if errors.As(err, &ie) {
		return err
	}
	var ce *pgconn.ConnectError
	var pg *pgconn.PgError
	if errors.As(err, &ce) || !errors.As(err, &pg) {
		// Could not connect (even if the server answered with an error, such
		// as a database not accepting connections), network errors,
		// timeouts, a closed pool: the server was not reached or did not
		// answer. errors, timeouts, a closed pool: the server was not reached
		// or did not answer.
		return fmt.Errorf("%w: %v", ledger.ErrUnavailable, err)
	}
	if s, ok := constraintErrors[pg.ConstraintName]; ok {
		return fmt.Errorf("%w: %s", s, pg.Message)
	}
	switch pg.Code[:2] {
	case "08", "53", "57": // connection exception, insufficient resources, operator intervention
		return fmt.Errorf("%w: %s (%s)", ledger.ErrUnavailable, pg.Message, pg.Code)
	}
	return fmt.Errorf("ledger/postgres: %s (SQLSTATE %s, constraint %q)", pg.Message, pg.Code, pg.ConstraintName)
}

// unreachable reports whether err means the server was never reached or the
// connection broke, as opposed to the server rejecting a statement.
func unreachable(err error) bool {
	var ie *internalError
	if errors.As(err, &ie) {
		return false
	}
	var ce *pgconn.ConnectError
	var pg *pgconn.PgError
	if errors.As(err, &ce) || !errors.As(err, &pg) {
		return true
	}
	switch pg.Code[:2] {
	case "08", "57":
		return true
	}
	return false
}

// internalError is a broken expectation about the stored data found by the
// Go code (not a driver or server error): never "unavailable".
type internalError struct{ msg string }

func (e *internalError) Error() string { return "ledger/postgres: " + e.msg }

func internalf(format string, a ...any) error {
	return &internalError{msg: fmt.Sprintf(format, a...)}
}
