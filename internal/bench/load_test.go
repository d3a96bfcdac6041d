package bench

import (
	"bufio"
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestReadResponse: the generator reads each body framing a Go server or
// Express Gateway uses, so a run never miscounts answers on a kept-alive
// connection.
func TestReadResponse(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" +
		"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n" +
		"HTTP/1.1 204 No Content\r\n\r\n" +
		"HTTP/1.1 201 Created\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
	rd := bufio.NewReader(strings.NewReader(raw))
	for _, want := range []struct {
		status int
		keep   bool
	}{{200, true}, {404, true}, {204, true}, {201, false}} {
		status, keep, err := readResponse(rd)
		if err != nil || status != want.status || keep != want.keep {
			t.Fatalf("got %d keep=%v err=%v, want %d keep=%v", status, keep, err, want.status, want.keep)
		}
	}
	if _, _, err := readResponse(bufio.NewReader(strings.NewReader("SMTP ready\r\n"))); err == nil {
		t.Error("a line that is no HTTP status line was accepted")
	}
}

// TestRun: a load counts the answers with the expected status as requests and
// the others as errors, on kept-alive connections, with ordered percentiles.
func TestRun(t *testing.T) {
	big := strings.Repeat("x", 10<<10) // sent chunked
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(big))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	res, err := Run(ctx, Load{Addr: addr, Conns: 4, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, Request: Get("x", "/"), Status: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.Rate() <= 0 {
		t.Fatalf("good answers: %+v, want requests and no errors", res)
	}
	if res.P50 <= 0 || res.P99 < res.P50 {
		t.Errorf("percentiles p50 %s, p99 %s", res.P50, res.P99)
	}

	res, err = Run(ctx, Load{Addr: addr, Conns: 2, Duration: 200 * time.Millisecond, Request: Get("x", "/missing"), Status: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 0 || res.Errors == 0 || !strings.Contains(res.FirstError, "404") {
		t.Errorf("404 answers: %+v, want errors only, the first named", res)
	}

	post := Post("x", "/", func(n uint64) []byte { return []byte(`{"n":` + string(rune('0'+n%10)) + `}`) })
	if got := string(post(nil, 3)); !strings.HasPrefix(got, "POST / HTTP/1.1\r\nHost: x\r\n") || !strings.HasSuffix(got, "Content-Length: 7\r\n\r\n{\"n\":3}") {
		t.Errorf("POST request %q", got)
	}
}

// TestRunAtRate: an open-loop load sends no more than its rate, and a server
// that cannot keep up shows the queue it built in the latencies, where a
// closed loop would show only its service time. Both checks are bounds a
// slow machine cannot break: it only sends fewer requests, later.
func TestRunAtRate(t *testing.T) {
	const service = 20 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(service)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// 200 a second for 100 ms of warm-up and 500 ms: about 120 due in all (a
	// closed loop on this server answers thousands).
	res, err := Run(ctx, Load{Addr: addr, Conns: 4, Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Request: Get("x", "/"), Status: 200, Rate: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Requests > 140 || res.Errors != 0 {
		t.Errorf("at 200/s: %d answers in 500 ms (%d errors), want 1 to 140", res.Requests, res.Errors)
	}

	// One connection, a 20 ms service and 100 due a second: the n-th answer
	// comes at least n×20 ms after the start, while it was due at n×10 ms, so
	// the requests of the measured window waited at least 100 ms.
	res, err = Run(ctx, Load{Addr: addr, Conns: 1, Warmup: 200 * time.Millisecond, Duration: 300 * time.Millisecond, Request: Get("x", "/slow"), Status: 200, Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.P50 < 5*service {
		t.Errorf("behind its rate: %d answers, p50 %s: want the queue (≥ %s) counted", res.Requests, res.P50, 5*service)
	}
}

// TestPercentile: nearest-rank percentiles.
func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if p50, p99 := percentile(d, 0.5), percentile(d, 0.99); p50 != 50*time.Millisecond || p99 != 99*time.Millisecond {
		t.Errorf("p50 %s, p99 %s: want 50ms, 99ms", p50, p99)
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("empty: want 0")
	}
}

// TestSummariseProfile: the parts of a profile are read from pprof's rows,
// inlined ones included, a part with no function is left out, and the outer
// handler's own time is its share less the router's.
func TestSummariseProfile(t *testing.T) {
	top := `Showing nodes accounting for 1.90s, 100% of 1.90s total
      flat  flat%   sum%        cum   cum%
     0.01s  0.53%  0.53%      1.60s 84.21%  net/http.(*conn).serve
         0     0%  0.53%      1.22s 64.21%  main.child.(*Server).Public.(*Listener).Handler.(*Site).wrap.func3
         0     0%  0.53%      1.16s 60.00%  github.com/julienschmidt/httprouter.(*Router).ServeHTTP
         0     0%  0.53%      1.16s 59.05%  github.com/gatehouse/gatehouse/adminapi.(*Server).verify
         0     0% 21.05%      0.35s 18.42%  encoding/json.Unmarshal (inline)
         0     0% 38.42%      0.05s  2.63%  github.com/gatehouse/gatehouse/adminapi/web.(*Site).access
`
	got := SummariseProfile(top)
	want := map[string]float64{
		profileParts[0].name: 84.21, profileParts[2].name: 64.21, profileParts[3].name: 60.00, profileParts[4].name: 2.63,
		profileParts[5].name: 59.05, profileParts[9].name: 18.42,
		"    the outer handler's own time (outer − routing and handler)": 64.21 - 60.00,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %d parts", got, len(want))
	}
	for _, s := range got {
		if w, ok := want[s.Name]; !ok || math.Abs(w-s.Percent) > 1e-9 {
			t.Errorf("%s: %.2f%%, want %.2f%%", s.Name, s.Percent, want[s.Name])
		}
	}
}

// TestProcessCPU: the CPU time of a process grows while it works, and a
// process that is not there reads 0, so a row's CPU column is never made up.
func TestProcessCPU(t *testing.T) {
	probe := ProcessCPU(os.Getpid(), -1)
	before := probe()
	x := 0
	for deadline := time.Now().Add(10 * time.Second); probe()[0] < before[0]+5*clockTick; {
		for i := range 1_000_000 {
			x += i
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CPU time counted after 10 s of work (%d)", x)
		}
	}
	if got := probe()[1]; got != 0 {
		t.Errorf("a missing process read %s, want 0", got)
	}
}
