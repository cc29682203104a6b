package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuUse is where the CPU went during the timed phase, per successful
// request: the generator itself (getrusage), the server (/proc/<pid>/stat,
// with --server-pid) and the whole machine (/proc/stat: PostgreSQL, Redis
// and anything else running count there too).
type cpuUse struct {
	GeneratorSeconds float64 `json:"generator_cpu_seconds"`
	GeneratorUsPerOK float64 `json:"generator_cpu_us_per_ok"`
	ServerSeconds    float64 `json:"server_cpu_seconds,omitempty"`
	ServerUsPerOK    float64 `json:"server_cpu_us_per_ok,omitempty"`
	MachineSeconds   float64 `json:"machine_cpu_seconds,omitempty"`
	MachineUsPerOK   float64 `json:"machine_cpu_us_per_ok,omitempty"`
	MachineBusy      float64 `json:"machine_busy_fraction,omitempty"` // of all cores
}

// userHZ is the unit of /proc times: USER_HZ is 100 on every Linux port Go
// supports.
const userHZ = 100

// cpuSample is one reading of the three clocks.
type cpuSample struct {
	self, server, busy, total time.Duration
	serverOK, machineOK       bool
}

func sampleCPU(serverPID int) cpuSample {
	var s cpuSample
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if serverPID > 0 {
		if d, err := processCPU(serverPID); err == nil {
			s.server, s.serverOK = d, true
		}
	}
	if busy, total, err := machineCPU(); err == nil {
		s.busy, s.total, s.machineOK = busy, total, true
	}
	return s
}

// cpuBetween is the use between two samples, per ok request.
func cpuBetween(a, b cpuSample, ok int64) *cpuUse {
	per := func(d time.Duration) float64 {
		if ok == 0 {
			return 0
		}
		return float64(d.Microseconds()) / float64(ok)
	}
	u := &cpuUse{GeneratorSeconds: (b.self - a.self).Seconds(), GeneratorUsPerOK: per(b.self - a.self)}
	if a.serverOK && b.serverOK {
		u.ServerSeconds, u.ServerUsPerOK = (b.server - a.server).Seconds(), per(b.server-a.server)
	}
	if a.machineOK && b.machineOK && b.total > a.total {
		u.MachineSeconds, u.MachineUsPerOK = (b.busy - a.busy).Seconds(), per(b.busy-a.busy)
		u.MachineBusy = float64(b.busy-a.busy) / float64(b.total-a.total)
	}
	return u
}

// processCPU is utime + stime of pid.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// After the name: state is field 3, utime 14, stime 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// machineCPU is the busy and total time of all cores from /proc/stat.
func machineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line")
	}
	var ticks, idle int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if i >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		ticks += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(ticks-idle) * time.Second / userHZ, time.Duration(ticks) * time.Second / userHZ, nil
}

// loadAverage is the machine's 1-minute load average (/proc/loadavg), or -1
// when it cannot be read: on a shared machine it says how much of the
// figure's noise came from elsewhere.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
