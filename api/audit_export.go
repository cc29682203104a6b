package api

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"strconv"

	"github.com/quillpay/quill/ledger"
)

// exportEncoder writes journal rows as CSV or NDJSON — byte for byte what
// encoding/csv (ExportColumns) and encoding/json (JournalRowJSON, HTML
// escaping off) write — at a fraction of their cost: an entry's fields are
// encoded once for all its postings, an account's once for all its rows (up to
// maxEncodedAccounts of them), and the numbers are appended in place.
type exportEncoder struct {
	w    io.Writer
	csv  bool
	line []byte

	entry    int64  // the entry whose fragments are below
	entryMid []byte // created_at … description, encoded
	hash     []byte // entry_hash, hex
	accounts map[[2]string][]byte

	scratch bytes.Buffer
	cw      *csv.Writer
	je      *json.Encoder
}

// maxEncodedAccounts bounds the account fragments kept: memory stays
// constant whatever the number of accounts.
const maxEncodedAccounts = 1 << 16

func newExportEncoder(w io.Writer, csvFormat bool) *exportEncoder {
	e := &exportEncoder{w: w, csv: csvFormat, entry: -1, accounts: map[[2]string][]byte{}}
	e.cw = csv.NewWriter(&e.scratch)
	e.je = json.NewEncoder(&e.scratch)
	e.je.SetEscapeHTML(false)
	return e
}

// csvFields encodes fields as one CSV record, without its line end.
func (e *exportEncoder) csvFields(dst []byte, fields ...string) []byte {
	e.scratch.Reset()
	e.cw.Write(fields)
	e.cw.Flush()
	return append(dst, bytes.TrimSuffix(e.scratch.Bytes(), []byte("\n"))...)
}

// jsonString appends s as encoding/json writes it.
func (e *exportEncoder) jsonString(dst []byte, s string) []byte {
	e.scratch.Reset()
	e.je.Encode(s)
	return append(dst, bytes.TrimSuffix(e.scratch.Bytes(), []byte("\n"))...)
}

func (e *exportEncoder) header() error {
	_, err := e.w.Write(append(e.csvFields(nil, ExportColumns...), '\n'))
	return err
}

func (e *exportEncoder) encode(j ledger.JournalRow) error {
	if j.EntryID != e.entry {
		e.entry = j.EntryID
		e.hash = hex.AppendEncode(e.hash[:0], j.Hash[:])
		created := utcTime(j.CreatedAt)
		if e.csv {
			e.entryMid = e.csvFields(e.entryMid[:0], created, string(j.Kind), j.Merchant, j.OrderID, j.Payer, j.Description)
		} else {
			m := append(e.entryMid[:0], `"created_at":`...)
			m = e.jsonString(m, created)
			m = append(m, `,"kind":`...)
			m = e.jsonString(m, string(j.Kind))
			m = append(m, `,"merchant":`...)
			m = e.jsonString(m, j.Merchant)
			m = append(m, `,"order_id":`...)
			m = e.jsonString(m, j.OrderID)
			m = append(m, `,"payer":`...)
			m = e.jsonString(m, j.Payer)
			m = append(m, `,"description":`...)
			e.entryMid = e.jsonString(m, j.Description)
		}
	}
	key := [2]string{j.Account, j.Currency}
	acct, ok := e.accounts[key]
	if !ok {
		if e.csv {
			acct = e.csvFields(nil, j.Account, j.Currency)
		} else {
			acct = e.jsonString(append([]byte(nil), `"account":`...), j.Account)
			acct = e.jsonString(append(acct, `,"currency":`...), j.Currency)
		}
		if len(e.accounts) < maxEncodedAccounts {
			e.accounts[key] = acct
		}
	}
	l := e.line[:0]
	amount := money(j.Amount, j.Currency)
	if e.csv {
		l = strconv.AppendInt(l, j.EntryID, 10)
		l = append(l, ',')
		l = strconv.AppendInt(l, int64(j.Seq), 10)
		l = append(l, ',')
		l = append(l, e.entryMid...)
		l = append(l, ',')
		l = append(l, acct...)
		l = append(l, ',')
		l = append(l, amount...)
		l = append(l, ',')
		l = strconv.AppendInt(l, j.Amount, 10)
		l = append(l, ',')
		l = append(l, e.hash...)
		l = append(l, '\n')
	} else {
		l = append(l, `{"entry_id":`...)
		l = strconv.AppendInt(l, j.EntryID, 10)
		l = append(l, `,"seq":`...)
		l = strconv.AppendInt(l, int64(j.Seq), 10)
		l = append(l, ',')
		l = append(l, e.entryMid...)
		l = append(l, ',')
		l = append(l, acct...)
		l = append(l, `,"amount":"`...)
		l = append(l, amount...)
		l = append(l, `","amount_minor":`...)
		l = strconv.AppendInt(l, j.Amount, 10)
		l = append(l, `,"entry_hash":"`...)
		l = append(l, e.hash...)
		l = append(l, "\"}\n"...)
	}
	e.line = l
	_, err := e.w.Write(l)
	return err
}
