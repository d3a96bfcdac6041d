package bench

import (
	"strings"
	"testing"
	"time"
)

// TestGCTrace: the cycles of a process's gctrace lines, among its own log
// lines, are read with their phases, and a summary counts only the cycles
// that began in the measured windows.
func TestGCTrace(t *testing.T) {
	log := `{"level":"info","message":"store ready"}
gc 1 @0.012s 2%: 0.015+1.2+0.004 ms clock, 0.030+0.10/0.90/0.50+0.008 ms cpu, 4->4->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 2 @1.500s 0%: 1.5+12+0.5 ms clock, 3.0+2.0/6.0/1.0+1.0 ms cpu, 54->55->11 MB, 57 MB goal, 0 MB stacks, 0 MB globals, 2 P
{"level":"info","message":"request"}
gc 3 @2.000s 0%: 0.5+8+0.1 ms clock, 1.0+1.0/4.0/0+0.2 ms cpu, 53->53->10 MB, 55 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 4 @2.400s 0%: 6.0+20+0.2 ms clock, 12+3.0/9.0/0+0.4 ms cpu, 53->54->12 MB, 56 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)
gc 5 @9.000s 0%: 0.1+5+0.1 ms clock, 0.2+0/1.0/0+0.2 ms cpu, 50->50->10 MB, 55 MB goal, 0 MB stacks, 0 MB globals, 2 P
`
	cycles := ParseGCTrace(strings.NewReader(log))
	if len(cycles) != 5 {
		t.Fatalf("read %d cycles, want 5: %+v", len(cycles), cycles)
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	want := GCCycle{At: 1500 * time.Millisecond, STW: ms(2.0), Mark: ms(12), Assist: ms(2.0), Workers: ms(6.0), LiveBytes: 11 << 20}
	if cycles[1] != want {
		t.Errorf("cycle 2 = %+v, want %+v", cycles[1], want)
	}

	started := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return started.Add(time.Duration(s * float64(time.Second))) }
	s := SummariseGC(cycles, started, []Window{{at(1), at(2.2)}, {at(2.3), at(3.3)}})
	if s.Cycles != 3 || s.Window != 2200*time.Millisecond {
		t.Fatalf("summary of %d cycles in %s, want 3 in 2.2s (gc 2, 3, 4)", s.Cycles, s.Window)
	}
	if s.Mark != ms(12) || s.STW != ms(2.0) || s.MaxSTW != ms(6.2) || s.MarkCPU != ms(8.0) || s.Live != 11<<20 {
		t.Errorf("summary %+v: want the medians mark 12ms, STW 2ms, mark CPU 8ms, live 11 MB and a longest pause of 6.2ms", s)
	}
	if got := s.PerSecond(); got < 1.36 || got > 1.37 {
		t.Errorf("%.3f collections a second, want 3/2.2", got)
	}
	if none := SummariseGC(cycles, started, nil); none.Cycles != 0 || none.PerSecond() != 0 || none.MarkShare() != 0 {
		t.Errorf("no windows: %+v", none)
	}
}
