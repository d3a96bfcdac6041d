package bench

import (
	"bufio"
	"io"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// GCCycle is one garbage collection of a Go process, as GODEBUG=gctrace=1
// prints it on the process's stderr.
type GCCycle struct {
	At        time.Duration // since the process started
	STW       time.Duration // the two stop-the-world phases together (wall)
	Mark      time.Duration // the concurrent mark phase (wall)
	Assist    time.Duration // mark work done by allocating goroutines (CPU)
	Workers   time.Duration // mark work of the background workers, dedicated and fractional (CPU; idle workers left out)
	LiveBytes int64         // the heap marked live (the third of "A->B->C MB")
}

// gcLine matches a gctrace line: "gc 12 @3.456s 1%: 0.02+1.5+0.003 ms clock,
// 0.05+0.2/1.3/0.4+0.007 ms cpu, 40->41->9 MB, 45 MB goal, ...".
var gcLine = regexp.MustCompile(`^gc \d+ @([\d.]+)s \d+%: ([\d.]+)\+([\d.]+)\+([\d.]+) ms clock, [\d.]+\+([\d.]+)/([\d.]+)/[\d.]+\+[\d.]+ ms cpu, \d+->\d+->(\d+) MB`)

// ParseGCTrace returns the cycles of the gctrace lines in r; other lines (a
// server's own log) are skipped.
func ParseGCTrace(r io.Reader) []GCCycle {
	var out []GCCycle
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := gcLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f := make([]float64, len(m))
		for i := 1; i < len(m); i++ {
			f[i], _ = strconv.ParseFloat(m[i], 64)
		}
		ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
		out = append(out, GCCycle{
			At:  time.Duration(f[1] * float64(time.Second)),
			STW: ms(f[2] + f[4]), Mark: ms(f[3]),
			Assist: ms(f[5]), Workers: ms(f[6]),
			LiveBytes: int64(f[7]) << 20,
		})
	}
	return out
}

// GCSummary is what a process's collections did in some windows of time.
type GCSummary struct {
	Cycles  int
	Window  time.Duration // the windows' total length
	Mark    time.Duration // median mark phase (wall)
	STW     time.Duration // median stop-the-world time
	MaxSTW  time.Duration
	MarkCPU time.Duration // median assist + background mark CPU per cycle
	Live    int64         // median live heap after marking
}

// PerSecond returns the collections per second of the windows.
func (s GCSummary) PerSecond() float64 {
	if s.Window <= 0 {
		return 0
	}
	return float64(s.Cycles) / s.Window.Seconds()
}

// MarkShare returns the share of the windows' time a mark phase ran.
func (s GCSummary) MarkShare() float64 {
	if s.Window <= 0 {
		return 0
	}
	return s.PerSecond() * s.Mark.Seconds()
}

// Window is an interval of wall-clock time.
type Window struct{ From, To time.Time }

// SummariseGC summarises the cycles of a process started at started that
// began within the windows.
func SummariseGC(cycles []GCCycle, started time.Time, windows []Window) GCSummary {
	var s GCSummary
	var mark, stw, cpu, live []float64
	for _, w := range windows {
		s.Window += w.To.Sub(w.From)
	}
	for _, c := range cycles {
		at := started.Add(c.At)
		if !slices.ContainsFunc(windows, func(w Window) bool { return !at.Before(w.From) && at.Before(w.To) }) {
			continue
		}
		s.Cycles++
		mark = append(mark, float64(c.Mark))
		stw = append(stw, float64(c.STW))
		cpu = append(cpu, float64(c.Assist+c.Workers))
		live = append(live, float64(c.LiveBytes))
		s.MaxSTW = max(s.MaxSTW, c.STW)
	}
	s.Mark, s.STW, s.MarkCPU = time.Duration(median(mark)), time.Duration(median(stw)), time.Duration(median(cpu))
	s.Live = int64(median(live))
	return s
}

// median returns the middle of v (sorted in place); 0 when empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}
