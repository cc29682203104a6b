// Command devvault runs a real, in-memory HashiCorp Vault (v1.14.1, the last
// MPL-licensed release) on a loopback port, for Quill's tests and dev stack.
//
// The Vault binary cannot be downloaded on the development machines, but the
// Go module proxy serves Vault's source, which compiles an in-process core:
// vault.TestCoreUnsealedWithConfig with the real KV v2 plugin, served over
// HTTP by vault/http.TestServer. This is Vault's own server code, not an
// imitation of its HTTP API. It lives in its own module so that the service's
// go.mod never pulls Vault's server dependencies.
//
// On start it mounts KV v2 at -mount (default "quill"; the test core already
// mounts KV v1 at "secret/"), optionally enables AppRole with a role limited
// to that mount, and prints one JSON line on stdout:
//
//	{"addr":"http://127.0.0.1:PORT","root_token":"…","mount":"quill","role_id":"…","secret_id":"…"}
//
// It exits on SIGTERM or SIGINT, and with -stdin also when stdin closes (so a
// test that starts it as a subprocess cannot leak it). With -stdin, the lines
// "seal" and "unseal" on stdin seal and unseal the core, and each answers
// with a JSON line {"sealed":true|false}.
//
// Everything lives in memory: a restarted devvault is empty. The root token
// is printed on purpose; this program is for loopback development only.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/builtin/credential/approle"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault"
)

type startup struct {
	Addr      string `json:"addr"`
	RootToken string `json:"root_token"`
	Mount     string `json:"mount"`
	RoleID    string `json:"role_id,omitempty"`
	SecretID  string `json:"secret_id,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devvault:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on")
	mount := flag.String("mount", "quill", "path of the KV v2 mount to create")
	withAppRole := flag.Bool("approle", false, "enable AppRole and create role \"quill\" limited to the mount")
	tokenTTL := flag.Duration("approle-token-ttl", time.Hour, "TTL of tokens issued by the AppRole login")
	watchStdin := flag.Bool("stdin", false, "exit when stdin closes; accept \"seal\"/\"unseal\" lines")
	flag.Parse()

	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %q: only loopback addresses are allowed", *listen)
	}

	t := &runT{}
	defer t.cleanup()
	core, unsealKeys, root := vault.TestCoreUnsealedWithConfig(t, &vault.CoreConfig{
		LogicalBackends:    map[string]logical.Factory{"kv": kv.Factory},
		CredentialBackends: map[string]logical.Factory{"approle": approle.Factory},
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	addr := "http://" + ln.Addr().String()
	vaulthttp.TestServerWithListener(nil, ln, addr, core)

	cfg := api.DefaultConfig()
	cfg.Address = addr
	client, err := api.NewClient(cfg)
	if err != nil {
		return err
	}
	client.SetToken(root)
	out := startup{Addr: addr, RootToken: root, Mount: *mount}
	if err := setup(client, *mount, *withAppRole, *tokenTTL, &out); err != nil {
		return err
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	if *watchStdin {
		go func() {
			defer close(done)
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
				switch strings.TrimSpace(sc.Text()) {
				case "seal":
					if err := vault.TestCoreSeal(core); err != nil {
						fmt.Fprintln(os.Stderr, "devvault: seal:", err)
					}
				case "unseal":
					for _, k := range unsealKeys {
						if _, err := vault.TestCoreUnseal(core, vault.TestKeyCopy(k)); err != nil {
							fmt.Fprintln(os.Stderr, "devvault: unseal:", err)
						}
					}
					waitWritable(client, *mount)
				default:
					continue
				}
				fmt.Printf("{\"sealed\":%t}\n", core.Sealed())
			}
		}()
	}
	select {
	case <-sig:
	case <-done:
	}
	_ = ln.Close()
	return nil
}

// setup mounts KV v2 and, when asked, AppRole with a role whose policy covers
// only that mount.
func setup(c *api.Client, mount string, withAppRole bool, ttl time.Duration, out *startup) error {
	err := c.Sys().Mount(mount, &api.MountInput{
		Type:        "kv",
		Description: "Quill keys (KV v2)",
		Options:     map[string]string{"version": "2"},
	})
	if err != nil {
		return fmt.Errorf("mount %s: %w", mount, err)
	}
	if err := waitWritable(c, mount); err != nil {
		return err
	}
	if !withAppRole {
		return nil
	}
	policy := fmt.Sprintf(`
path "%[1]s/data/*"     { capabilities = ["create", "read", "update", "delete", "list"] }
path "%[1]s/metadata/*" { capabilities = ["read", "list", "delete", "update"] }
path "%[1]s/metadata"   { capabilities = ["list"] }
`, mount)
	if err := c.Sys().PutPolicy("quill", policy); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if err := c.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		return fmt.Errorf("enable approle: %w", err)
	}
	secs := int(ttl / time.Second)
	if secs < 1 {
		secs = 1
	}
	if _, err := c.Logical().Write("auth/approle/role/quill", map[string]interface{}{
		"token_policies": "quill",
		"token_ttl":      secs,
		"token_max_ttl":  "24h",
	}); err != nil {
		return fmt.Errorf("approle role: %w", err)
	}
	rid, err := c.Logical().Read("auth/approle/role/quill/role-id")
	if err != nil || rid == nil {
		return fmt.Errorf("approle role-id: %v", err)
	}
	sid, err := c.Logical().Write("auth/approle/role/quill/secret-id", nil)
	if err != nil || sid == nil {
		return fmt.Errorf("approle secret-id: %v", err)
	}
	out.RoleID, _ = rid.Data["role_id"].(string)
	out.SecretID, _ = sid.Data["secret_id"].(string)
	return nil
}

// waitWritable waits until the KV v2 mount accepts writes: a fresh or freshly
// unsealed mount answers "upgrading" for a moment.
func waitWritable(c *api.Client, mount string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		_, err = c.KVv2(mount).Put(ctx, "_devvault/probe", map[string]interface{}{"ok": true})
		if err == nil {
			return c.KVv2(mount).DeleteMetadata(ctx, "_devvault/probe")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.Join(errors.New("kv v2 mount never became writable"), err)
}

// runT adapts Vault's test helpers (which take a testing.T-like value) to a
// program: failures end the process, cleanups run at exit.
type runT struct {
	cleanups []func()
}

func (t *runT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

func (t *runT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *runT) Error(args ...interface{})         { t.Log(args...) }
func (t *runT) Errorf(f string, a ...interface{}) { t.Logf(f, a...) }
func (t *runT) Fail()                             {}
func (t *runT) FailNow()                          { os.Exit(1) }
func (t *runT) Failed() bool                      { return false }
func (t *runT) Fatal(args ...interface{}) {
	t.Log(args...)
	os.Exit(1)
}
func (t *runT) Fatalf(f string, a ...interface{}) {
	t.Logf(f, a...)
	os.Exit(1)
}
func (t *runT) Helper()                          {}
func (t *runT) Log(args ...interface{})          { fmt.Fprintln(os.Stderr, args...) }
func (t *runT) Logf(f string, a ...interface{})  { fmt.Fprintf(os.Stderr, f+"\n", a...) }
func (t *runT) Name() string                     { return "devvault" }
func (t *runT) Parallel()                        {}
func (t *runT) Skip(args ...interface{})         {}
func (t *runT) SkipNow()                         {}
func (t *runT) Skipf(f string, a ...interface{}) {}
func (t *runT) Skipped() bool                    { return false }
