package cluster

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGBinDir is where Debian's PostgreSQL 15 binaries are.
const PGBinDir = "/usr/lib/postgresql/15/bin"

// PGFormation is a running pg_auto_failover formation on loopback: a monitor
// and two data nodes, the secondary in synchronous (quorum) replication.
type PGFormation struct {
	MonitorPort int
	Nodes       []*PGNode
	dir         string
	env         []string
	runAs       []string // runuser prefix when the test runs as root
}

// PGNode is one data node of a formation.
type PGNode struct {
	Name   string
	Port   int
	PGData string
	proc   *Proc
}

// PGOptions tunes StartPGFormation. The zero value is usable.
type PGOptions struct {
	// Database is created on the primary (and so replicated); default "quill".
	Database string
}

// StartPGFormation starts a pg_auto_failover monitor, a primary and a
// secondary with pg_autoctl, with failure detection tightened for a test: the
// monitor checks health every second and promotes after about five seconds
// without the primary, and a keeper that loses the monitor and its standby
// demotes itself after three seconds (so the monitor's demote timeout, five
// seconds, stays above it: no split brain).
func StartPGFormation(tb testing.TB, o PGOptions) *PGFormation {
	tb.Helper()
	Need(tb, "postgresql-15-auto-failover", "pg_autoctl")
	if _, err := os.Stat(filepath.Join(PGBinDir, "pg_ctl")); err != nil {
		tb.Fatalf("cluster: PostgreSQL 15 binaries not in %s (apt-get install postgresql-15)", PGBinDir)
	}
	if o.Database == "" {
		o.Database = "quill"
	}
	dir, err := os.MkdirTemp("", "quill-pgaf-")
	if err != nil {
		tb.Fatal(err)
	}
	f := &PGFormation{dir: dir}
	tb.Cleanup(func() { f.cleanup(); os.RemoveAll(dir) })
	if os.Getuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("cluster: running as root needs a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
		f.runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	f.env = []string{
		"PATH=" + PGBinDir + ":" + os.Getenv("PATH"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_DATA_HOME=" + filepath.Join(dir, "share"),
		"XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"),
		"PG_COLOR=never",
	}
	ports := FreePorts(tb, 3, false)
	f.MonitorPort = ports[0]

	// The monitor.
	monData := filepath.Join(dir, "monitor")
	f.start(tb, "monitor", "create", "monitor", "--pgdata", monData, "--pgport", strconv.Itoa(f.MonitorPort),
		"--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--run")
	if err := Eventually(2*time.Minute, 200*time.Millisecond, func() error {
		return f.exec(context.Background(), f.monitorDSN(), "SELECT 1 FROM pgautofailover.node LIMIT 1")
	}); err != nil {
		tb.Fatalf("monitor not up: %v (log %s)", err, filepath.Join(dir, "monitor.log"))
	}
	for _, set := range []string{
		"pgautofailover.health_check_period = 1000",
		"pgautofailover.health_check_timeout = 2000",
		"pgautofailover.health_check_max_retries = 1",
		"pgautofailover.health_check_retry_delay = 1000",
		"pgautofailover.node_considered_unhealthy_timeout = 4000",
		"pgautofailover.primary_demote_timeout = 5000",
	} {
		if err := f.exec(context.Background(), f.monitorDSN(), "ALTER SYSTEM SET "+set); err != nil {
			tb.Fatal(err)
		}
	}
	if err := f.exec(context.Background(), f.monitorDSN(), "SELECT pg_reload_conf()"); err != nil {
		tb.Fatal(err)
	}

	// The data nodes, one after the other: the second is cloned from the first.
	for i, port := range ports[1:] {
		n := &PGNode{Name: fmt.Sprintf("node_%d", i+1), Port: port, PGData: filepath.Join(dir, fmt.Sprintf("node%d", i+1))}
		if out, err := f.run(3*time.Minute, "create", "postgres", "--pgdata", n.PGData,
			"--pgport", strconv.Itoa(port), "--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--name", n.Name,
			"--auth", "trust", "--no-ssl", "--monitor", f.monitorURL()); err != nil {
			tb.Fatalf("create %s: %v\n%s", n.Name, err, out)
		}
		if out, err := f.run(time.Minute, "config", "set", "--pgdata", n.PGData,
			"timeout.network_partition_timeout", "3"); err != nil {
			tb.Fatalf("config %s: %v\n%s", n.Name, err, out)
		}
		n.proc = f.start(tb, n.Name, "run", "--pgdata", n.PGData)
		f.Nodes = append(f.Nodes, n)
		want := "single" // alone, until the secondary joins
		if i > 0 {
			want = "secondary"
		}
		if err := f.waitState(n, 3*time.Minute, want); err != nil {
			tb.Fatalf("%s: %v (log %s)", n.Name, err, n.proc.Log)
		}
	}
	if err := f.waitState(f.Nodes[0], 2*time.Minute, "primary"); err != nil {
		tb.Fatal(err)
	}
	if err := f.exec(context.Background(), f.DSN("postgres"), "CREATE DATABASE "+o.Database); err != nil {
		tb.Fatal(err)
	}
	return f
}

func (f *PGFormation) cmd(name string, args ...string) (string, []string) {
	all := append(append(append([]string{}, f.runAs...), name), args...)
	return all[0], all[1:]
}

func (f *PGFormation) run(timeout time.Duration, args ...string) (string, error) {
	name, all := f.cmd("pg_autoctl", args...)
	return Run(timeout, f.env, name, all...)
}

func (f *PGFormation) start(tb testing.TB, label string, args ...string) *Proc {
	tb.Helper()
	name, all := f.cmd("pg_autoctl", args...)
	return Start(tb, f.dir, label, f.env, name, all...)
}

// cleanup kills any postmaster a killed keeper may have left behind, by the
// pid in its postmaster.pid.
func (f *PGFormation) cleanup() {
	for _, d := range []string{"monitor", "node1", "node2"} {
		killPostmaster(filepath.Join(f.dir, d))
	}
}

// killPostmaster SIGKILLs the postmaster of pgdata, if its postmaster.pid
// names one.
func killPostmaster(pgdata string) {
	b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])); err == nil && pid > 1 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func (f *PGFormation) monitorURL() string {
	return fmt.Sprintf("postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover?sslmode=disable", f.MonitorPort)
}

func (f *PGFormation) monitorDSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/pg_auto_failover?sslmode=disable&connect_timeout=5", f.MonitorPort)
}

func (f *PGFormation) exec(ctx context.Context, dsn, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

// hosts is the multi-host list of every data node.
func (f *PGFormation) hosts() string {
	var h []string
	for _, n := range f.Nodes {
		h = append(h, "127.0.0.1:"+strconv.Itoa(n.Port))
	}
	return strings.Join(h, ",")
}

// DSN is a multi-host DSN for database db that reaches whichever node is
// the primary now (target_session_attrs=read-write).
func (f *PGFormation) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&target_session_attrs=read-write&connect_timeout=3", f.hosts(), db)
}

// StandbyDSN is a multi-host DSN that prefers a standby, for lag-tolerant
// reads.
func (f *PGFormation) StandbyDSN(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&target_session_attrs=prefer-standby&connect_timeout=3", f.hosts(), db)
}

// NodeDSN is a DSN of one node.
func (f *PGFormation) NodeDSN(n *PGNode, db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=3", n.Port, db)
}

// States returns each data node's reported and goal state, by node name, as
// the monitor sees them.
func (f *PGFormation) States(ctx context.Context) (map[string][2]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, f.monitorDSN())
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, "SELECT nodename, reportedstate::text, goalstate::text FROM pgautofailover.node")
	if err != nil {
		return nil, err
	}
	out := map[string][2]string{}
	for rows.Next() {
		var name, rep, goal string
		if err := rows.Scan(&name, &rep, &goal); err != nil {
			return nil, err
		}
		out[name] = [2]string{rep, goal}
	}
	return out, rows.Err()
}

func (f *PGFormation) waitState(n *PGNode, timeout time.Duration, states ...string) error {
	return Eventually(timeout, 250*time.Millisecond, func() error {
		st, err := f.States(context.Background())
		if err != nil {
			return err
		}
		s := st[n.Name]
		for _, want := range states {
			if s[0] == want && s[1] == want {
				return nil
			}
		}
		return fmt.Errorf("%s is %s (goal %s), want %v: %w", n.Name, s[0], s[1], states, errNotYet)
	})
}

// Primary returns the node the monitor has as primary: assigned a primary
// state and reporting it. (A killed node's last report stays "primary", so
// the assigned state decides.)
func (f *PGFormation) Primary() (*PGNode, error) {
	st, err := f.States(context.Background())
	if err != nil {
		return nil, err
	}
	for _, n := range f.Nodes {
		rep, goal := st[n.Name][0], st[n.Name][1]
		switch goal {
		case "primary", "wait_primary", "single":
			if rep == goal {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("no primary in %v", st)
}

// Kill SIGKILLs node n: its keeper and its postgres, at once.
func (f *PGFormation) Kill(n *PGNode) {
	n.proc.Kill()
	// postgres, should it have outlived its keeper's process group (a
	// SIGKILLed postmaster leaves its postmaster.pid behind).
	killPostmaster(n.PGData)
}

// WaitPromoted waits until a node other than old accepts writes as primary
// (wait_primary: alone, since old is gone).
func (f *PGFormation) WaitPromoted(old *PGNode, timeout time.Duration) (*PGNode, error) {
	var got *PGNode
	err := Eventually(timeout, 200*time.Millisecond, func() error {
		p, err := f.Primary()
		if err != nil {
			return err
		}
		if p == old {
			return fmt.Errorf("%s still primary: %w", p.Name, errNotYet)
		}
		var ro string
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, f.NodeDSN(p, "postgres"))
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		if err := c.QueryRow(ctx, "SHOW transaction_read_only").Scan(&ro); err != nil {
			return err
		}
		if ro != "off" {
			return fmt.Errorf("%s read-only still: %w", p.Name, errNotYet)
		}
		got = p
		return nil
	})
	return got, err
}

// Timeline returns the monitor's log lines that record state decisions, for
// a test to print what the failover took.
func (f *PGFormation) Timeline() string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "monitor.log"))
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "Setting goal state") || strings.Contains(line, "marked as unhealthy") || strings.Contains(line, "New state is reported") {
			out = append(out, line)
		}
	}
	if len(out) > 40 {
		out = out[len(out)-40:]
	}
	return strings.Join(out, "\n")
}
