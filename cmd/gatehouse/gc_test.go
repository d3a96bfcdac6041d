package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestGCPercent: serve collects garbage at GOGC=400 unless GOGC is set, and
// then leaves the operator's setting alone.
func TestGCPercent(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)

	t.Setenv("GOGC", "150") // restored after the test, like the unset below
	setGCPercent()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, the GC target became %d; want it left alone", got)
	}
	os.Unsetenv("GOGC")
	setGCPercent()
	if got := debug.SetGCPercent(100); got != gcPercent || gcPercent != 400 {
		t.Errorf("without GOGC, the GC target is %d; want 400", got)
	}
}
