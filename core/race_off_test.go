//go:build !race

package core

// raceOn reports whether the race detector is on: it makes a single
// goroutine's work many times slower and finds nothing in it.
const raceOn = false
