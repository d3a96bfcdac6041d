package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/bench"
)

// result is a measured window of rate answers a second and the given p99.
func result(rate float64, p99 time.Duration) bench.Result {
	return bench.Result{Requests: int(rate), Elapsed: time.Second, P50: p99 / 4, P99: p99}
}

// TestSameRateRows: with -same-rate, the bare ceiling and the hit are loaded
// in an open loop at that fraction of the hit's rate in the same round, and
// the table holds each hit's p99 to the bare row it was measured against: the
// closed-loop hit to the bare ceiling, the same-rate hit to the same-rate bare
// row, each with its own verdict.
func TestSameRateRows(t *testing.T) {
	o := options{conns: 32, warmup: time.Second, duration: 3 * time.Second, rounds: 1, sameRate: 0.6}
	rows := buildRows(o, seeded{key: "id:secret"}, "bare:1", "hget:1", "public:1", "uncached:1", "admin:1", "", nil)
	byName := map[string]*row{}
	for _, r := range rows {
		byName[r.name] = r
	}
	bare, hit := byName["bare ceiling (fixed JSON)"], byName[hitRow]
	sameBare, sameHit := byName["bare ceiling at 0.6 × the hit's rate"], byName["/verify key-auth hit at 0.6 × the hit's rate"]
	if bare == nil || hit == nil || sameBare == nil || sameHit == nil {
		t.Fatalf("rows %v: want the bare, hit and two same-rate rows", byName)
	}
	hit.results = []bench.Result{result(20000, 6*time.Millisecond)}
	for _, r := range []*row{sameBare, sameHit} {
		l := r.load(0)
		if l.Rate != 12000 || l.Addr == "" {
			t.Errorf("%s: rate %g at %q, want 12000 (0.6 × the hit's 20000)", r.name, l.Rate, l.Addr)
		}
	}
	if hit.load(0).Rate != 0 {
		t.Error("the hit's own row is not a closed loop")
	}

	bare.results = []bench.Result{result(25000, 5*time.Millisecond)}
	sameBare.results = []bench.Result{result(12000, 2*time.Millisecond)}
	sameHit.results = []bench.Result{result(12000, 3*time.Millisecond)}
	f, err := os.Create(filepath.Join(t.TempDir(), "table"))
	if err != nil {
		t.Fatal(err)
	}
	printTable(f, o, []*row{bare, hit, sameBare, sameHit})
	f.Close()
	out, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	var p99 []string
	for l := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(l, "p99 against") {
			p99 = append(p99, strings.Join(strings.Fields(l), " "))
		}
	}
	want := []string{
		"| p99 against the bare ceiling's p99 | | | | bare p99 5.00ms | 1.20 | ≤ 1.2 ok |",
		"| p99 against the bare ceiling's p99 | | | | bare p99 2.00ms | 1.50 | ≤ 1.2 MISS |",
	}
	if strings.Join(p99, "\n") != strings.Join(want, "\n") {
		t.Errorf("p99 lines:\n%s\nwant:\n%s", strings.Join(p99, "\n"), strings.Join(want, "\n"))
	}
}
