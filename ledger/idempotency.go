package ledger

// Matches reports whether e asks for what rec recorded: the one idempotency
// rule, applied by the writer when an id is already taken and by the API when
// a retry of a recorded entry fails its field rules (an expired payer token,
// rules changed since). A match is answered with rec (Replayed); anything else
// under the same id is ErrOrderConflict.
//
// It compares what the client's request determines: kind, merchant, order id,
// refund id, payer, currency, amount and description. A refund's payer is not
// compared: it is its payment's, which the order id already names. The fee and the postings are left
// out on purpose: Quill derives them from its own state when the entry is
// first written (the merchant's fee rate), so a retry sent after that state
// changed is still the same request and gets the original answer, fee
// included. The evidence is left out too: a retry is signed anew.
//
// Every field Matches compares is also covered by Fingerprint, so two
// entries with equal fingerprints always match.
func Matches(rec Recorded, e Entry) bool {
	return rec.Kind == e.Kind && rec.Merchant == e.Merchant && rec.OrderID == e.OrderID &&
		rec.RefundID == e.RefundID && (rec.Payer == e.Payer || e.Kind == KindRefund) &&
		rec.Currency == e.Currency && rec.Amount == e.Amount && rec.Description == e.Description
}

// Proposed returns e as it would be recorded, without the fields only the
// store assigns (id, hash, time): what Matches compares two requests for the
// same id within one batch with.
func Proposed(e Entry) Recorded {
	return Recorded{
		Kind: e.Kind, Merchant: e.Merchant, OrderID: e.OrderID, RefundID: e.RefundID, Payer: e.Payer, Currency: e.Currency,
		Amount: e.Amount, Fee: e.Fee, Description: e.Description, Fingerprint: Fingerprint(e),
	}
}

// Content returns the entry r records with postings ps: what r.Fingerprint
// is the digest of, for an auditor recomputing it from stored rows.
func (r Recorded) Content(ps []Posting) Entry {
	return Entry{
		Kind: r.Kind, Merchant: r.Merchant, OrderID: r.OrderID, RefundID: r.RefundID, Payer: r.Payer,
		Currency: r.Currency, Amount: r.Amount, Fee: r.Fee, Description: r.Description, Postings: ps,
	}
}
