package postgres

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuMeter measures the CPU time a benchmark costs this process and the
// PostgreSQL backends serving the store (read from /proc, so only when the
// server runs on this machine): on a shared machine the elapsed time depends
// on the load, the CPU time much less.
type cpuMeter struct {
	s        *Store
	self, pg time.Duration
}

func startCPU(b *testing.B, s *Store) *cpuMeter {
	b.Helper()
	m := &cpuMeter{s: s}
	m.self, m.pg = selfCPU(), backendCPU(b, s)
	return m
}

// report adds go-cpu-ms/op and pg-cpu-ms/op (or per unit, when unit > 1 it
// reports µs per unit under the unit's name).
func (m *cpuMeter) report(b *testing.B, units float64, unit string) {
	b.Helper()
	self, pg := selfCPU()-m.self, backendCPU(b, m.s)-m.pg
	if unit == "" {
		n := float64(b.N)
		b.ReportMetric(float64(self.Microseconds())/1000/n, "go-cpu-ms/op")
		b.ReportMetric(float64(pg.Microseconds())/1000/n, "pg-cpu-ms/op")
		return
	}
	b.ReportMetric(float64(self.Microseconds())/units, "go-cpu-µs/"+unit)
	b.ReportMetric(float64(pg.Microseconds())/units, "pg-cpu-µs/"+unit)
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU sums the CPU time of every client backend connected to the
// store's database (0 for those /proc does not show).
func backendCPU(b *testing.B, s *Store) time.Duration {
	b.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND backend_type = 'client backend'`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var total time.Duration
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		total += procCPU(pid)
	}
	return total
}

// procCPU returns utime+stime of process pid from /proc/pid/stat.
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / 100 // USER_HZ
}
