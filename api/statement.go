package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/signing"
)

// StatementColumns is the header of a merchant daily statement's rows.
var StatementColumns = []string{"order_id", "refund_id", "entry_id", "kind", "amount", "fee", "net", "currency", "time"}

// StatementSummaryColumns is the header of its summary, after a blank line.
var StatementSummaryColumns = []string{"date", "time_zone", "currency", "kind", "count", "amount", "fee", "net"}

// DefaultStatementZone is the time zone of a statement day when the request
// names none: China Standard Time, the zone of WeChat Pay's trade bills.
const DefaultStatementZone = "+08:00"

// handleMerchantStatement answers GET /v1/statements/{date}: the calling
// merchant's entries recorded on that calendar day in the time zone tz (a
// UTC offset, default DefaultStatementZone), one CSV row each, in entry id
// order, then a summary. The day resolves, when asked, to the entries
// recorded by then; the CSV is streamed (constant memory) and signed over its
// exact bytes like every response: see streamBody.
func handleMerchantStatement(listings ledger.Listings) http.Handler {
	return handler(func(w http.ResponseWriter, r *http.Request) error {
		v, _ := verifiedFrom(r.Context())
		if err := onlyParams(r, []string{"tz"}); err != nil {
			return err
		}
		tz, err := queryOne(r, "tz")
		if err != nil {
			return paramMalformed(err)
		}
		if tz == "" {
			tz = DefaultStatementZone
		}
		loc, ok := parseOffset(tz)
		if !ok {
			return malformed("tz: a UTC offset ±HH:MM (e.g. +08:00) or Z")
		}
		date, _ := pathParam(r, "date")
		day, err := time.ParseInLocation(time.DateOnly, date, loc)
		if err != nil || day.Format(time.DateOnly) != date {
			return malformed("date: a calendar date YYYY-MM-DD")
		}
		sp, err := listings.ResolveSpan(r.Context(), day, day.AddDate(0, 0, 1))
		if err != nil {
			return err
		}
		w.Header().Set("Content-Disposition", `attachment; filename="statement-`+v.Merchant+"-"+date+`.csv"`)
		w.Header().Set("Cache-Control", "no-store")
		st := statement{listings: listings, merchant: v.Merchant, span: sp, date: date, zone: tz, loc: loc}
		return streamResponse(r, "text/csv; charset=utf-8", st.write)
	})
}

// parseOffset reads a UTC offset: Z, or ±HH:MM within ±14:00.
func parseOffset(s string) (*time.Location, bool) {
	if s == "Z" {
		return time.UTC, true
	}
	if len(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' {
		return nil, false
	}
	for _, i := range []int{1, 2, 4, 5} {
		if s[i] < '0' || s[i] > '9' {
			return nil, false
		}
	}
	h, m := int(s[1]-'0')*10+int(s[2]-'0'), int(s[4]-'0')*10+int(s[5]-'0')
	if h > 14 || m > 59 || (h == 14 && m > 0) {
		return nil, false
	}
	off := h*3600 + m*60
	if s[0] == '-' {
		off = -off
	}
	return time.FixedZone("UTC"+s, off), true
}

// statement writes one merchant's day.
type statement struct {
	listings   ledger.Listings
	merchant   string
	span       ledger.Span
	date, zone string
	loc        *time.Location
}

// dayTotal sums one kind (or all, kind "total") of one currency.
type dayTotal struct {
	count            int64
	amount, fee, net int64
}

func (t *dayTotal) add(r ledger.Record) error {
	var ok1, ok2, ok3 bool
	t.amount, ok1 = ledger.AddBalance(t.amount, r.Amount)
	t.fee, ok2 = ledger.AddBalance(t.fee, r.Fee)
	t.net, ok3 = ledger.AddBalance(t.net, r.Net)
	if !ok1 || !ok2 || !ok3 {
		return fmt.Errorf("api: statement totals overflow at entry %d", r.ID)
	}
	t.count++
	return nil
}

// write produces the statement: the same bytes for the same span, whenever
// it is called (entries are append-only and the span is resolved).
func (s statement) write(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	cw := csv.NewWriter(bw)
	cw.Write(StatementColumns)
	totals := map[string]map[ledger.Kind]*dayTotal{} // currency → kind ("total" too)
	row := make([]string, len(StatementColumns))
	err := s.listings.EachRecord(ctx, s.merchant, ledger.MerchantKinds, s.span, func(rec ledger.Record) error {
		row[0], row[1] = rec.OrderID, rec.RefundID // a refund's order id is its payment's
		row[2], row[3] = strconv.FormatInt(rec.ID, 10), string(rec.Kind)
		row[4], row[5], row[6] = money(rec.Amount, rec.Currency), money(rec.Fee, rec.Currency), money(rec.Net, rec.Currency)
		row[7], row[8] = rec.Currency, rec.CreatedAt.In(s.loc).Format(time.RFC3339Nano)
		if err := cw.Write(row); err != nil {
			return err
		}
		byKind := totals[rec.Currency]
		if byKind == nil {
			byKind = map[ledger.Kind]*dayTotal{"total": {}}
			totals[rec.Currency] = byKind
		}
		if byKind[rec.Kind] == nil {
			byKind[rec.Kind] = &dayTotal{}
		}
		if err := byKind[rec.Kind].add(rec); err != nil {
			return err
		}
		return byKind["total"].add(rec)
	})
	if err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	bw.WriteString("\n")
	cw.Write(StatementSummaryColumns)
	currencies := make([]string, 0, len(totals))
	for c := range totals {
		currencies = append(currencies, c)
	}
	slices.Sort(currencies)
	for _, cur := range currencies {
		for _, k := range append(slices.Clone(ledger.MerchantKinds), "total") {
			if t := totals[cur][k]; t != nil {
				cw.Write([]string{s.date, s.zone, cur, string(k), strconv.FormatInt(t.count, 10),
					money(t.amount, cur), money(t.fee, cur), money(t.net, cur)})
			}
		}
	}
	if len(currencies) == 0 {
		cw.Write([]string{s.date, s.zone, "", "total", "0", "", "", ""})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// streamBody is a response body too large to hold, which the envelope writes
// itself (serveStream): write produces it, the same bytes each time it is
// called, and stops with the first error.
type streamBody struct {
	contentType string
	write       func(ctx context.Context, w io.Writer) error
}

// streamResponse answers r with a streamed body instead of writing one. The
// handler must write nothing else; the envelope signs and sends it.
func streamResponse(r *http.Request, contentType string, write func(ctx context.Context, w io.Writer) error) error {
	a := accessFrom(r.Context())
	if a == nil {
		return errors.New("api: a streamed response outside the envelope")
	}
	a.stream = &streamBody{contentType: contentType, write: write}
	return nil
}

// streamSigner is a scheme A signer that can sign a body it never holds
// (signing.ResponseSigner).
type streamSigner interface {
	PrepareStream(ctx context.Context) (func() (*signing.ResponseStream, error), error)
}

// streamWriteTimeout is how long one write of a streamed body may wait for
// the client: the server's WriteTimeout bounds a whole response, which a
// large statement may outlast, so the deadline moves forward as bytes go out.
const streamWriteTimeout = 30 * time.Second

// serveStream signs and sends a streamed body in two passes over it, so that
// the signature covers the exact bytes, as the protocol requires, without
// holding them: the first pass only digests the body (scheme A's
// SHA-256 over TIMESTAMP\nNONCE\nBODY\n, RSA-signed; scheme B's
// Content-Digest) and counts it; the headers — signatures and Content-Length
// — go out; the second pass writes the body, digested again. A failure in
// the first pass is answered like any refusal (rec holds it and sent is
// false; nothing was sent). A failure in the second, or a body that came out
// different, can only cut the response short (sent is true and err says
// why): the client sees fewer bytes than Content-Length, or a signature that
// does not verify, never a complete-looking wrong answer.
func serveStream(w http.ResponseWriter, r *http.Request, a *access, rec *recorder, signers Signers, needA bool,
	signB func(signing.MessageResponse, signing.Verified) (signing.MessageHeaders, error)) (sent bool, err error) {
	s := a.stream
	a.stream = nil
	h := rec.header
	fail := func(err error) (bool, error) {
		for _, k := range []string{"Content-Type", "Content-Disposition", "Wechatpay-Timestamp", "Wechatpay-Nonce",
			"Wechatpay-Serial", "Wechatpay-Signature", "Signature-Input", "Signature", "Content-Digest"} {
			h.Del(k)
		}
		rec.reset()
		writeError(rec, r, err)
		return false, nil
	}
	if rec.body.Len() > 0 || rec.status != http.StatusOK {
		return fail(errors.New("api: a handler both wrote and streamed a response"))
	}
	h.Set("Content-Type", s.contentType)
	var stA *signing.ResponseStream
	if needA {
		ss, ok := signers.A.(streamSigner)
		if !ok {
			return fail(fmt.Errorf("%w: the scheme A signer cannot sign a streamed body", errSignerUnavailable))
		}
		start, err := ss.PrepareStream(r.Context())
		if err == nil {
			stA, err = start()
		}
		if err != nil {
			return fail(fmt.Errorf("%w: %w", errSignerUnavailable, err))
		}
	}
	sum, n := sha256.New(), &countingWriter{}
	dst := []io.Writer{sum, n}
	if stA != nil {
		dst = append(dst, stA)
	}
	if err := s.write(r.Context(), io.MultiWriter(dst...)); err != nil {
		return fail(err)
	}
	digest := sum.Sum(nil)
	if stA != nil {
		sig, err := stA.Sign()
		if err != nil {
			return fail(fmt.Errorf("api: sign response: %w", err))
		}
		h.Set("Wechatpay-Timestamp", sig.Timestamp)
		h.Set("Wechatpay-Nonce", sig.Nonce)
		h.Set("Wechatpay-Serial", sig.Serial)
		h.Set("Wechatpay-Signature", sig.Signature)
	}
	if signB != nil {
		bind := a.verified
		if bind.Scheme != signing.SchemeHTTPSig {
			bind = signing.BindingOf(r.Header)
		}
		mh, err := signB(signing.MessageResponse{Status: http.StatusOK, Header: h, BodySHA256: digest}, bind)
		if err != nil {
			return fail(fmt.Errorf("api: sign response: %w", err))
		}
		h.Set("Content-Digest", mh.ContentDigest)
		h.Set("Signature-Input", mh.SignatureInput)
		h.Set("Signature", mh.Signature)
	}
	h.Set("Content-Length", strconv.FormatInt(n.n, 10))
	w.WriteHeader(http.StatusOK)
	again := sha256.New()
	out := &deadlineWriter{w: w, rc: http.NewResponseController(w)}
	err = s.write(r.Context(), io.MultiWriter(out, again))
	if err == nil && !bytes.Equal(again.Sum(nil), digest) {
		err = errors.New("the body written differs from the body signed")
	}
	if err != nil {
		err = fmt.Errorf("api: streamed response cut short: %w", err)
		a.err, a.code = err, "stream_cut"
	}
	return true, err
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// deadlineWriter moves the connection's write deadline forward as it writes.
type deadlineWriter struct {
	w    io.Writer
	rc   *http.ResponseController
	last time.Time
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if now := time.Now(); now.Sub(d.last) > time.Second {
		d.rc.SetWriteDeadline(now.Add(streamWriteTimeout)) //nolint:errcheck // not every ResponseWriter has deadlines
		d.last = now
	}
	return d.w.Write(p)
}
