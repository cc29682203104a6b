package api

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/policy"
)

// refundResponse is the body of a refund. Amounts are decimal strings in
// major units; fee is the part of the payment's fee the platform returned.
type refundResponse struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"`
	RefundID   string `json:"refund_id"`
	OrderID    string `json:"order_id"`
	MerchantID string `json:"merchant_id"`
	Status     string `json:"status"`
	Amount     string `json:"amount"`
	Fee        string `json:"fee"`
	Currency   string `json:"currency"`
	Payer      string `json:"payer"`
	Reason     string `json:"reason,omitempty"`
	EntryID    int64  `json:"entry_id"`
	EntryHash  string `json:"entry_hash"`
	CreatedAt  string `json:"created_at"`
}

func toRefundResponse(rec ledger.Recorded) refundResponse {
	return refundResponse{
		ID:         "ref_" + strconv.FormatInt(rec.ID, 10),
		Kind:       string(rec.Kind),
		RefundID:   rec.RefundID,
		OrderID:    rec.OrderID,
		MerchantID: rec.Merchant,
		Status:     "succeeded",
		Amount:     policy.FormatAmount(rec.Amount, rec.Currency),
		Fee:        policy.FormatAmount(rec.Fee, rec.Currency),
		Currency:   rec.Currency,
		Payer:      rec.Payer,
		Reason:     rec.Description,
		EntryID:    rec.ID,
		EntryHash:  hex.EncodeToString(rec.Hash[:]),
		CreatedAt:  rec.CreatedAt.UTC().Format(time.RFC3339Nano),
	}
}

func respondRefund(w http.ResponseWriter, rec ledger.Recorded) {
	if rec.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusOK, toRefundResponse(rec))
}

// refundKind is a refund: part or all of a payment goes back from the
// merchant to the payer's wallet, with its share of the fee from the
// platform, idempotently on (merchant, refund id).
func refundKind(rules Rules, reader ledger.Reader) createKind[policy.RefundRequest] {
	return createKind[policy.RefundRequest]{
		build: func(ctx context.Context, m policy.Merchant, req policy.RefundRequest) (ledger.Entry, error) {
			r, err := rules.Refund(ctx, m, req)
			if err != nil {
				return ledger.Entry{}, err
			}
			return ledger.Refund(m.ID, r.RefundID, r.OrderID, r.Currency, r.Amount, r.Reason, ledger.Evidence{}), nil
		},
		claim: func(_ context.Context, m policy.Merchant, req policy.RefundRequest) ledger.Entry {
			return ledger.Refund(m.ID, req.RefundID, req.OrderID, req.Currency, claimedAmount(req.Amount, req.Currency), req.Reason, ledger.Evidence{})
		},
		id: func(req policy.RefundRequest) string { return req.RefundID },
		recorded: func(ctx context.Context, merchant, id string) (ledger.Recorded, error) {
			return reader.Refund(ctx, merchant, id)
		},
		respond: respondRefund,
		failed:  refundFailure,
	}
}

// refundFailure names a refund's failures: an order that is not the
// merchant's is answered like an unknown payment (another merchant's
// payments are not even confirmed to exist), a changed retry as a refund
// conflict.
func refundFailure(err error) error {
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return errPaymentNotFound
	case errors.Is(err, ledger.ErrOrderConflict):
		return errRefundConflict
	}
	return err
}

// handleGetRefund returns the merchant's refund by refund id.
func handleGetRefund(reader ledger.Reader) http.Handler {
	return handler(func(w http.ResponseWriter, r *http.Request) error {
		v, _ := verifiedFrom(r.Context())
		id, ok := pathParam(r, "refund_id")
		if !ok {
			return errRefundNotFound
		}
		rec, err := reader.Refund(r.Context(), v.Merchant, id)
		if errors.Is(err, ledger.ErrNotFound) {
			return errRefundNotFound
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, toRefundResponse(rec))
		return nil
	})
}
