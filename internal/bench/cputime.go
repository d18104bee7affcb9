package bench

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = time.Second / 100

// procCPU is a process's user and system CPU so far, from /proc (0 where there is
// none). Unlike a rate, CPU per request or per row hardly depends on what else the
// machine runs.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	own, _, _ := statCPU(string(b))
	return own
}

// statCPU reads a /proc/<pid>/stat line: the process's user and system CPU (fields
// 14 and 15) and its children's that it waited for (16 and 17). The command before
// them, in parentheses, may hold spaces.
func statCPU(stat string) (own, reaped time.Duration, ok bool) {
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:]) // from field 3, state, on
	if len(f) < 15 {
		return 0, 0, false
	}
	var ticks [4]int64
	for k := range ticks {
		ticks[k], _ = strconv.ParseInt(f[11+k], 10, 64)
	}
	return time.Duration(ticks[0]+ticks[1]) * clockTick, time.Duration(ticks[2]+ticks[3]) * clockTick, true
}

// cpuTime is this process's user and system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuOf is the user and system CPU a finished process used.
func cpuOf(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// postgresCPU is the CPU the PostgreSQL processes of this machine have used so far:
// each one's own, and the backends that have exited, which the postmaster reaped, so
// that the difference of two readings counts the backends that came and went in
// between. ok is false when no postgres process is visible (a server elsewhere or in
// another container).
func postgresCPU() (total time.Duration, ok bool) {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil || !strings.Contains(string(b), "(postgres)") {
			continue
		}
		if own, reaped, sok := statCPU(string(b)); sok {
			total += own + reaped
			ok = true
		}
	}
	return total, ok
}
