package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/merchant"
	merchantpg "github.com/quillpay/quill/merchant/postgres"
)

// ringOwner turns a ring name on the command line into its owner: a merchant
// id, or platform, payer, auditor (with or without the leading _).
func ringOwner(name string) (string, error) {
	switch strings.TrimPrefix(name, "_") {
	case "platform":
		return keys.PlatformOwner, nil
	case "payer":
		return keys.PayerOwner, nil
	case "auditor":
		return keys.AuditorOwner, nil
	}
	if _, err := merchant.ParseID(name); err != nil {
		return "", fmt.Errorf("ring %q: not platform, payer, auditor or a merchant id", name)
	}
	return name, nil
}

// keyOp is one key command's shared state: the store, the ring, the audit log.
type keyOp struct {
	a     *app
	rs    ringStore
	reg   *merchantpg.Store
	owner string
	keys  []keys.PublicKey // the ring as read, newest first
	close func()
}

// openRing opens the key store and the audit log and reads ring name, which
// must exist. The audit log is checked first: an action that could not be
// recorded is not taken.
func (a *app) openRing(ctx context.Context, name string) (*keyOp, error) {
	owner, err := ringOwner(name)
	if err != nil {
		return nil, err
	}
	reg, err := a.conf.registry(ctx)
	if err != nil {
		return nil, err
	}
	if err := reg.Ping(ctx); err != nil {
		reg.Close()
		return nil, fmt.Errorf("audit log: %w (nothing changed)", err)
	}
	rs, closeRings, err := a.conf.rings(a.dataDir)
	if err != nil {
		reg.Close()
		return nil, err
	}
	op := &keyOp{a: a, rs: rs, reg: reg, owner: owner, close: func() { closeRings(); reg.Close() }}
	rings, err := rs.LoadRings(ctx)
	if err != nil {
		op.close()
		return nil, err
	}
	var names []string
	for _, r := range rings {
		names = append(names, r.Owner())
		if r.Owner() == owner {
			if op.keys, err = r.Keys(); err != nil {
				op.close()
				return nil, err
			}
		}
	}
	if len(op.keys) == 0 {
		op.close()
		slices.Sort(names)
		return nil, fmt.Errorf("%w: no key ring %q in %s (rings: %s); nothing changed", keys.ErrNotFound, owner, rs, strings.Join(names, ", "))
	}
	return op, nil
}

// find resolves a version number or key id in the ring.
func (op *keyOp) find(ref string) (keys.PublicKey, error) {
	v, verr := strconv.Atoi(ref)
	for _, k := range op.keys {
		if k.ID == ref || (verr == nil && k.Version == v) {
			return k, nil
		}
	}
	return keys.PublicKey{}, fmt.Errorf("%w: ring %s has no version or key id %q", keys.ErrNotFound, op.owner, ref)
}

// merchantAlgorithm is the algorithm of the ring's newest active key, the
// default of a rotation (rsa-v1_5-sha256 if none is active).
func (op *keyOp) merchantAlgorithm() keys.Algorithm {
	alg, newest := keys.RSAPKCS1SHA256, 0
	for _, k := range op.keys {
		if k.Status == keys.Active && k.Version > newest && k.Algorithm != "" {
			alg, newest = k.Algorithm, k.Version
		}
	}
	return alg
}

func (op *keyOp) active() []string {
	var ids []string
	for _, k := range op.keys {
		if k.Status == keys.Active {
			ids = append(ids, k.ID)
		}
	}
	return ids
}

// record writes the audit event of a change that was made.
func (op *keyOp) record(ctx context.Context, ev merchant.Event) error {
	ev.Actor, ev.Subject = op.a.conf.operator(), op.owner
	if _, err := op.reg.Record(ctx, ev); err != nil {
		return &exitError{code: 3, err: fmt.Errorf("the key change WAS made but could not be recorded in the audit log; record it by hand: %w", err)}
	}
	return nil
}

// window is the server's replay window, the floor of every overlap.
func (a *app) window() (time.Duration, error) {
	return a.conf.duration("QUILL_REPLAY_WINDOW")
}

func keysCmd(a *app) *cobra.Command {
	k := &cobra.Command{
		Use:   "keys",
		Short: "List, show, rotate, retire and revoke key rings (merchants, platform, payer, auditor)",
		Long: `Key rings live in Vault (QUILL_VAULT_ADDR) or, without it, the dev file store in
<data-dir>/keys; a running server picks every change up without restart.
RING is a merchant id, or platform, payer or auditor. KEY is a version number
or a key id. Every change is recorded in the audit log (quillctl events).`,
	}
	k.AddCommand(keysListCmd(a), keysShowCmd(a), keysRotateCmd(a), keysRetireCmd(a), keysRevokeCmd(a))
	return k
}

type keyRow struct {
	Ring      string         `json:"ring"`
	Version   int            `json:"version"`
	ID        string         `json:"id"`
	Algorithm keys.Algorithm `json:"algorithm"`
	Status    keys.Status    `json:"status"`
	CreatedAt time.Time      `json:"created_at"`
	RotatedAt time.Time      `json:"rotated_at,omitzero"`
	NotAfter  time.Time      `json:"not_after,omitzero"`
	PublicPEM string         `json:"public_key_pem,omitempty"`
}

func rowOf(k keys.PublicKey) keyRow {
	return keyRow{Ring: k.Owner, Version: k.Version, ID: k.ID, Algorithm: k.Algorithm, Status: k.Status, CreatedAt: k.CreatedAt, RotatedAt: k.RotatedAt, NotAfter: k.NotAfter}
}

func keysListCmd(a *app) *cobra.Command {
	var ring string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List every key version of every ring (or of one)",
		Example: "  quillctl keys list\n  quillctl keys list --ring M100 --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			owner := ""
			if ring != "" {
				var err error
				if owner, err = ringOwner(ring); err != nil {
					return err
				}
			}
			rings, err := a.loadRings(ctx)
			if err != nil {
				return err
			}
			if owner != "" && len(rings[owner]) == 0 {
				return fmt.Errorf("%w: no key ring %q", keys.ErrNotFound, owner)
			}
			var owners []string
			for o := range rings {
				if owner == "" || o == owner {
					owners = append(owners, o)
				}
			}
			slices.Sort(owners)
			out := []keyRow{}
			for _, o := range owners {
				for _, k := range rings[o] {
					out = append(out, rowOf(k))
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			var rows [][]string
			for _, r := range out {
				rows = append(rows, []string{r.Ring, strconv.Itoa(r.Version), r.ID, string(r.Algorithm), string(r.Status), ts(r.CreatedAt), ts(r.NotAfter)})
			}
			return table(cmd.OutOrStdout(), []string{"RING", "VERSION", "ID", "ALGORITHM", "STATUS", "CREATED", "NOT_AFTER"}, rows)
		},
	}
	cmd.Flags().StringVar(&ring, "ring", "", "only this ring: a merchant id, platform, payer or auditor")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

func keysShowCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "show RING KEY",
		Short:   "Show one key version with its public key (never a private key)",
		Example: "  quillctl keys show M100 1\n  quillctl keys show platform 5F3A… --json",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			owner, err := ringOwner(args[0])
			if err != nil {
				return err
			}
			rings, err := a.loadRings(cmd.Context())
			if err != nil {
				return err
			}
			op := &keyOp{owner: owner, keys: rings[owner]}
			k, err := op.find(args[1])
			if err != nil {
				return err
			}
			r := rowOf(k)
			pem, err := keys.MarshalPublicKeyPEM(k.Public)
			if err != nil {
				return err
			}
			r.PublicPEM = string(pem)
			if asJSON {
				return printJSON(cmd.OutOrStdout(), r)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "ring:       %s\nversion:    %d\nid:         %s\nalgorithm:  %s\nstatus:     %s\ncreated:    %s\nrotated:    %s\nnot after:  %s\n%s",
				r.Ring, r.Version, r.ID, r.Algorithm, r.Status, ts(r.CreatedAt), ts(r.RotatedAt), ts(r.NotAfter), r.PublicPEM)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func keysRotateCmd(a *app) *cobra.Command {
	var overlap time.Duration
	var keyOut, publicKey, algName string
	cmd := &cobra.Command{
		Use:   "rotate RING --overlap DURATION",
		Short: "Add a new active key version; the previous ones keep verifying for the overlap",
		Long: `Rotate a ring: add a new active version and retire the active ones with
not_after = now + overlap, so requests (or responses) signed with them keep
verifying meanwhile. The overlap must be at least the replay window
(QUILL_REPLAY_WINDOW, default 300s). A ring that does not exist is refused.

  merchant ring   a new key for --alg (rsa-v1_5-sha256, rsa-pss-sha512,
                  ecdsa-p256-sha256 or ed25519; default: the algorithm of the
                  ring's newest active key), or --public-key FILE from the
                  merchant; the private key is written once: --key-out FILE
                  (0600, new), --key-out - (stdout), or the dev layout if the
                  merchant has one
  platform        a new RSA-2048 platform key pair, kept in the key store
  payer, auditor  a new Ed25519 key (or --public-key FILE from the issuer); the
                  private key as for merchants (payer: the dev login service's
                  key in a dev setup)`,
		Example: `  quillctl keys rotate M100 --overlap 24h
  quillctl keys rotate M100 --overlap 1h --public-key new-m100.pub.pem
  quillctl keys rotate M100 --overlap 24h --alg ed25519
  quillctl keys rotate platform --overlap 48h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			window, err := a.window()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("overlap") {
				return errors.New("--overlap is required: how long the current keys keep verifying")
			}
			if overlap < window {
				return fmt.Errorf("--overlap %s is shorter than the replay window %s: requests signed just before the rotation would fail; nothing changed", overlap, window)
			}
			owner, err := ringOwner(args[0])
			if err != nil {
				return err
			}
			if owner == keys.PlatformOwner && (publicKey != "" || keyOut != "") {
				return errors.New("the platform key pair is generated and kept in the key store: --public-key and --key-out do not apply")
			}
			var wantAlg keys.Algorithm
			if cmd.Flags().Changed("alg") {
				if strings.HasPrefix(owner, "_") {
					return fmt.Errorf("--alg applies to merchant rings only: the %s ring's algorithm is fixed; nothing changed", owner)
				}
				if wantAlg, err = parseAlgorithm(algName); err != nil {
					return err
				}
			}
			op, err := a.openRing(ctx, args[0])
			if err != nil {
				return err
			}
			defer op.close()
			old := strings.Join(op.active(), ",")
			mgr := keys.Manager{Rings: op.rs}
			w := cmd.OutOrStdout()
			var newID string
			switch owner {
			case keys.PlatformOwner:
				signer, serial, err := newSigningKey(keys.RSAPKCS1SHA256, "")
				if err != nil {
					return err
				}
				if err := mgr.RotatePlatform(ctx, keys.NewPrivateKey(serial, keys.RSAPKCS1SHA256, signer), overlap); err != nil {
					return err
				}
				newID = serial
				if err := devenv.SavePlatformPublic(a.dataDir, serial, signer.Public()); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: dev platform.serial not updated: %v\n", err)
				}
			default:
				alg, prefix := op.merchantAlgorithm(), ""
				if owner == keys.PayerOwner || owner == keys.AuditorOwner {
					alg, prefix = keys.Ed25519, strings.ToUpper(strings.TrimPrefix(owner, "_"))+"_"
				}
				if wantAlg != "" {
					alg = wantAlg
				}
				var signer crypto.Signer
				var pub crypto.PublicKey
				var kid string
				save := func() error { return nil }
				if publicKey != "" {
					b, err := os.ReadFile(publicKey)
					if err != nil {
						return err
					}
					if pub, err = keys.ParsePublicKeyPEM(b); err != nil {
						return err
					}
					def, err := keys.AlgorithmOf(pub)
					if err != nil {
						return err
					}
					if wantAlg == "" {
						alg = def
					}
					kid = keys.NewKeyID(prefix, rand.Reader)
				} else {
					if signer, kid, err = newSigningKey(alg, prefix); err != nil {
						return err
					}
					pub = signer.Public()
					switch {
					case keyOut == "-":
						save = func() error { return printKey(w, signer) }
						w = cmd.ErrOrStderr()
					case keyOut != "":
						if err := writeNewKeyFile(keyOut, signer); err != nil {
							return err
						}
					case owner == keys.PayerOwner:
						save = func() error {
							ok, err := devenv.SavePayerSigner(a.dataDir, signer, kid)
							if err == nil && !ok {
								err = errors.New("no dev payer signer to replace")
							}
							return err
						}
					case devenv.HasClientCert(a.dataDir, owner):
						save = func() error { return devenv.SaveSigningKeyWithAlgorithm(a.dataDir, owner, signer, kid, alg) }
					default:
						return errors.New("where should the new private key go? give --key-out FILE, --key-out -, or --public-key FILE; nothing changed")
					}
				}
				if err := mgr.Rotate(ctx, owner, keys.PublicKey{ID: kid, Algorithm: alg, Public: pub}, overlap); err != nil {
					return err
				}
				newID = kid
				if err := save(); err != nil {
					return fmt.Errorf("key %s registered but its private key could not be saved (Quill does not keep it): %w; revoke it", kid, err)
				}
			}
			fmt.Fprintf(w, "ring %s rotated: new key %s; %s verify until %s\n", owner, newID, orNone(old), ts(time.Now().Add(overlap)))
			return op.record(ctx, merchant.Event{Action: merchant.KeyRotated, OldKeyID: old, NewKeyID: newID, Detail: "overlap " + overlap.String()})
		},
	}
	cmd.Flags().DurationVar(&overlap, "overlap", 0, "how long the current keys keep verifying (at least the replay window)")
	cmd.Flags().StringVar(&keyOut, "key-out", "", "write the new private key to this new file (0600), or - for stdout")
	cmd.Flags().StringVar(&publicKey, "public-key", "", "register this PEM public key instead of generating a key pair")
	cmd.Flags().StringVar(&algName, "alg", "", "merchant rings: the new key's algorithm, one of "+algorithmList+" (default: that of the newest active key)")
	return cmd
}

func orNone(ids string) string {
	if ids == "" {
		return "no earlier keys"
	}
	return ids
}

func keysRetireCmd(a *app) *cobra.Command {
	var grace time.Duration
	var force bool
	cmd := &cobra.Command{
		Use:   "retire RING KEY",
		Short: "Stop a key signing; it keeps verifying for --grace, then is refused",
		Example: `  quillctl keys retire M100 2 --grace 1h
  quillctl keys retire payer PAYER_7Q2… --grace 15m`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			window, err := a.window()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("grace") {
				grace = window
			}
			if grace < window {
				return fmt.Errorf("--grace %s is shorter than the replay window %s; nothing changed", grace, window)
			}
			op, err := a.openRing(ctx, args[0])
			if err != nil {
				return err
			}
			defer op.close()
			k, err := op.find(args[1])
			if err != nil {
				return err
			}
			if act := op.active(); k.Status == keys.Active && len(act) == 1 && !force {
				return fmt.Errorf("refusing to retire %s, the only active key of %s: rotate first, or give --force; nothing changed", k.ID, op.owner)
			}
			until := time.Now().Add(grace)
			if err := (keys.Manager{Rings: op.rs}).SetStatus(ctx, op.owner, k.ID, keys.Retiring, until); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s of %s retiring: verifies until %s\n", k.ID, op.owner, ts(until))
			return op.record(ctx, merchant.Event{Action: merchant.KeyRetired, OldKeyID: k.ID, Detail: "grace " + grace.String()})
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", 0, "how long it keeps verifying (default and minimum: the replay window)")
	cmd.Flags().BoolVar(&force, "force", false, "allow retiring the only active key")
	return cmd
}

func keysRevokeCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "revoke RING KEY",
		Short: "Refuse a key from now on (final)",
		Long: `Revoke a key version: it is refused at once on every node after their next
refresh. Revocation is final. Revoking the only active version of a ring
refuses every request of that owner; it needs --force.`,
		Example: "  quillctl keys revoke M100 1\n  quillctl keys revoke M100 2 --force",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			op, err := a.openRing(ctx, args[0])
			if err != nil {
				return err
			}
			defer op.close()
			k, err := op.find(args[1])
			if err != nil {
				return err
			}
			if err := (keys.Manager{Rings: op.rs}).Revoke(ctx, op.owner, k.ID, force); err != nil {
				if errors.Is(err, keys.ErrLastActive) {
					return fmt.Errorf("%w: %s is the only active key of %s; rotate first, or give --force; nothing changed", keys.ErrLastActive, k.ID, op.owner)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s of %s revoked\n", k.ID, op.owner)
			detail := ""
			if force {
				detail = "forced"
			}
			return op.record(ctx, merchant.Event{Action: merchant.KeyRevoked, OldKeyID: k.ID, Detail: detail})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "allow revoking the only active key")
	return cmd
}
