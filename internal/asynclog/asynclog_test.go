package asynclog

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink records what the Writer writes, each write apart.
type sink struct {
	mu     sync.Mutex
	writes [][]byte
	gate   chan struct{} // when set, each write waits for it
}

func (s *sink) Write(p []byte) (int, error) {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, bytes.Clone(p))
	return len(p), nil
}

func (s *sink) text() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(bytes.Join(s.writes, nil)), len(s.writes)
}

// TestLinesInOrderInBatches: lines arrive whole and in order, many a write,
// and Close writes what is left.
func TestLinesInOrderInBatches(t *testing.T) {
	var out sink
	w := New(&out, Options{Interval: time.Hour}) // only Close flushes
	var want strings.Builder
	line := make([]byte, 0, 64)
	for i := range 1000 {
		line = fmt.Appendf(line[:0], "line %d\n", i)
		want.Write(line)
		if n, err := w.Write(line); n != len(line) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		clear(line) // the Writer must have copied it
	}
	if got, _ := out.text(); got != "" {
		t.Fatalf("written before the interval or Close: %q", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, writes := out.text()
	if got != want.String() {
		t.Fatalf("after Close: %d bytes, want the 1000 lines in order (%d bytes)", len(got), want.Len())
	}
	if writes != 1 {
		t.Errorf("%d writes for 1000 lines, want one batch", writes)
	}
	// After Close, lines are written at once.
	w.Write([]byte("late\n"))
	if got, _ := out.text(); !strings.HasSuffix(got, "line 999\nlate\n") {
		t.Errorf("a line written after Close: output ends %q", got[len(got)-20:])
	}
	if w.Dropped() != 0 {
		t.Errorf("Dropped = %d, want 0", w.Dropped())
	}
}

// TestFlushedWithinInterval: a line is written without Close, within the
// interval.
func TestFlushedWithinInterval(t *testing.T) {
	var out sink
	w := New(&out, Options{Interval: 10 * time.Millisecond})
	defer w.Close()
	w.Write([]byte("one\n"))
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got, _ := out.text(); got == "one\n" {
			return
		}
	}
	got, _ := out.text()
	t.Fatalf("after 5 s: %q, want the line", got)
}

// TestConcurrentWriters: lines written from many goroutines all arrive whole,
// each writer's in its order.
func TestConcurrentWriters(t *testing.T) {
	var out sink
	w := New(&out, Options{Size: 4096, Interval: time.Millisecond})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				w.Write(fmt.Appendf(nil, "%d %d\n", g, i))
			}
		})
	}
	wg.Wait()
	w.Close()
	got, _ := out.text()
	next := map[string]int{}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	for _, l := range lines {
		var g string
		var i int
		if _, err := fmt.Sscanf(l, "%s %d", &g, &i); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if i < next[g] {
			t.Fatalf("writer %s: line %d after %d", g, i, next[g])
		}
		next[g] = i + 1
	}
	if uint64(len(lines))+w.Dropped() != 8*200 {
		t.Errorf("%d lines written and %d dropped, want 1600 in all", len(lines), w.Dropped())
	}
}

// TestFullBufferDropsAndCounts: when out is stuck and the buffer full, Write
// drops the line, counts it and returns at once.
func TestFullBufferDropsAndCounts(t *testing.T) {
	out := sink{gate: make(chan struct{})}
	w := New(&out, Options{Size: 100, Interval: time.Millisecond})
	line := []byte(strings.Repeat("x", 39) + "\n") // 40 bytes: two fit
	w.Write(append(slices.Clone(line), line...))   // one write: the loop takes both at once
	// The loop takes those two and is stuck writing them; two more fill the
	// buffer again, and the rest must be dropped without waiting.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		w.mu.Lock()
		taken := len(w.buf) == 0
		w.mu.Unlock()
		if taken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the loop did not take the batch in 5 s")
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5 {
			w.Write(line)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked on a full buffer")
	}
	if got := w.Dropped(); got != 3 {
		t.Errorf("Dropped = %d, want 3 (5 written, 2 fit)", got)
	}
	close(out.gate) // unstick: everything else is written
	w.Close()
	if got, _ := out.text(); got != strings.Repeat(string(line), 4) {
		t.Errorf("written %d bytes, want the 4 lines that fit", len(got))
	}
}
