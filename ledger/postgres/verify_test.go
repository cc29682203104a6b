package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/quillpay/quill/ledger"
)

// TestTamper alters stored rows as a superuser would, with the append-only
// triggers disabled, and checks that VerifyChain (and CheckBalances where
// balances move) detects it.
func TestTamper(t *testing.T) {
	const disable = `ALTER TABLE entries DISABLE TRIGGER entries_append_only;
		ALTER TABLE postings DISABLE TRIGGER postings_append_only;`
	tests := []struct {
		name      string
		sql       func(recs []ledger.Recorded) string
		chainErr  string // substring of VerifyChain's error
		balanceOK bool   // CheckBalances still passes
	}{
		{"amount changed", func([]ledger.Recorded) string {
			return disable + "UPDATE entries SET amount = amount + 1 WHERE id = 2"
		}, "entry 2: content", true},
		{"evidence body replaced with its digest", func([]ledger.Recorded) string {
			return disable + `UPDATE entries SET evidence_body = '{"amount":"9.00"}',
				evidence_body_sha256 = sha256('{"amount":"9.00"}') WHERE id = 3`
		}, "entry 3: hash", true},
		{"authorization header changed", func([]ledger.Recorded) string {
			return disable + "UPDATE entries SET authorization_header = 'forged' WHERE id = 3"
		}, "entry 3: hash", true},
		{"created_at changed", func([]ledger.Recorded) string {
			return disable + "UPDATE entries SET created_at = created_at + interval '1 microsecond' WHERE id = 4"
		}, "entry 4: hash", true},
		{"posting moved to another account", func([]ledger.Recorded) string {
			return disable + `UPDATE postings SET account_id = (SELECT id FROM accounts WHERE code = 'user:43')
				WHERE entry_id = 2 AND seq = 0`
		}, "entry 2: content", false},
		{"balanced postings appended after dropping constraints", func([]ledger.Recorded) string {
			return `ALTER TABLE postings DROP CONSTRAINT postings_seq_range, DROP CONSTRAINT postings_entry_fkey;
				INSERT INTO postings (entry_id, seq, entry_postings, account_id, amount) VALUES
				(2, 10, 3, (SELECT id FROM accounts WHERE code = 'merchant:M1'), 50),
				(2, 11, 3, (SELECT id FROM accounts WHERE code = 'user:42'), -50)`
		}, "entry 2: content", false},
		{"last entry deleted", func([]ledger.Recorded) string {
			return disable + "DELETE FROM postings WHERE entry_id = 5; DELETE FROM entries WHERE id = 5"
		}, "head is at 5 but the last entry is 4", false},
		{"middle entry deleted", func([]ledger.Recorded) string {
			return disable + "DELETE FROM postings WHERE entry_id = 3; DELETE FROM entries WHERE id = 3"
		}, "entry 3 is missing", false},
		{"entry rewritten with its own hash recomputed", func(recs []ledger.Recorded) string {
			forged := payment("ORD1", "42", 100, 1)
			forged.Description = "forged"
			r := recs[1]
			r.Description, r.Fingerprint = forged.Description, ledger.Fingerprint(forged)
			h := ledger.ChainHash(recs[0].Hash, r, forged.Postings, ledger.EvidenceDigest(forged.Evidence))
			return disable + "UPDATE entries SET description = 'forged', fingerprint = '\\x" + hexOf(r.Fingerprint[:]) +
				"', hash = '\\x" + hexOf(h[:]) + "' WHERE id = 2"
		}, "entry 3: prev_hash", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, dsn := newStore(t, Options{})
			recs := []ledger.Recorded{
				mustRecord(t, s, deposit("D1", "42", 1_000)),
				mustRecord(t, s, payment("ORD1", "42", 100, 1)),
				mustRecord(t, s, payment("ORD2", "42", 100, 1)),
				mustRecord(t, s, deposit("D2", "43", 500)),
				mustRecord(t, s, payment("ORD3", "43", 100, 0)),
			}
			checkInvariants(t, s)

			if _, err := connect(t, dsn).Exec(ctx, tt.sql(recs)); err != nil {
				t.Fatalf("tamper: %v", err)
			}
			err := s.VerifyChain(ctx, 0, 0)
			if !errors.Is(err, ledger.ErrIntegrity) || !strings.Contains(err.Error(), tt.chainErr) {
				t.Errorf("VerifyChain = %v, want ErrIntegrity with %q", err, tt.chainErr)
			}
			if err := s.CheckBalances(ctx); (err == nil) != tt.balanceOK {
				t.Errorf("CheckBalances = %v, want ok=%v", err, tt.balanceOK)
			} else if err != nil && !errors.Is(err, ledger.ErrIntegrity) {
				t.Errorf("CheckBalances = %v, want ErrIntegrity", err)
			}
		})
	}
}

func TestVerifyChainRanges(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{})
	for _, e := range []ledger.Entry{deposit("D1", "42", 1_000), payment("O1", "42", 10, 0), payment("O2", "42", 10, 0)} {
		mustRecord(t, s, e)
	}
	for _, r := range [][2]int64{{0, 0}, {1, 3}, {2, 3}, {3, 3}, {2, 2}, {1, 100}, {5, 0}} {
		if err := s.VerifyChain(ctx, r[0], r[1]); err != nil {
			t.Errorf("VerifyChain(%d, %d) = %v", r[0], r[1], err)
		}
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
