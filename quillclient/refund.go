package quillclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// RefundRequest is the body of POST /v1/refunds: refund Amount (a decimal
// string in major units) in Currency of the payment OrderID, under the
// merchant's own RefundID.
type RefundRequest struct {
	RefundID string `json:"refund_id"`
	OrderID  string `json:"order_id"`
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
	Reason   string `json:"reason,omitempty"`
}

// Refund is a recorded refund as Quill answers it. Fee is the part of the
// payment's fee the platform returned with it.
type Refund struct {
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
	// Replayed is true when Quill answered from an earlier identical
	// request (Idempotent-Replayed: true): no money moved this time.
	Replayed bool `json:"-"`
}

// Refund refunds req. It returns the refund (Replayed when req repeats an
// earlier refund id with the same content), an *APIError for Quill's
// refusals — 404 not_found for an order that is unknown or another
// merchant's, 409 refund_conflict, 422 refund_exceeds_payment,
// refund_currency_mismatch, not_refundable, merchant_balance_insufficient —
// or the transport's error (a *ResponseError when the answer does not
// verify: the outcome is then unknown, and retrying with the same refund id
// settles it).
func (c *Client) Refund(ctx context.Context, req RefundRequest) (Refund, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Refund{}, err
	}
	return c.refund(ctx, http.MethodPost, "/v1/refunds", body)
}

// GetRefund returns the merchant's refund refundID, or an *APIError (404
// not_found for an unknown refund id, or another merchant's).
func (c *Client) GetRefund(ctx context.Context, refundID string) (Refund, error) {
	return c.refund(ctx, http.MethodGet, "/v1/refunds/"+url.PathEscape(refundID), nil)
}

func (c *Client) refund(ctx context.Context, method, target string, body []byte) (Refund, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+target, rd)
	if err != nil {
		return Refund{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return Refund{}, err
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(res.Body) // verified bytes, already in memory
	if err != nil {
		return Refund{}, err
	}
	if res.StatusCode != http.StatusOK {
		return Refund{}, problemOf(res, answer)
	}
	var r Refund
	if err := json.Unmarshal(answer, &r); err != nil {
		return Refund{}, fmt.Errorf("quillclient: %s: %w", target, err)
	}
	r.Replayed = res.Header.Get("Idempotent-Replayed") == "true"
	return r, nil
}
