//go:build !race

package main

// raceOn reports whether the test binary was built with the race detector.
const raceOn = false
