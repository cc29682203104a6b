package api

import (
	"crypto/rand"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/quillpay/quill/ledger"
)

// Merchant listing cursor kinds. A listing cursor is sealed (cursorSealer)
// under the kind and the merchant it was issued to, and carries its listing's
// resolved span and filters, so it can neither be altered, nor used by
// another merchant, nor turned into another listing.
const (
	cursorPayments = "merchant.payments"
	cursorRefunds  = "merchant.refunds"
)

const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// listCursor is the sealed position of a merchant listing.
type listCursor struct {
	Merchant string   `json:"m"`
	Span     spanJSON `json:"s"`
	Status   string   `json:"st,omitempty"`
	After    int64    `json:"a"`
}

type spanJSON struct {
	FromEntry int64     `json:"fe"`
	ToEntry   int64     `json:"te"`
	From      time.Time `json:"f"`
	To        time.Time `json:"t"`
}

// merchantCursors seals the merchant API's cursors with key, or with a
// random key of this process when key is empty (cursors then do not survive
// a restart and are not accepted by other nodes).
func merchantCursors(key []byte) cursorSealer {
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			panic(err)
		}
	}
	return cursorSealer{key: key}
}

// listing is one merchant listing route: the entry kind it lists, its cursor
// kind, the statuses its records can have and how a record is shown.
type listing struct {
	kind     ledger.Kind
	cursor   string
	statuses []string
	item     func(ledger.Record) any
}

// listPage is the body of a listing.
type listPage struct {
	Data       []any  `json:"data"`
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// listParams are the only query parameters a listing takes.
var listParams = []string{"limit", "cursor", "from", "to", "status"}

// handleList serves one page of the calling merchant's records of l.kind, in
// entry id order (commit order). The first page resolves from/to to the
// entries recorded by then; the next_cursor of each page carries that span,
// the filters and the position, sealed for this merchant, so following it
// lists each of those records exactly once, however many are recorded
// meanwhile. A listing that should see later records starts again.
func handleList(listings ledger.Listings, cursors cursorSealer, l listing) http.Handler {
	return handler(func(w http.ResponseWriter, r *http.Request) error {
		v, _ := verifiedFrom(r.Context())
		if err := onlyParams(r, listParams); err != nil {
			return err
		}
		limit, err := queryInt(r, "limit", 1, maxListLimit)
		if err != nil {
			return paramMalformed(err)
		}
		if limit == 0 {
			limit = defaultListLimit
		}
		cursor, err := queryOne(r, "cursor")
		if err != nil {
			return paramMalformed(err)
		}
		var c listCursor
		if cursor != "" {
			for _, p := range []string{"from", "to", "status"} {
				if r.URL.Query().Has(p) {
					return malformed(p + ": a cursor carries its listing's filters; send only cursor (and limit)")
				}
			}
			if err := cursors.open(l.cursor+"\x00"+v.Merchant, cursor, &c); err != nil || c.Merchant != v.Merchant {
				return errCursorInvalid
			}
		} else {
			if c, err = firstPage(r, listings, l); err != nil {
				return err
			}
			c.Merchant = v.Merchant
		}
		out := listPage{Data: []any{}}
		if c.Status == "" || slices.Contains(l.statuses, c.Status) {
			page, err := listings.ListRecords(r.Context(), ledger.ListQuery{
				Merchant: v.Merchant, Kind: l.kind, After: c.After, Limit: int(limit),
				Span: ledger.Span{FromEntry: c.Span.FromEntry, ToEntry: c.Span.ToEntry, From: c.Span.From, To: c.Span.To},
			})
			if err != nil {
				return err
			}
			for _, rec := range page.Records {
				out.Data = append(out.Data, l.item(rec))
				c.After = rec.ID
			}
			if page.More {
				out.HasMore, out.NextCursor = true, cursors.seal(l.cursor+"\x00"+v.Merchant, c)
			}
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})
}

// firstPage reads a first page's filters and resolves its span.
func firstPage(r *http.Request, listings ledger.Listings, l listing) (listCursor, error) {
	var c listCursor
	from, err := queryTime(r, "from")
	if err != nil {
		return c, paramMalformed(err)
	}
	to, err := queryTime(r, "to")
	if err != nil {
		return c, paramMalformed(err)
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return c, malformed("from: must be before to")
	}
	if c.Status, err = queryOne(r, "status"); err != nil {
		return c, paramMalformed(err)
	}
	if c.Status != "" && !slices.Contains(l.statuses, c.Status) {
		return c, malformed("status: one of " + strings.Join(l.statuses, ", "))
	}
	sp, err := listings.ResolveSpan(r.Context(), from, to)
	if err != nil {
		return c, err
	}
	c.Span = spanJSON{sp.FromEntry, sp.ToEntry, sp.From, sp.To}
	return c, nil
}

// onlyParams refuses a query parameter outside allowed: a misspelt filter
// must not silently list everything.
func onlyParams(r *http.Request, allowed []string) error {
	for name := range r.URL.Query() {
		if !slices.Contains(allowed, name) {
			return malformed("unknown query parameter " + strings.ToValidUTF8(name, "?") + "; this route takes " + strings.Join(allowed, ", "))
		}
	}
	return nil
}

// paramMalformed turns the auditor API's parameter errors into the merchant
// API's 400 malformed_request with the same text.
func paramMalformed(err error) error {
	var pe *paramError
	if errors.As(err, &pe) {
		return malformed(pe.name + ": " + pe.msg)
	}
	return err
}

// paymentItem shows a listed payment as GET /v1/payments/{order_id} does.
func paymentItem(rec ledger.Record) any { return toResponse(rec.Recorded) }

// refundItem shows a listed refund as GET /v1/refunds/{refund_id} does.
func refundItem(rec ledger.Record) any { return toRefundResponse(rec.Recorded) }
