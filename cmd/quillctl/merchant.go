package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/merchant"
	"github.com/quillpay/quill/policy"
)

// profileFlags are the profile fields add and update take.
type profileFlags struct {
	name                         string
	feeBps                       int64
	canDeposit                   bool
	currencies                   []string
	minAmount, maxAmount, orders string
}

func (f *profileFlags) bind(fs *pflag.FlagSet, defFee int64) {
	fs.StringVar(&f.name, "name", "", "display name")
	fs.Int64Var(&f.feeBps, "fee-bps", defFee, "platform fee in basis points of each payment (0..10000)")
	fs.BoolVar(&f.canDeposit, "can-deposit", false, "allow this client to top up user wallets (POST /v1/deposits)")
	fs.StringSliceVar(&f.currencies, "currency", nil, "allowed currency, repeatable (default CNY)")
	fs.StringVar(&f.minAmount, "min-amount", "", "smallest payment, decimal major units (default 0.01)")
	fs.StringVar(&f.maxAmount, "max-amount", "", "largest payment, decimal major units (default 1000000.00)")
	fs.StringVar(&f.orders, "order-id-pattern", "", "order id pattern, RE2 (default ^ORD[0-9]{12,29}$)")
}

// apply copies the flags the user set onto p and says what changed.
func (f *profileFlags) apply(fs *pflag.FlagSet, p *merchant.Profile) []string {
	var changed []string
	note := func(name string, old, new any) { changed = append(changed, fmt.Sprintf("%s %v→%v", name, old, new)) }
	if fs.Changed("name") && p.Name != f.name {
		note("name", strconv.Quote(p.Name), strconv.Quote(f.name))
		p.Name = f.name
	}
	if fs.Changed("fee-bps") && p.FeeBps != f.feeBps {
		note("fee_bps", p.FeeBps, f.feeBps)
		p.FeeBps = f.feeBps
	}
	if fs.Changed("can-deposit") && p.CanDeposit != f.canDeposit {
		note("can_deposit", p.CanDeposit, f.canDeposit)
		p.CanDeposit = f.canDeposit
	}
	if fs.Changed("currency") && strings.Join(p.Rules.Currencies, ",") != strings.Join(f.currencies, ",") {
		note("currencies", p.Rules.Currencies, f.currencies)
		p.Rules.Currencies = f.currencies
	}
	if fs.Changed("min-amount") && p.Rules.MinAmount != f.minAmount {
		note("min_amount", p.Rules.MinAmount, f.minAmount)
		p.Rules.MinAmount = f.minAmount
	}
	if fs.Changed("max-amount") && p.Rules.MaxAmount != f.maxAmount {
		note("max_amount", p.Rules.MaxAmount, f.maxAmount)
		p.Rules.MaxAmount = f.maxAmount
	}
	if fs.Changed("order-id-pattern") && p.Rules.OrderIDPattern != f.orders {
		note("order_id_pattern", p.Rules.OrderIDPattern, f.orders)
		p.Rules.OrderIDPattern = f.orders
	}
	return changed
}

func merchantCmd(a *app) *cobra.Command {
	m := &cobra.Command{Use: "merchant", Short: "Onboard, change, disable and list merchants (the registry in Postgres)"}
	m.AddCommand(merchantAddCmd(a), merchantUpdateCmd(a), merchantStatusCmd(a, merchant.Disabled), merchantStatusCmd(a, merchant.Active), merchantListCmd(a))
	return m
}

func merchantAddCmd(a *app) *cobra.Command {
	var pf profileFlags
	var keyOut, algName string
	var ifMissing bool
	add := &cobra.Command{
		Use:   "add ID",
		Short: "Onboard a merchant: signing key (RSA-2048 by default), key id, profile",
		Long: `Onboard a merchant: generate its request-signing key for --alg (default
rsa-v1_5-sha256, RSA-2048, the only one scheme A accepts; rsa-pss-sha512,
ecdsa-p256-sha256 and ed25519 are for scheme B), register the public key with
that algorithm as the first version of its key ring (Vault or the dev store)
and its profile in the registry, and record the action in the audit log.

Quill never stores the private key. It is written once: with --key-out FILE
to a new file (mode 0600; an existing file is refused), with --key-out - to
stdout (everything else then goes to stderr), or, by default, into the dev
layout <data-dir>/merchants/<ID>/ together with a client certificate from
the dev CA (run quillctl dev init first). A running server sees the new
merchant at once.`,
		Example: `  quillctl merchant add M300 --name "Tea House" --fee-bps 45
  quillctl merchant add M301 --currency CNY --currency USD --max-amount 5000.00 --key-out m301.key.pem
  quillctl merchant add M302 --key-out - > m302.key.pem
  quillctl merchant add M303 --alg ed25519 --key-out m303.key.pem`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id, err := merchant.ParseID(args[0])
			if err != nil {
				return err
			}
			alg, err := parseAlgorithm(algName)
			if err != nil {
				return err
			}
			p := merchant.Profile{ID: string(id), Name: string(id), FeeBps: pf.feeBps, Status: merchant.Active}
			pf.apply(cmd.Flags(), &p)
			if err := policy.ValidateMerchant(p); err != nil {
				return err
			}
			reg, err := a.conf.registry(ctx)
			if err != nil {
				return err
			}
			defer reg.Close()
			out, info := cmd.OutOrStdout(), cmd.OutOrStdout()
			if keyOut == "-" {
				info = cmd.ErrOrStderr()
			}
			switch _, err := reg.Get(ctx, id); {
			case err == nil && ifMissing:
				fmt.Fprintf(info, "merchant %s exists\n", id)
				return nil
			case err == nil:
				return fmt.Errorf("%w: %s (use merchant update)", merchant.ErrExists, id)
			case !errors.Is(err, merchant.ErrUnknown):
				return err
			}
			rs, closeRings, err := a.conf.rings(a.dataDir)
			if err != nil {
				return err
			}
			defer closeRings()
			dev := keyOut == ""
			now := time.Now()
			if dev && devenv.MerchantExists(a.dataDir, string(id)) {
				// Dev material from before the registry (merchants.json):
				// register the profile for the key it already has.
				mc, err := devenv.LoadMerchant(a.dataDir, string(id))
				if err != nil {
					return err
				}
				if cmd.Flags().Changed("alg") && mc.Algorithm != alg {
					return fmt.Errorf("--alg %s: the existing dev material of %s is for %s; nothing changed", alg, id, mc.Algorithm)
				}
				if _, err := reg.Add(ctx, p, merchant.Event{Actor: a.conf.operator(), NewKeyID: mc.KeyID, Detail: "profile for existing dev material"}); err != nil {
					return err
				}
				fmt.Fprintf(info, "merchant %s registered for its existing dev material (key id %s)\n", id, mc.KeyID)
				return nil
			}
			if dev {
				if err := devenv.IssueClientCert(a.dataDir, string(id), now); err != nil {
					return fmt.Errorf("%w (or give --key-out FILE outside a dev setup)", err)
				}
			}
			signer, kid, err := newSigningKey(alg, "")
			if err != nil {
				return err
			}
			if !dev && keyOut != "-" {
				if err := writeNewKeyFile(keyOut, signer); err != nil {
					return err
				}
			}
			if err := (keys.Manager{Rings: rs}).Create(ctx, string(id), keys.PublicKey{ID: kid, Algorithm: alg, Public: signer.Public()}); err != nil {
				if errors.Is(err, keys.ErrExists) {
					return fmt.Errorf("%w: merchant %s has no profile but has a key ring in %s (an earlier add stopped half-way?); its keys are not served without a profile: revoke them with quillctl keys revoke", err, id, rs)
				}
				return err
			}
			detail := "fee_bps " + strconv.FormatInt(p.FeeBps, 10)
			if alg != keys.RSAPKCS1SHA256 {
				detail += ", algorithm " + string(alg)
			}
			if _, err := reg.Add(ctx, p, merchant.Event{Actor: a.conf.operator(), NewKeyID: kid, Detail: detail}); err != nil {
				return fmt.Errorf("key %s registered in %s but the profile was not: %w", kid, rs, err)
			}
			switch {
			case dev:
				if err := devenv.SaveSigningKeyWithAlgorithm(a.dataDir, string(id), signer, kid, alg); err != nil {
					return err
				}
			case keyOut == "-":
				if err := printKey(out, signer); err != nil {
					return err
				}
			}
			fmt.Fprintf(info, "merchant %s onboarded\n  key id (serial_no): %s\n  algorithm: %s\n  key store: %s\n", id, kid, alg, rs)
			switch {
			case dev:
				fmt.Fprintf(info, "  files: %s\n", devenv.MerchantDir(a.dataDir, string(id)))
			case keyOut != "-":
				fmt.Fprintf(info, "  private key (0600, not kept by Quill): %s\n", keyOut)
			}
			return nil
		},
	}
	pf.bind(add.Flags(), 60)
	add.Flags().StringVar(&keyOut, "key-out", "", "write the private signing key to this new file (0600), or - for stdout; default: the dev layout in <data-dir>")
	add.Flags().StringVar(&algName, "alg", string(keys.RSAPKCS1SHA256), "signing algorithm: "+algorithmList)
	add.Flags().BoolVar(&ifMissing, "if-missing", false, "succeed without change if the merchant exists")
	return add
}

func merchantUpdateCmd(a *app) *cobra.Command {
	var pf profileFlags
	up := &cobra.Command{
		Use:   "update ID",
		Short: "Change a merchant's profile: only the flags given change",
		Example: `  quillctl merchant update M300 --fee-bps 30
  quillctl merchant update M300 --currency CNY --currency HKD --max-amount 20000.00`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := merchant.ParseID(args[0])
			if err != nil {
				return err
			}
			if !slices.ContainsFunc([]string{"name", "fee-bps", "can-deposit", "currency", "min-amount", "max-amount", "order-id-pattern"}, cmd.Flags().Changed) {
				return errors.New("nothing to change: give at least one of the profile flags (--help lists them)")
			}
			var changed []string
			p, err := a.updateProfile(cmd.Context(), id, merchant.MerchantUpdated, func(p *merchant.Profile) ([]string, error) {
				changed = pf.apply(cmd.Flags(), p)
				return changed, policy.ValidateMerchant(*p)
			})
			if err != nil {
				return err
			}
			if len(changed) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "merchant %s unchanged\n", p.ID)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "merchant %s updated: %s\n", p.ID, strings.Join(changed, ", "))
			return nil
		},
	}
	pf.bind(up.Flags(), 0)
	return up
}

func merchantStatusCmd(a *app, st merchant.Status) *cobra.Command {
	use, action, short := "disable ID", merchant.MerchantDisabled, "Disable a merchant: every node refuses it with 403 within one refresh interval; nothing is deleted"
	if st == merchant.Active {
		use, action, short = "enable ID", merchant.MerchantEnabled, "Serve a disabled merchant again"
	}
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Example: "  quillctl merchant " + strings.Fields(use)[0] + " M300",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := merchant.ParseID(args[0])
			if err != nil {
				return err
			}
			p, err := a.updateProfile(cmd.Context(), id, action, func(p *merchant.Profile) ([]string, error) {
				if p.Status == st {
					return nil, nil
				}
				old := p.Status
				p.Status = st
				return []string{fmt.Sprintf("status %s→%s", old, st)}, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "merchant %s is %s\n", p.ID, p.Status)
			return nil
		},
	}
}

// errNoChange stops an update that would change nothing: no audit row.
var errNoChange = errors.New("nothing to change")

// updateProfile changes id's profile with change (which says what it
// changed) and records action; a change of nothing writes nothing.
func (a *app) updateProfile(ctx context.Context, id merchant.ID, action merchant.Action, change func(*merchant.Profile) ([]string, error)) (merchant.Profile, error) {
	reg, err := a.conf.registry(ctx)
	if err != nil {
		return merchant.Profile{}, err
	}
	defer reg.Close()
	var cur merchant.Profile
	p, err := reg.Update(ctx, id, func(p *merchant.Profile) (string, error) {
		cur = *p
		what, err := change(p)
		if err != nil {
			return "", err
		}
		if len(what) == 0 {
			return "", errNoChange
		}
		return strings.Join(what, ", "), nil
	}, merchant.Event{Actor: a.conf.operator(), Action: action})
	if errors.Is(err, errNoChange) {
		return cur, nil
	}
	return p, err
}

func merchantListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List merchants with their status, fee and active keys",
		Example: "  quillctl merchant list\n  quillctl merchant list --json | jq '.[] | select(.status == \"disabled\")'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			reg, err := a.conf.registry(ctx)
			if err != nil {
				return err
			}
			defer reg.Close()
			ps, err := reg.List(ctx)
			if err != nil {
				return err
			}
			rings, err := a.loadRings(ctx)
			if err != nil {
				return err
			}
			type row struct {
				merchant.Profile
				ActiveKeys []string `json:"active_keys"`
			}
			out := make([]row, 0, len(ps))
			for _, p := range ps {
				r := row{Profile: p, ActiveKeys: []string{}}
				for _, k := range rings[p.ID] {
					if k.Status == keys.Active {
						r.ActiveKeys = append(r.ActiveKeys, k.ID)
					}
				}
				out = append(out, r)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			var rows [][]string
			for _, r := range out {
				rows = append(rows, []string{r.ID, string(r.Status), strconv.FormatInt(r.FeeBps, 10), strconv.FormatBool(r.CanDeposit), strings.Join(r.ActiveKeys, ","), r.Name})
			}
			return table(cmd.OutOrStdout(), []string{"ID", "STATUS", "FEE_BPS", "CAN_DEPOSIT", "ACTIVE_KEYS", "NAME"}, rows)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

// loadRings reads every key ring, by owner.
func (a *app) loadRings(ctx context.Context) (map[string][]keys.PublicKey, error) {
	rs, closeRings, err := a.conf.rings(a.dataDir)
	if err != nil {
		return nil, err
	}
	defer closeRings()
	rings, err := rs.LoadRings(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]keys.PublicKey, len(rings))
	for _, r := range rings {
		ks, err := r.Keys()
		if err != nil {
			return nil, err
		}
		out[r.Owner()] = ks
	}
	return out, nil
}

// merchantAlgorithms are the algorithms a merchant key may be registered
// with; scheme A takes only the first.
var merchantAlgorithms = []keys.Algorithm{keys.RSAPKCS1SHA256, keys.RSAPSSSHA512, keys.ECDSAP256SHA256, keys.Ed25519}

var algorithmList = func() string {
	names := make([]string, len(merchantAlgorithms))
	for i, a := range merchantAlgorithms {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}()

// parseAlgorithm checks an --alg value.
func parseAlgorithm(name string) (keys.Algorithm, error) {
	if alg := keys.Algorithm(name); slices.Contains(merchantAlgorithms, alg) {
		return alg, nil
	}
	return "", fmt.Errorf("--alg %q: unknown algorithm; accepted: %s (rsa-v1_5-sha256 is the only one scheme A accepts); nothing changed", name, algorithmList)
}

// newSigningKey generates a key of alg and a fresh key id.
func newSigningKey(alg keys.Algorithm, prefix string) (crypto.Signer, string, error) {
	s, err := keys.Generate(alg, rand.Reader)
	if err != nil {
		return nil, "", err
	}
	return s, keys.NewKeyID(prefix, rand.Reader), nil
}

// writeNewKeyFile writes k's PEM to a file that must not exist yet, 0600.
func writeNewKeyFile(path string, k crypto.Signer) error {
	b, err := keys.MarshalPrivateKeyPEM(k)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--key-out: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func printKey(w io.Writer, k crypto.Signer) error {
	b, err := keys.MarshalPrivateKeyPEM(k)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
