package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestConfigRefusesBadValues: a value that does not parse refuses to start,
// naming the variable and the accepted form, instead of leaving the default
// in force.
func TestConfigRefusesBadValues(t *testing.T) {
	for _, tt := range []struct {
		name, value string
		want        []string // in the error
	}{
		{"QUILL_REPLAY_WINDOW", "300", []string{"QUILL_REPLAY_WINDOW", "300s"}},
		{"QUILL_MAX_BODY", "64KiB", []string{"QUILL_MAX_BODY", "bytes", "65536"}},
		{"QUILL_PPROF", "on", []string{"QUILL_PPROF", "true or false"}},
		{"QUILL_MIGRATE", "yes", []string{"QUILL_MIGRATE", "true or false"}},
		{"QUILL_MAX_BATCH", "lots", []string{"QUILL_MAX_BATCH", "whole number"}},
		{"QUILL_REDIS_TIMEOUT", "1", []string{"QUILL_REDIS_TIMEOUT", "duration"}},
		{"QUILL_KEYS_REFRESH", "30", []string{"QUILL_KEYS_REFRESH"}},
		{"QUILL_MERCHANTS_REFRESH", "5", []string{"QUILL_MERCHANTS_REFRESH"}},
		{"QUILL_MERCHANTS_REFRESH", "1ms", []string{"merchants refresh"}},
		{"QUILL_REPLAY_WINDOW", "2h", []string{"replay window"}},
	} {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			t.Setenv(tt.name, tt.value)
			var c config
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			bindServe(fs, &c)
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			err := c.validate()
			if err == nil {
				t.Fatalf("%s=%s accepted", tt.name, tt.value)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("good values", func(t *testing.T) {
		for k, v := range map[string]string{"QUILL_REPLAY_WINDOW": "5m", "QUILL_MAX_BODY": "65536", "QUILL_PPROF": "true", "QUILL_MIGRATE": "0"} {
			t.Setenv(k, v)
		}
		var c config
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		bindServe(fs, &c)
		fs.Parse(nil)
		if err := c.validate(); err != nil {
			t.Fatal(err)
		}
		if !c.Pprof || c.Migrate || c.MaxBody != 65536 || c.Window.Seconds() != 300 {
			t.Fatalf("parsed %+v", c)
		}
	})
}

func TestDSNWithPasswordNotFromAFlag(t *testing.T) {
	dsnFile := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(dsnFile, []byte("postgres://quill:s3cret@db:5432/quill\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  string
		ok   bool
		want string
	}{
		{"flag without password", []string{"--pg-dsn", "postgres://quill@db/quill"}, "", true, "postgres://quill@db/quill"},
		{"flag with password", []string{"--pg-dsn", "postgres://quill:s3cret@db/quill"}, "", false, ""},
		{"keyword flag with password", []string{"--pg-dsn", "host=db user=quill password=s3cret"}, "", false, ""},
		{"query password in flag", []string{"--pg-dsn", "postgres://db/quill?password=s3cret"}, "", false, ""},
		{"env with password", nil, "postgres://quill:s3cret@db/quill", true, "postgres://quill:s3cret@db/quill"},
		{"file", []string{"--pg-dsn-file", dsnFile}, "", true, "postgres://quill:s3cret@db:5432/quill"},
		{"missing file", []string{"--pg-dsn-file", dsnFile + ".nope"}, "", false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("QUILL_PG_DSN", tt.env)
			}
			var c config
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			bindServe(fs, &c)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := c.resolveDSN(fs)
			if (err == nil) != tt.ok {
				t.Fatalf("resolveDSN: %v; want ok=%t", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error quotes the password: %v", err)
			}
			if tt.ok && c.PostgresDSN != tt.want {
				t.Fatalf("DSN %q; want %q", c.PostgresDSN, tt.want)
			}
		})
	}
}

func TestVersionFlag(t *testing.T) {
	cmd := rootCmd()
	var out strings.Builder
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--version"})
	if err := cmd.Execute(); err != nil || !strings.HasPrefix(out.String(), "quill version ") {
		t.Fatalf("--version: %v %q", err, out.String())
	}
}
