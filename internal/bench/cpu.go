package bench

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ, 100 on every
// Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// ProcessCPU returns a probe of the CPU time (user and system, every thread,
// the exited ones included) each of pids has used so far, read from
// /proc/PID/stat. A process that cannot be read (not Linux, gone) reads 0.
//
// The CPU a row costs per answer does not depend on how fast the shared
// machine lets it run, as its rate does: comparing it between a ceiling and
// Gatehouse tells what Gatehouse's own work costs, even under load.
func ProcessCPU(pids ...int) func() []time.Duration {
	return func() []time.Duration {
		out := make([]time.Duration, len(pids))
		for i, pid := range pids {
			out[i] = processCPU(pid)
		}
		return out
	}
}

func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ... : comm may hold spaces and parentheses, so
	// count the fields from the last ')'; utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * clockTick
}
