package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/ledger"
)

// SeedOptions describes the synthetic ledger Seed writes.
type SeedOptions struct {
	// Entries is how many entries to write, deposits included; at least
	// Accounts.
	Entries int
	// Accounts is the number of user wallets, user:0 … user:<Accounts-1>.
	// Each is funded by one deposit (the first Accounts entries). Default 1000.
	Accounts int
	// Merchants is the number of merchants, M1 … M<Merchants>; payment i
	// credits merchant M<1 + i mod Merchants>. Default 1 (every payment
	// credits M1, the hot merchant).
	Merchants int
	// Currency of every entry. Default CNY.
	Currency string
	// Deposit is what each wallet is funded with, in minor units. Default
	// 10^12, enough for any benchmark on top of the seeded payments.
	Deposit int64
	// Chunk is how many entries one transaction writes. Default 50,000.
	Chunk int
	// Now stamps created_at: the last seeded entry is at Now, each earlier one
	// a microsecond before the next. Default time.Now.
	Now func() time.Time
	// SkipAnalyze leaves the tables as written, without planner statistics
	// (for tests that must prove plans do not depend on them). Default: at the
	// end, compact the balances (VACUUM FULL) and ANALYZE.
	SkipAnalyze bool
	// Progress, if set, is called after each committed chunk with the number
	// of entries written so far.
	Progress func(written int)
}

// SeedResult says what Seed wrote and how long it took.
type SeedResult struct {
	Entries, Postings, Accounts int
	Write                       time.Duration
	Analyze                     time.Duration // VACUUM FULL balances and ANALYZE
	// SetChecked says the per-row triggers were off and each chunk was
	// checked with one set-based query instead (see Seed).
	SetChecked bool
}

// Seed migrates the database at dsn and fills its empty ledger with a
// synthetic one using COPY: opts.Accounts funded wallets, opts.Merchants
// merchants, and payments from the wallets (round robin) to the merchants with
// a 1 % platform fee, for opts.Entries entries in all.
//
// The result is a ledger like one the Store writes: postings that balance,
// balances that equal the sum of the postings, a hash chain computed with
// ledger.ChainHash from the genesis hash, fingerprints, evidence whose body
// digest matches, and ledger_head at the last entry, so VerifyChain and
// CheckBalances pass and a Store can continue appending. The evidence is
// marked synthetic (key id "SEED", a placeholder signature): it does not
// verify against any merchant key.
//
// The CHECK and UNIQUE constraints hold as for any write. The per-row
// triggers (the commit-time balance check, the foreign keys) cost more than
// the rows themselves, so when the role may set session_replication_role
// (a superuser, as in the dev stack) Seed turns them off for its own session
// and instead checks the same rules over each chunk in one set-based query
// before that chunk commits: every entry has exactly its declared postings,
// they balance per currency, and every posting names an existing account and
// its entry's posting count. Otherwise the triggers run, row by row.
//
// Each chunk of opts.Chunk entries is one transaction that also moves the
// balances and the head, so an interrupted Seed leaves a valid, shorter
// ledger. Seed refuses a ledger that already has accounts or entries, and
// stops if another writer moves the head.
func Seed(ctx context.Context, dsn string, opts SeedOptions) (SeedResult, error) {
	if opts.Accounts <= 0 {
		opts.Accounts = 1000
	}
	if opts.Merchants <= 0 {
		opts.Merchants = 1
	}
	if opts.Currency == "" {
		opts.Currency = "CNY"
	}
	if opts.Deposit <= 0 {
		opts.Deposit = 1_000_000_000_000
	}
	if opts.Chunk <= 0 {
		opts.Chunk = 50_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Entries < opts.Accounts {
		return SeedResult{}, fmt.Errorf("ledger/postgres: seed: %d entries cannot fund %d wallets", opts.Entries, opts.Accounts)
	}
	if err := Migrate(ctx, dsn); err != nil {
		return SeedResult{}, err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return SeedResult{}, translate(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	start := time.Now()
	sd, err := newSeeder(ctx, conn, opts)
	if err != nil {
		return SeedResult{}, err
	}
	// Refused (SQLSTATE 42501) unless the role may set it: then the triggers run.
	_, err = conn.Exec(ctx, "SET session_replication_role = replica")
	sd.setChecked = err == nil
	for sd.seq < int64(opts.Entries) {
		if err := sd.chunk(ctx, conn); err != nil {
			return SeedResult{}, fmt.Errorf("ledger/postgres: seed after entry %d: %w", sd.seq, translate(err))
		}
		if opts.Progress != nil {
			opts.Progress(int(sd.seq))
		}
	}
	res := SeedResult{Entries: int(sd.seq), Postings: sd.postings, Accounts: len(sd.accounts),
		Write: time.Since(start), SetChecked: sd.setChecked}
	if _, err := conn.Exec(ctx, "RESET session_replication_role"); err != nil {
		return res, translate(err)
	}
	if !opts.SkipAnalyze {
		start = time.Now()
		// Each chunk rewrote every touched balance row: without autovacuum
		// the table would be left with Chunks×Accounts dead versions (77 MB
		// for 10,000 live rows at 10^7 entries), slowing every later lock of
		// a balance. Rewrite it compactly, then analyse.
		if _, err := conn.Exec(ctx, "VACUUM FULL balances"); err != nil {
			return res, translate(err)
		}
		if _, err := conn.Exec(ctx, "VACUUM ledger_head"); err != nil {
			return res, translate(err)
		}
		if err := analyze(ctx, conn); err != nil {
			return res, err
		}
		res.Analyze = time.Since(start)
	}
	return res, nil
}

// seedAccount is an account of the seeded ledger with its running balance.
type seedAccount struct {
	code  string
	id    int64
	sign  int64
	allow bool
	bal   int64
	dirty bool
}

type seeder struct {
	opts     SeedOptions
	accounts []seedAccount // settlement, fees, wallets, merchants
	base     time.Time     // created_at of entry 0 (which does not exist)
	seq      int64
	head     [32]byte
	postings int
	// setChecked: the session's triggers are off; each chunk runs sqlSeedCheck.
	setChecked bool
}

// sqlSeedCheck returns an entry of ids $1..$2 that breaks a rule the
// triggers enforce on normal writes: it does not have exactly posting_count
// postings, its postings do not balance per currency, or one of them names a
// missing account or the wrong posting count. No row: the range is sound.
const sqlSeedCheck = `
	SELECT e.id FROM entries e
	LEFT JOIN (SELECT entry_id, count(*) AS n FROM postings WHERE entry_id BETWEEN $1 AND $2 GROUP BY entry_id) c
		ON c.entry_id = e.id
	WHERE e.id BETWEEN $1 AND $2 AND c.n IS DISTINCT FROM e.posting_count
	UNION ALL
	SELECT p.entry_id FROM postings p JOIN accounts a ON a.id = p.account_id
	WHERE p.entry_id BETWEEN $1 AND $2 GROUP BY p.entry_id, a.currency HAVING sum(p.amount::numeric) <> 0
	UNION ALL
	SELECT p.entry_id FROM postings p
	LEFT JOIN accounts a ON a.id = p.account_id
	LEFT JOIN entries e ON e.id = p.entry_id AND e.posting_count = p.entry_postings
	WHERE p.entry_id BETWEEN $1 AND $2 AND (a.id IS NULL OR e.id IS NULL)
	LIMIT 1`

const (
	seedSettlement = 0
	seedFees       = 1
	seedWallet0    = 2
)

func (sd *seeder) wallet(i int) int   { return seedWallet0 + i }
func (sd *seeder) merchant(i int) int { return seedWallet0 + sd.opts.Accounts + i }

// newSeeder checks the ledger is empty and creates the accounts.
func newSeeder(ctx context.Context, conn *pgx.Conn, opts SeedOptions) (*seeder, error) {
	sd := &seeder{opts: opts, head: ledger.GenesisHash}
	sd.base = ledger.CanonicalTime(opts.Now()).Add(-time.Duration(opts.Entries) * time.Microsecond)
	codes := []string{ledger.SettlementAccount, ledger.FeesAccount}
	for i := range opts.Accounts {
		codes = append(codes, ledger.UserAccount(strconv.Itoa(i)))
	}
	for i := range opts.Merchants {
		codes = append(codes, ledger.MerchantAccount(seedMerchant(i)))
	}
	types, curs := make([]string, len(codes)), make([]string, len(codes))
	neg := make([]bool, len(codes))
	for i, c := range codes {
		t, allow, err := ledger.Classify(c)
		if err != nil {
			return nil, err
		}
		types[i], curs[i], neg[i] = string(t), opts.Currency, allow
		sd.accounts = append(sd.accounts, seedAccount{code: c, sign: ledger.NormalSign(t), allow: allow})
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var seq int64
		var used bool
		if err := tx.QueryRow(ctx, `SELECT seq, EXISTS (SELECT 1 FROM accounts) FROM ledger_head FOR UPDATE`).
			Scan(&seq, &used); err != nil {
			return err
		}
		if seq != 0 || used {
			return errors.New("ledger/postgres: seed: the ledger is not empty")
		}
		rows, err := tx.Query(ctx, `INSERT INTO accounts (code, currency, type, allow_negative)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[]) RETURNING code, id`,
			codes, curs, types, neg)
		if err != nil {
			return err
		}
		ids := make(map[string]int64, len(codes))
		for rows.Next() {
			var code string
			var id int64
			if err := rows.Scan(&code, &id); err != nil {
				return err
			}
			ids[code] = id
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range sd.accounts {
			if sd.accounts[i].id = ids[sd.accounts[i].code]; sd.accounts[i].id == 0 {
				return internalf("seed: account %s was not created", sd.accounts[i].code)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO balances (account_id, balance, allow_negative)
			SELECT id, 0, allow_negative FROM accounts`)
		return err
	})
	if err != nil {
		return nil, translate(err)
	}
	return sd, nil
}

func seedMerchant(i int) string { return "M" + strconv.Itoa(i+1) }

// seedEntry is one generated entry with what its rows need.
type seedEntry struct {
	e        ledger.Entry
	rec      ledger.Recorded
	prev     [32]byte
	bodySum  [32]byte
	accounts []int // index into seeder.accounts, per posting
}

// next generates entry sd.seq+1 and applies it to the running balances.
func (sd *seeder) next() (seedEntry, error) {
	id := sd.seq + 1
	order := fmt.Sprintf("SEED%012d", id)
	var (
		e    ledger.Entry
		accs []int
	)
	cur := sd.opts.Currency
	if id <= int64(sd.opts.Accounts) { // deposits first: one per wallet
		w := int(id - 1)
		e = ledger.Deposit("TOPUP", order, strconv.Itoa(w), cur, sd.opts.Deposit, ledger.Evidence{})
		e.Evidence = seedEvidence("TOPUP", order, "/v1/deposits", sd.opts.Deposit, cur, id)
		accs = []int{seedSettlement, sd.wallet(w)}
	} else {
		n := id - int64(sd.opts.Accounts)
		w, m := int(n%int64(sd.opts.Accounts)), int(n%int64(sd.opts.Merchants))
		amount := 100 + n%9_900
		fee := amount / 100
		e = ledger.Payment(seedMerchant(m), order, strconv.Itoa(w), cur, amount, fee, "seed", ledger.Evidence{})
		e.Evidence = seedEvidence(seedMerchant(m), order, "/v1/payments", amount, cur, id)
		accs = []int{sd.wallet(w), sd.merchant(m), seedFees}
	}
	if err := e.Validate(); err != nil {
		return seedEntry{}, err
	}
	for i, p := range e.Postings {
		a := &sd.accounts[accs[i]]
		if a.code != p.Account {
			return seedEntry{}, internalf("seed: posting %d of %s is on %s, not %s", i, order, p.Account, a.code)
		}
		nb, ok := ledger.AddBalance(a.bal, a.sign*p.Amount)
		if !ok || (nb < 0 && !a.allow) {
			return seedEntry{}, fmt.Errorf("%w: seed: %s would take %s to %d", ledger.ErrInsufficientFunds, order, a.code, nb)
		}
		a.bal, a.dirty = nb, true
	}
	rec := ledger.Recorded{
		ID: id, Kind: e.Kind, Merchant: e.Merchant, OrderID: e.OrderID, Payer: e.Payer,
		Currency: e.Currency, Amount: e.Amount, Fee: e.Fee, Description: e.Description,
		Fingerprint: ledger.Fingerprint(e), CreatedAt: sd.base.Add(time.Duration(id) * time.Microsecond),
	}
	se := seedEntry{e: e, prev: sd.head, bodySum: sha256.Sum256(e.Evidence.Body), accounts: accs}
	rec.Hash = ledger.ChainHash(sd.head, rec, e.Postings, ledger.EvidenceDigest(e.Evidence))
	se.rec = rec
	sd.seq, sd.head = id, rec.Hash
	return se, nil
}

// seedEvidence is well-formed, synthetic evidence: a scheme-A Authorization
// header with key id SEED and a placeholder signature over the body below.
func seedEvidence(merchant, order, target string, amount int64, currency string, id int64) ledger.Evidence {
	body := fmt.Sprintf(`{"order_id":%q,"amount":"%d.%02d","currency":%q,"description":"seed"}`,
		order, amount/100, amount%100, currency)
	return ledger.Evidence{
		Scheme: "WECHATPAY2-SHA256-RSA2048", KeyID: "SEED",
		Authorization: fmt.Sprintf(`WECHATPAY2-SHA256-RSA2048 mchid=%q,nonce_str="seed%d",timestamp="%d",serial_no="SEED",signature=%q`,
			merchant, id, 1_700_000_000+id/1000, base64.StdEncoding.EncodeToString([]byte("synthetic seed entry"))),
		Method: "POST", Target: target, Body: []byte(body),
	}
}

var (
	seedEntryColumns = []string{"id", "kind", "merchant_id", "order_id", "payer", "currency", "amount", "fee",
		"description", "fingerprint", "prev_hash", "hash", "created_at", "evidence_scheme", "evidence_key_id",
		"authorization_header", "evidence_method", "evidence_target", "evidence_body", "evidence_body_sha256", "posting_count"}
	seedPostingColumns = []string{"entry_id", "seq", "entry_postings", "account_id", "amount"}
)

// chunk writes the next opts.Chunk entries (or fewer, at the end) in one
// transaction with the balances and head they lead to.
func (sd *seeder) chunk(ctx context.Context, conn *pgx.Conn) error {
	startSeq, startHead := sd.seq, sd.head
	n := min(sd.opts.Chunk, sd.opts.Entries-int(sd.seq))
	batch := make([]seedEntry, 0, n)
	for range n {
		se, err := sd.next()
		if err != nil {
			return err
		}
		batch = append(batch, se)
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var seq int64
		var head []byte
		if err := tx.QueryRow(ctx, sqlLockHead).Scan(&seq, &head); err != nil {
			return err
		}
		if seq != startSeq || string(head) != string(startHead[:]) {
			return fmt.Errorf("ledger/postgres: seed: the head moved to %d: another writer is running", seq)
		}
		row := make([]any, len(seedEntryColumns))
		i := 0
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"entries"}, seedEntryColumns, pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(batch) {
				return nil, nil
			}
			se := &batch[i]
			i++
			r, ev := &se.rec, &se.e.Evidence
			row[0], row[1], row[2], row[3], row[4], row[5] = r.ID, string(r.Kind), r.Merchant, r.OrderID, r.Payer, r.Currency
			row[6], row[7], row[8], row[9], row[10], row[11] = r.Amount, r.Fee, r.Description, r.Fingerprint[:], se.prev[:], r.Hash[:]
			row[12], row[13], row[14], row[15], row[16], row[17] = r.CreatedAt, ev.Scheme, ev.KeyID, ev.Authorization, ev.Method, ev.Target
			row[18], row[19], row[20] = ev.Body, se.bodySum[:], int32(len(se.e.Postings))
			return row, nil
		})); err != nil {
			return err
		}
		prow := make([]any, len(seedPostingColumns))
		i, j := 0, 0
		copied, err := tx.CopyFrom(ctx, pgx.Identifier{"postings"}, seedPostingColumns, pgx.CopyFromFunc(func() ([]any, error) {
			for i < len(batch) && j == len(batch[i].e.Postings) {
				i, j = i+1, 0
			}
			if i == len(batch) {
				return nil, nil
			}
			se := &batch[i]
			prow[0], prow[1], prow[2] = se.rec.ID, int32(j), int32(len(se.e.Postings))
			prow[3], prow[4] = sd.accounts[se.accounts[j]].id, se.e.Postings[j].Amount
			j++
			return prow, nil
		}))
		if err != nil {
			return err
		}
		if want := postingsOf(batch); copied != int64(want) {
			return internalf("seed: copied %d postings, want %d", copied, want)
		}
		if sd.setChecked {
			var bad int64
			switch err := tx.QueryRow(ctx, sqlSeedCheck, startSeq+1, sd.seq).Scan(&bad); {
			case err == nil:
				return internalf("seed: entry %d does not balance or has wrong postings", bad)
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
		}
		var ids, bals []int64
		for k := range sd.accounts {
			if a := &sd.accounts[k]; a.dirty {
				ids, bals = append(ids, a.id), append(bals, a.bal)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE balances b SET balance = d.balance
			FROM unnest($1::bigint[], $2::bigint[]) AS d(id, balance) WHERE b.account_id = d.id`, ids, bals); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, sqlUpdateHead, sd.seq, sd.head[:])
		return err
	})
	if err != nil {
		return err
	}
	for k := range sd.accounts {
		sd.accounts[k].dirty = false
	}
	sd.postings += postingsOf(batch)
	return nil
}

func postingsOf(batch []seedEntry) int {
	n := 0
	for i := range batch {
		n += len(batch[i].e.Postings)
	}
	return n
}
