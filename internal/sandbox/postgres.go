package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/internal/cluster"
)

// Postgres is a private PostgreSQL server: its own cluster (data directory)
// and port, user postgres with trust authentication on loopback.
type Postgres struct {
	Port int

	dir   string   // instance directory: data/, the socket, postgres.log
	runAs []string // runuser prefix when the tests run as root
	proc  *cluster.Proc
}

var (
	templateOnce sync.Once
	templateDir  string
	templateErr  error
)

// pgBinDir is the newest /usr/lib/postgresql/*/bin holding initdb.
func pgBinDir(tb testing.TB) string {
	tb.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	tb.Fatal("sandbox: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql; scripts/test.sh installs them)")
	return ""
}

// postgresUser returns the runuser prefix and the owner to give PostgreSQL's
// directories: PostgreSQL refuses to run as root.
func postgresUser(tb testing.TB) (runAs []string, uid, gid int) {
	tb.Helper()
	if os.Getuid() != 0 {
		return nil, -1, -1
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		tb.Fatalf("sandbox: running as root needs a postgres user (apt-get install postgresql creates it): %v", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return []string{"runuser", "-u", "postgres", "--"}, uid, gid
}

// template runs initdb once per test process; every instance starts from a
// copy of it (initdb costs seconds on a loaded machine, a copy does not).
func template(tb testing.TB) string {
	tb.Helper()
	if state.dir == "" {
		tb.Fatal("sandbox: call sandbox.Main from TestMain")
	}
	bin := pgBinDir(tb)
	runAs, uid, gid := postgresUser(tb)
	templateOnce.Do(func() {
		dir := filepath.Join(state.dir, "pg-template")
		if templateErr = os.Mkdir(dir, 0o700); templateErr != nil {
			return
		}
		if uid >= 0 {
			if templateErr = os.Chown(dir, uid, gid); templateErr != nil {
				return
			}
		}
		args := append(append([]string{}, runAs...), filepath.Join(bin, "initdb"),
			"-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
		if out, err := cluster.Run(3*time.Minute, nil, args[0], args[1:]...); err != nil {
			templateErr = fmt.Errorf("sandbox: initdb: %w\n%s", err, out)
			return
		}
		templateDir = filepath.Join(dir, "data")
	})
	if templateErr != nil {
		tb.Fatal(templateErr)
	}
	return templateDir
}

// StartPostgres starts a private PostgreSQL on a free loopback port and
// waits until it accepts connections. The test's cleanup kills it and
// removes its data.
func StartPostgres(tb testing.TB) *Postgres {
	tb.Helper()
	tmpl := template(tb)
	runAs, uid, gid := postgresUser(tb)
	dir, err := os.MkdirTemp(state.dir, "pg-")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Postgres{Port: cluster.FreePorts(tb, 1, false)[0], dir: dir, runAs: runAs}
	tb.Cleanup(func() { p.Kill(); os.RemoveAll(dir) })
	if out, err := exec.Command("cp", "-a", tmpl, filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		tb.Fatalf("sandbox: copy the template cluster: %v\n%s", err, out)
	}
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	p.Start(tb)
	return p
}

// Start (re)starts the server on its data directory and port, after Kill,
// and waits until it accepts connections (crash recovery included).
func (p *Postgres) Start(tb testing.TB) {
	tb.Helper()
	args := append(append([]string{}, p.runAs...), filepath.Join(pgBinDir(tb), "postgres"),
		"-D", filepath.Join(p.dir, "data"), "-p", strconv.Itoa(p.Port), "-k", p.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100",
		"-c", "shared_buffers=32MB", "-c", "log_min_messages=warning")
	p.proc = cluster.Start(tb, p.dir, "postgres", nil, args[0], args[1:]...)
	err := poll(2*time.Minute, 50*time.Millisecond, func() error {
		if p.proc.Exited() {
			b, _ := os.ReadFile(p.proc.Log)
			return fmt.Errorf("postgres exited: %s: %w", lastLines(b, 20), errStop)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, p.DSN("postgres"))
		if err != nil {
			return err
		}
		return c.Close(ctx)
	})
	if err != nil {
		tb.Fatalf("sandbox: postgres on port %d not up: %v", p.Port, err)
	}
}

// Kill SIGKILLs the postmaster and every backend at once, as a crash would.
// The data directory stays; Start recovers it.
func (p *Postgres) Kill() {
	if p.proc != nil {
		p.proc.Kill()
	}
	// A postmaster that left its process group would outlive that kill.
	lock := filepath.Join(p.dir, "data", "postmaster.pid")
	b, err := os.ReadFile(lock)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 1 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	// Its parent (runuser) died with it, and where nothing reaps orphans
	// (a container's init may not) it stays a zombie, which the next
	// postmaster takes for a live one holding the lock files. A zombie holds
	// no shared memory and no socket: its lock files are stale.
	_ = poll(10*time.Second, 10*time.Millisecond, func() error {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil // gone
		}
		if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
			os.Remove(filepath.Join(p.dir, fmt.Sprintf(".s.PGSQL.%d.lock", p.Port)))
			return os.Remove(lock)
		}
		return errors.New("postmaster still exiting")
	})
}

// Addr is host:port of the server.
func (p *Postgres) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.Port) }

// DSN is the superuser DSN of database db.
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&connect_timeout=5", p.Addr(), db)
}

// CreateDatabase creates database name and returns its DSN.
func (p *Postgres) CreateDatabase(tb testing.TB, name string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatal(err)
	}
	return p.DSN(name)
}

// lastLines is the end of a log, for an error message.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
