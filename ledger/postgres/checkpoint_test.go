package postgres

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/ledger"
)

// platformKeys is the test's published platform keys.
type platformKeys map[string]crypto.PublicKey

func (p platformKeys) CheckpointKey(_ context.Context, id string) (crypto.PublicKey, error) {
	if k, ok := p[id]; ok {
		return k, nil
	}
	return nil, errors.New("unknown platform key")
}

var rsaKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

func TestCheckpoints(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{})
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	keys := platformKeys{"RSA1": rsaKey.Public(), "ED1": ed.Public()}
	now := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)

	// A checkpoint of the empty chain signs the genesis hash at seq 0.
	c0, made, err := s.CreateCheckpoint(ctx, now, "RSA1", rsaKey, true)
	if err != nil || !made || c0.Seq != 0 || c0.Head != ledger.GenesisHash {
		t.Fatalf("empty checkpoint = %+v, %v, %v", c0, made, err)
	}
	m := seed(t, s)
	c1, made, err := s.CreateCheckpoint(ctx, now.Add(time.Minute), "ED1", ed, true)
	if err != nil || !made || c1.Seq != int64(len(m.recs)) || c1.Head != m.recs[len(m.recs)-1].Hash {
		t.Fatalf("checkpoint = %+v, %v, %v", c1, made, err)
	}
	// Periodic: nothing new, nothing signed. On demand: signed again.
	if c, made, err := s.CreateCheckpoint(ctx, now.Add(2*time.Minute), "ED1", ed, true); err != nil || made || c.ID != c1.ID {
		t.Fatalf("unchanged head: %+v, %v, %v", c, made, err)
	}
	if _, made, err := s.CreateCheckpoint(ctx, now.Add(3*time.Minute), "RSA1", rsaKey, false); err != nil || !made {
		t.Fatalf("on demand: %v, %v", made, err)
	}
	cps, err := s.ListCheckpoints(ctx, 0, 0)
	if err != nil || len(cps) != 3 {
		t.Fatalf("ListCheckpoints = %d, %v", len(cps), err)
	}
	for _, c := range cps {
		if err := ledger.VerifyCheckpoint(c, keys[c.KeyID]); err != nil {
			t.Errorf("stored checkpoint %d: %v", c.ID, err)
		}
	}
	if page, _ := s.ListCheckpoints(ctx, cps[0].ID, 1); len(page) != 1 || page[0].ID != cps[1].ID {
		t.Errorf("keyset page = %+v", page)
	}
	rep, err := s.AuditChain(ctx, 0, 0, keys)
	if err != nil || !rep.OK() || rep.Entries != int64(len(m.recs)) || rep.Checkpoints != 3 {
		t.Fatalf("AuditChain = %+v, %v", rep, err)
	}
	for _, r := range [][2]int64{{1, 5}, {6, 6}, {6, 0}, {17, 17}} {
		if rep, err := s.AuditChain(ctx, r[0], r[1], keys); err != nil || !rep.OK() {
			t.Errorf("AuditChain(%d, %d) = %+v, %v", r[0], r[1], rep, err)
		}
	}
	// A checkpoint names a key the auditor does not know: reported.
	if rep, _ := s.AuditChain(ctx, 0, 0, platformKeys{"ED1": ed.Public()}); rep.BadCheckpoint != cps[0].ID {
		t.Errorf("unknown signing key: %+v", rep)
	}
}

// TestChainTamper alters the stored ledger as a superuser would, with the
// triggers disabled, and checks AuditChain finds and names the first bad entry
// or checkpoint.
func TestChainTamper(t *testing.T) {
	const replica = "SET session_replication_role = replica;" // no triggers, no foreign keys
	tests := []struct {
		name     string
		sql      func(recs []ledger.Recorded) string
		firstBad int64
		reason   string
		badCP    bool // the stored checkpoint fails
	}{
		{"posting amount changed", func([]ledger.Recorded) string {
			return replica + "UPDATE postings SET amount = amount + 1 WHERE entry_id = 4 AND seq = 0"
		}, 4, "postings do not match", false},
		{"posting moved to another account", func([]ledger.Recorded) string {
			return replica + `UPDATE postings SET account_id = (SELECT id FROM accounts WHERE code = 'user:42') WHERE entry_id = 4 AND seq = 0`
		}, 4, "postings do not match", false},
		{"middle entry deleted", func([]ledger.Recorded) string {
			return replica + "DELETE FROM postings WHERE entry_id = 6; DELETE FROM entries WHERE id = 6"
		}, 6, "missing", false},
		{"entry deleted, its postings kept", func([]ledger.Recorded) string {
			return replica + "DELETE FROM entries WHERE id = 6"
		}, 6, "missing", false},
		{"last entries deleted and the head moved back", func(recs []ledger.Recorded) string {
			return replica + fmt.Sprintf(`DELETE FROM postings WHERE entry_id > 15; DELETE FROM entries WHERE id > 15;
				UPDATE ledger_head SET seq = 15, hash = '\x%x'`, recs[14].Hash)
		}, 16, "checkpoint", true},
		{"two entries swapped", func([]ledger.Recorded) string {
			return replica + `UPDATE entries SET id = 1000 WHERE id = 5; UPDATE postings SET entry_id = 1000 WHERE entry_id = 5;
				UPDATE entries SET id = 5 WHERE id = 7; UPDATE postings SET entry_id = 5 WHERE entry_id = 7;
				UPDATE entries SET id = 7 WHERE id = 1000; UPDATE postings SET entry_id = 7 WHERE entry_id = 1000;`
		}, 5, "prev_hash", false},
		{"entry rewritten and the whole chain recomputed", func(recs []ledger.Recorded) string {
			// The forger recomputes every hash after entry 8 and the head:
			// only the signed checkpoint can tell.
			sql := replica + "UPDATE entries SET description = 'forged' WHERE id = 8;"
			return sql + "SELECT 1" // the rehash is done in Go below
		}, 1, "rewritten", true},
		{"checkpoint signature altered", func([]ledger.Recorded) string {
			return replica + `UPDATE checkpoints SET signature = overlay(signature placing '\x00' from 10 for 1)`
		}, 0, "", true},
		{"checkpoint head altered", func(recs []ledger.Recorded) string {
			return replica + fmt.Sprintf(`UPDATE checkpoints SET head_hash = '\x%x'`, recs[3].Hash)
		}, 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, dsn := newStore(t, Options{})
			m := seed(t, s)
			keys := platformKeys{"RSA1": rsaKey.Public()}
			if _, _, err := s.CreateCheckpoint(ctx, time.Now(), "RSA1", rsaKey, false); err != nil {
				t.Fatal(err)
			}
			if rep, err := s.AuditChain(ctx, 0, 0, keys); err != nil || !rep.OK() {
				t.Fatalf("before tampering: %+v, %v", rep, err)
			}
			conn := connect(t, dsn)
			if _, err := conn.Exec(ctx, tt.sql(m.recs)); err != nil {
				t.Fatalf("tamper: %v", err)
			}
			if strings.Contains(tt.name, "recomputed") {
				rehash(t, s, dsn, 8)
				if err := s.VerifyChain(ctx, 0, 0); err != nil {
					t.Fatalf("the forgery should pass a chain check without checkpoints: %v", err)
				}
			}
			rep, err := s.AuditChain(ctx, 0, 0, keys)
			if err != nil {
				t.Fatal(err)
			}
			if rep.FirstBad != tt.firstBad || !strings.Contains(rep.Reason, tt.reason) {
				t.Errorf("first bad = %d (%s), want %d (%q)", rep.FirstBad, rep.Reason, tt.firstBad, tt.reason)
			}
			if (rep.BadCheckpoint != 0) != tt.badCP {
				t.Errorf("bad checkpoint = %d (%s), want bad=%v", rep.BadCheckpoint, rep.CheckpointReason, tt.badCP)
			}
			if rep.OK() || !errors.Is(rep.Err(), ledger.ErrIntegrity) {
				t.Errorf("report OK=%v Err=%v", rep.OK(), rep.Err())
			}
		})
	}
}

// TestCheckpointRefusesBrokenChain: Quill recomputes the chain since its last
// checkpoint before it signs a new head, and signs nothing over a break.
func TestCheckpointRefusesBrokenChain(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t, Options{})
	mustRecord(t, s, deposit("D1", "42", 1_000))
	if _, _, err := s.CreateCheckpoint(ctx, time.Now(), "RSA1", rsaKey, false); err != nil {
		t.Fatal(err)
	}
	mustRecord(t, s, payment("P1", "42", 100, 1))
	mustRecord(t, s, payment("P2", "42", 100, 1))
	if _, err := connect(t, dsn).Exec(ctx, `SET session_replication_role = replica;
		UPDATE entries SET order_id = 'P9' WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateCheckpoint(ctx, time.Now(), "RSA1", rsaKey, false); !errors.Is(err, ledger.ErrIntegrity) || !strings.Contains(err.Error(), "entry 3") {
		t.Fatalf("CreateCheckpoint over a broken chain = %v", err)
	}
	if cps, _ := s.ListCheckpoints(ctx, 0, 0); len(cps) != 1 {
		t.Fatalf("%d checkpoints stored", len(cps))
	}
}

// rehash recomputes fingerprints, prev hashes and hashes from entry from to the
// head, and the head, as a forger with database access would.
func rehash(t *testing.T, s *Store, dsn string, from int64) {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, dsn)
	if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		t.Fatal(err)
	}
	var head int64
	if err := conn.QueryRow(ctx, "SELECT seq FROM ledger_head").Scan(&head); err != nil {
		t.Fatal(err)
	}
	prev, err := s.EntryEvidence(ctx, from-1, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := prev.Hash
	for id := from; id <= head; id++ {
		ee, err := s.EntryEvidence(ctx, id, nil)
		if err != nil {
			t.Fatal(err)
		}
		ee.Fingerprint = ledger.Fingerprint(ee.Content(ee.Postings))
		next := ledger.ChainHash(h, ee.Recorded, ee.Postings, ledger.EvidenceDigest(ee.Evidence))
		if _, err := conn.Exec(ctx, "UPDATE entries SET fingerprint = $2, prev_hash = $3, hash = $4 WHERE id = $1",
			id, ee.Fingerprint[:], h[:], next[:]); err != nil {
			t.Fatal(err)
		}
		h = next
	}
	if _, err := conn.Exec(ctx, "UPDATE ledger_head SET hash = $1", h[:]); err != nil {
		t.Fatal(err)
	}
}

// TestChainAuditInSmallChunks reruns the chain tests with chunks of two
// entries, so every range spans many chunks read by both readers and every
// failure lands in, or at the edge of, a chunk other than the first.
func TestChainAuditInSmallChunks(t *testing.T) {
	old := auditChunk
	auditChunk = 2
	t.Cleanup(func() { auditChunk = old })
	t.Run("checkpoints", TestCheckpoints)
	t.Run("tamper", TestChainTamper)
	t.Run("refuse", TestCheckpointRefusesBrokenChain)
}

// TestSharedSnapshot: the second reader sees exactly the first one's state,
// not entries committed after it began.
func TestSharedSnapshot(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{})
	mustRecord(t, s, deposit("D1", "42", 1_000))
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		var before int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM entries").Scan(&before); err != nil {
			return err
		}
		mustRecord(t, s, deposit("D2", "42", 1_000)) // committed after the snapshot
		tx2, err := s.sharedSnapshot(ctx, tx)
		if err != nil {
			return err
		}
		defer tx2.Rollback(ctx)
		var seen int64
		if err := tx2.QueryRow(ctx, "SELECT count(*) FROM entries").Scan(&seen); err != nil {
			return err
		}
		if seen != before || before != 1 {
			t.Errorf("second reader sees %d entries, first %d", seen, before)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
