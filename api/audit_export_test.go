package api

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/quillpay/quill/ledger"
)

// TestExportEncoderMatchesTheLibraries: the export's own encoder writes
// exactly what encoding/csv and encoding/json write for the same rows,
// whatever the text holds (separators, quotes, line breaks, HTML, U+2028,
// invalid UTF-8, leading spaces), across entries and repeated accounts.
func TestExportEncoderMatchesTheLibraries(t *testing.T) {
	texts := []string{"", "plain", `a,b`, `say "hi"`, "line\nbreak\r\n", "<b>&</b>", "\u2028x\u2029", "bad \xff utf8", " lead", `\.`, "日本"}
	var rows []ledger.JournalRow
	for i, txt := range texts {
		for seq, acct := range []string{"user:" + txt, "merchant:M1", "platform:fees"} {
			rows = append(rows, ledger.JournalRow{
				EntryID: int64(i + 1), Seq: int32(seq), CreatedAt: time.Date(2026, 12, 4, 1, 2, 3, int(i)*1000, time.UTC),
				Kind: ledger.KindPayment, Merchant: "M" + txt, OrderID: "ORD" + txt, Payer: txt, Description: txt,
				Account: acct, Currency: "CNY", Amount: int64(seq*100 - 150 + i), Hash: [32]byte{byte(i), 0xab},
			})
		}
	}
	for _, format := range []string{"csv", "ndjson"} {
		t.Run(format, func(t *testing.T) {
			var got, want bytes.Buffer
			enc := newExportEncoder(&got, format == "csv")
			cw := csv.NewWriter(&want)
			je := json.NewEncoder(&want)
			je.SetEscapeHTML(false)
			if format == "csv" {
				if err := enc.header(); err != nil {
					t.Fatal(err)
				}
				cw.Write(ExportColumns)
			}
			for _, j := range rows {
				if err := enc.encode(j); err != nil {
					t.Fatal(err)
				}
				if format == "csv" {
					cw.Write([]string{strconv.FormatInt(j.EntryID, 10), strconv.Itoa(int(j.Seq)), utcTime(j.CreatedAt), string(j.Kind), j.Merchant,
						j.OrderID, j.Payer, j.Description, j.Account, j.Currency, money(j.Amount, j.Currency), strconv.FormatInt(j.Amount, 10),
						hex.EncodeToString(j.Hash[:])})
				} else {
					je.Encode(JournalRowJSON{j.EntryID, j.Seq, utcTime(j.CreatedAt), string(j.Kind), j.Merchant, j.OrderID, j.Payer, j.Description,
						j.Account, j.Currency, money(j.Amount, j.Currency), j.Amount, hex.EncodeToString(j.Hash[:])})
				}
			}
			cw.Flush()
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("encoder output differs:\n%q\n---\n%q", got.String(), want.String())
			}
		})
	}
}
