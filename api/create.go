package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/policy"
)

// createKind is what handleCreate needs to know about one kind of create
// request (payment, deposit, refund) with body Req.
type createKind[Req any] struct {
	// build applies m's field rules to req and returns the entry to record
	// (without evidence), or the rules' error (a *policy.ValidationError,
	// policy.ErrForbidden, policy.ErrUnavailable).
	build func(ctx context.Context, m policy.Merchant, req Req) (ledger.Entry, error)
	// claim returns the entry req asks for as far as it can be read without
	// its rules passing: what a retry is compared with (ledger.Matches) when
	// its rules fail but its id is already recorded. A field that cannot be
	// read (an amount that does not parse, a payer token that names nobody)
	// is left zero, so it does not match.
	claim func(ctx context.Context, m policy.Merchant, req Req) ledger.Entry
	// id is the request's idempotency id (order_id, refund_id).
	id func(Req) string
	// recorded returns the entry stored under merchant's id, or
	// ledger.ErrNotFound (also for an entry of another kind).
	recorded func(ctx context.Context, merchant, id string) (ledger.Recorded, error)
	// respond writes the answer for rec (a new entry or a replay).
	respond func(w http.ResponseWriter, rec ledger.Recorded)
	// failed, if set, names the kind's own errors: it maps every error
	// recording (or the retry comparison) returns.
	failed func(error) error
}

// handleCreate is the one create handler: decode strictly, apply the field
// rules, record the entry idempotently, answer it. Whether a request repeats
// a recorded one is decided by ledger.Matches in both places it can come up:
// by the writer when the rules pass, and here when they fail for a request
// whose id is already recorded — a retry of an entry that succeeded must not
// be reported as failed because, meanwhile, the payer token expired or the
// merchant's rules changed.
func handleCreate[Req any](k createKind[Req], merchants policy.Directory, l ledger.Writer) http.Handler {
	failed := k.failed
	if failed == nil {
		failed = func(err error) error { return err }
	}
	return handler(func(w http.ResponseWriter, r *http.Request) error {
		v, _ := verifiedFrom(r.Context())
		m, req, err := decodeFor[Req](r, merchants, v)
		if err != nil && !errors.Is(err, policy.ErrValidation) {
			return err
		}
		entry, rerr := k.build(r.Context(), m, req)
		if err = mergeFieldErrors(err, rerr); err == nil {
			entry.Evidence = evidenceOf(r, v)
			rec, err := l.Record(r.Context(), entry)
			if err != nil {
				return failed(err)
			}
			k.respond(w, rec)
			return nil
		}
		if !errors.Is(err, policy.ErrValidation) {
			return err
		}
		id := k.id(req)
		if !plausibleID(id) {
			return err
		}
		rec, lerr := k.recorded(r.Context(), m.ID, id)
		if lerr != nil {
			return err // not recorded (or unreadable): the rules' answer stands
		}
		if !ledger.Matches(rec, k.claim(r.Context(), m, req)) {
			return failed(ledger.ErrOrderConflict)
		}
		rec.Replayed = true
		k.respond(w, rec)
		return nil
	})
}

// entryOfKind returns a recorded lookup that finds only entries of kind.
func entryOfKind(reader ledger.Reader, kind ledger.Kind) func(context.Context, string, string) (ledger.Recorded, error) {
	return func(ctx context.Context, merchant, id string) (ledger.Recorded, error) {
		rec, err := reader.Entry(ctx, merchant, id)
		if err == nil && rec.Kind != kind {
			return ledger.Recorded{}, ledger.ErrNotFound
		}
		return rec, err
	}
}

// claimedAmount is amount in currency's minor units, or 0 if it does not
// parse (which matches no recorded entry: they are all positive).
func claimedAmount(amount, currency string) int64 {
	v, err := policy.ParseAmount(amount, currency)
	if err != nil {
		return 0
	}
	return v
}
