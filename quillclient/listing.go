package quillclient

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quillpay/quill/signing"
)

// Client calls the merchant API routes that return many records: the
// payment and refund listings and the daily statement. Every request goes
// through the Transport, so it is signed and its answer verified; a
// statement is verified as it streams (see Statement). Build it with
// NewClient; it is safe for concurrent use.
type Client struct {
	base string
	tr   *Transport
	http *http.Client
}

// NewClient returns a Client for the Quill at baseURL (https://host:port)
// over t.
func NewClient(baseURL string, t *Transport) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("quillclient: base URL %q is not scheme://host[:port]", baseURL)
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), tr: t, http: &http.Client{Transport: t}}, nil
}

// Payment is a payment as Quill shows it. Amounts are decimal strings in
// major units, as in requests.
type Payment struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	OrderID     string `json:"order_id"`
	MerchantID  string `json:"merchant_id"`
	Status      string `json:"status"`
	Amount      string `json:"amount"`
	Fee         string `json:"fee"`
	Currency    string `json:"currency"`
	Payer       string `json:"payer"`
	Description string `json:"description,omitempty"`
	EntryID     int64  `json:"entry_id"`
	EntryHash   string `json:"entry_hash"`
	CreatedAt   string `json:"created_at"`
}

// Page is one page of a listing. Pass NextCursor as ListQuery.Cursor for the
// next one while HasMore is true.
type Page[T any] struct {
	Data       []T    `json:"data"`
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// ListQuery selects a listing page. A first page names the filters (all
// optional); a next page names only Cursor (and Limit), which carries them.
type ListQuery struct {
	From, To time.Time // recorded in [From, To); zero: open
	Status   string    // e.g. "succeeded"; empty: any
	Limit    int       // 1..1000; zero: the server's default (100)
	Cursor   string    // the previous page's NextCursor
}

func (q ListQuery) values() url.Values {
	v := url.Values{}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	} else {
		if !q.From.IsZero() {
			v.Set("from", q.From.Format(time.RFC3339Nano))
		}
		if !q.To.IsZero() {
			v.Set("to", q.To.Format(time.RFC3339Nano))
		}
		if q.Status != "" {
			v.Set("status", q.Status)
		}
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// APIError is a verified problem answer of Quill (RFC 9457): the request was
// refused or failed, as Code and Reason say.
type APIError struct {
	StatusCode int
	Code       string `json:"code"`
	Reason     string `json:"reason"`
	Detail     string `json:"detail"`
	Hint       string `json:"hint"`
	RequestID  string `json:"request_id"`
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("quillclient: %d %s", e.StatusCode, e.Code)
	if e.Reason != "" && e.Reason != e.Code {
		s += "/" + e.Reason
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// ListPayments returns one page of the merchant's own payments, oldest first.
// A listing is fixed by its first page: payments recorded later are in the
// next listing, not this one. Errors: an *APIError for a refusal (a bad
// filter, a cursor that is altered or not this merchant's: 400), a
// *ResponseError (ErrUnverified) for an answer that does not verify.
func (c *Client) ListPayments(ctx context.Context, q ListQuery) (Page[Payment], error) {
	var p Page[Payment]
	err := c.getJSON(ctx, "/v1/payments?"+q.values().Encode(), &p)
	return p, err
}

// Payments iterates over every payment of the listing q starts, page by
// page, and stops at the first error (yielded with a zero Payment).
func (c *Client) Payments(ctx context.Context, q ListQuery) iter.Seq2[Payment, error] {
	return all(ctx, q, c.ListPayments)
}

// ListRefunds returns one page of the merchant's own refunds, oldest first,
// as ListPayments does for payments (with the same errors).
func (c *Client) ListRefunds(ctx context.Context, q ListQuery) (Page[Refund], error) {
	var p Page[Refund]
	err := c.getJSON(ctx, "/v1/refunds?"+q.values().Encode(), &p)
	return p, err
}

// Refunds iterates over every refund of the listing q starts, as Payments
// does.
func (c *Client) Refunds(ctx context.Context, q ListQuery) iter.Seq2[Refund, error] {
	return all(ctx, q, c.ListRefunds)
}

func all[T any](ctx context.Context, q ListQuery, list func(context.Context, ListQuery) (Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			p, err := list(ctx, q)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range p.Data {
				if !yield(item, nil) {
					return
				}
			}
			if !p.HasMore {
				return
			}
			q = ListQuery{Cursor: p.NextCursor, Limit: q.Limit}
		}
	}
}

func (c *Client) getJSON(ctx context.Context, target string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+target, nil)
	if err != nil {
		return err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body) // verified bytes, already in memory
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return problemOf(res, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("quillclient: %s: %w", target, err)
	}
	return nil
}

func problemOf(res *http.Response, body []byte) error {
	e := &APIError{StatusCode: res.StatusCode}
	if err := json.Unmarshal(body, e); err != nil || e.Code == "" {
		return fmt.Errorf("quillclient: status %d, not a problem answer: %.200q", res.StatusCode, body)
	}
	e.StatusCode = res.StatusCode
	return e
}

// Statement writes the merchant's statement of date (YYYY-MM-DD) in the
// time zone tz (a UTC offset such as "+08:00", or "Z"; empty: the server's
// default, +08:00) to w as the CSV arrives, in constant memory, and returns
// the bytes written. The signature over the whole body can only be checked
// after its last byte: until Statement returns nil, what it wrote is
// unverified, and on an error wrapping ErrUnverified it must be discarded
// (write to a temporary file and rename it on success, as quillctl
// statement does). A refusal is an *APIError, nothing written.
func (c *Client) Statement(ctx context.Context, date, tz string, w io.Writer) (int64, error) {
	target := "/v1/statements/" + url.PathEscape(date)
	if tz != "" {
		target += "?" + url.Values{"tz": {tz}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+target, nil)
	if err != nil {
		return 0, err
	}
	res, err := c.tr.roundTripStream(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, err := io.ReadAll(res.Body)
		if err != nil {
			return 0, err
		}
		return 0, problemOf(res, body)
	}
	return io.Copy(w, res.Body)
}

// streamVerifier is a ResponseVerifier that can also check a response whose
// body it sees in pieces: start checks what it can before the body (the
// signature headers, the key) and returns where the body goes and the
// final check.
type streamVerifier interface {
	startStream(ctx context.Context, req *http.Request, res *http.Response, keys KeySource) (io.Writer, func() error, error)
}

func (s *SchemeA) startStream(ctx context.Context, _ *http.Request, res *http.Response, keys KeySource) (io.Writer, func() error, error) {
	sig, k, err := s.responseKey(ctx, res, keys)
	if err != nil {
		return nil, nil, err
	}
	check := signing.NewResponseCheck(sig)
	return check, func() error { return check.Verify(k.Public) }, nil
}

func (s *SchemeB) startStream(ctx context.Context, req *http.Request, res *http.Response, keys KeySource) (io.Writer, func() error, error) {
	h := sha256.New()
	return h, func() error { return s.verify(ctx, req, res, nil, h.Sum(nil), keys) }, nil
}

// roundTripStream is RoundTrip for a body-less request whose 200 answer may
// be too large to hold: that answer's Body checks the signature as it is
// read, and its last Read returns a *ResponseError (ErrUnverified) instead of
// io.EOF if it does not verify. Any other status is read and verified whole,
// as RoundTrip does.
func (t *Transport) roundTripStream(req *http.Request) (*http.Response, error) {
	sv, ok := t.verifier.(streamVerifier)
	if !ok {
		return nil, errors.New("quillclient: the response verifier cannot check a streamed response")
	}
	if req.Body != nil && req.Body != http.NoBody {
		return nil, errors.New("quillclient: a streamed request has no body")
	}
	out := req.Clone(req.Context())
	out.Body, out.GetBody, out.ContentLength = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }, 0
	if err := t.signer.SignRequest(out, nil); err != nil {
		return nil, err
	}
	res, err := t.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*http.Response, error) {
		res.Body.Close()
		return nil, &ResponseError{StatusCode: res.StatusCode, RequestID: res.Header.Get("Request-ID"), Err: err}
	}
	if res.StatusCode != http.StatusOK {
		rb, err := readAll(res.Body, t.maxBody)
		res.Body.Close()
		if err != nil {
			return fail(err)
		}
		if err := t.verifier.VerifyResponse(req.Context(), out, res, rb, t.keys.source(t.listingURL(out.URL))); err != nil {
			return fail(err)
		}
		res.Body = io.NopCloser(strings.NewReader(string(rb)))
		return res, nil
	}
	w, finish, err := sv.startStream(req.Context(), out, res, t.keys.source(t.listingURL(out.URL)))
	if err != nil {
		return fail(err)
	}
	res.Body = &verifyingBody{body: res.Body, sum: w, finish: finish, status: res.StatusCode, requestID: res.Header.Get("Request-ID")}
	return res, nil
}

// verifyingBody passes a response body through while its signature check
// sees every byte; at the end it answers the check's verdict instead of
// io.EOF when the signature fails.
type verifyingBody struct {
	body      io.ReadCloser
	sum       io.Writer
	finish    func() error
	status    int
	requestID string
	done      error
}

func (b *verifyingBody) Read(p []byte) (int, error) {
	if b.done != nil {
		return 0, b.done
	}
	n, err := b.body.Read(p)
	b.sum.Write(p[:n])
	if errors.Is(err, io.EOF) {
		b.done = io.EOF
		if verr := b.finish(); verr != nil {
			b.done = &ResponseError{StatusCode: b.status, RequestID: b.requestID, Err: verr}
		}
		return n, b.done
	}
	return n, err
}

func (b *verifyingBody) Close() error { return b.body.Close() }
