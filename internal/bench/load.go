// Package bench is the load benchmark behind `make bench`: a closed-loop
// HTTP/1.1 load generator, the two ceiling servers Gatehouse is compared with
// (a bare JSON answer and one Redis HGETALL per request) and the table the run
// prints. Nothing in the product imports it.
//
// The load generator speaks just enough HTTP/1.1 over raw keep-alive
// connections (a prebuilt request, a status line, Content-Length or chunked
// bodies) to cost the shared CPU as little as possible: on a 2-core machine
// the generator and the server compete, and a heavy client would hide the
// server's own speed.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Request builds the n-th request of a run (n counts from 0 across every
// connection), appending its bytes to buf.
type Request func(buf []byte, n uint64) []byte

// Get returns a Request for GET path with the given header lines ("Name: value").
func Get(host, path string, headers ...string) Request {
	raw := []byte(requestHead("GET", host, path, headers) + "\r\n")
	return func(buf []byte, _ uint64) []byte { return append(buf, raw...) }
}

// Post returns a Request for POST path with a JSON body made by body(n).
func Post(host, path string, body func(n uint64) []byte, headers ...string) Request {
	head := requestHead("POST", host, path, append(headers, "Content-Type: application/json"))
	return func(buf []byte, n uint64) []byte {
		b := body(n)
		buf = append(buf, head...)
		buf = append(buf, "Content-Length: "...)
		buf = strconv.AppendInt(buf, int64(len(b)), 10)
		buf = append(buf, "\r\n\r\n"...)
		return append(buf, b...)
	}
}

func requestHead(method, host, path string, headers []string) string {
	s := method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\n"
	for _, h := range headers {
		s += h + "\r\n"
	}
	return s
}

// Load is one measurement: Conns connections, each sending its next request
// as soon as the previous answer is read (a closed loop), or when it is due
// (Rate), for Warmup (not counted) then Duration.
type Load struct {
	Addr     string // host:port
	Conns    int
	Warmup   time.Duration
	Duration time.Duration
	Request  Request
	Status   int // the expected status; any other counts as an error
	// Rate, when above 0, makes the load an open loop: the n-th request is
	// due n/Rate seconds after the load began, and the first connection free
	// once it is due sends it. A request sent late because every connection
	// was busy counts its latency from when it was due, so a server that
	// falls behind shows the queue it built (no coordinated omission); one
	// sent on time counts from its sending, so the generator's own sleep
	// does not.
	Rate float64
	// CPU, when set, reads the CPU time used so far by the processes the
	// load runs on (ProcessCPU); Run reads it as the measured window starts
	// and ends.
	CPU func() []time.Duration
}

// Result is what a Load measured.
type Result struct {
	Requests int           // answers with the expected status, in Duration
	Errors   int           // other statuses and broken connections, in Duration
	Start    time.Time     // when the measured window began
	Elapsed  time.Duration // the measured window
	P50, P99 time.Duration // latency of the measured requests
	// FirstError describes the first error seen (a status line or a network
	// error), for the run's notes.
	FirstError string
	// CPU is the CPU time each of Load.CPU's processes used in the measured
	// window.
	CPU []time.Duration
}

// Rate returns the successful requests per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Run runs l until its warm-up and duration have passed or ctx ends.
func Run(ctx context.Context, l Load) (Result, error) {
	if l.Conns < 1 || l.Duration <= 0 || l.Request == nil {
		return Result{}, errors.New("bench: a load needs connections, a duration and a request")
	}
	var (
		seq       atomic.Uint64
		measuring atomic.Bool
		stop      atomic.Bool
		wg        sync.WaitGroup
		firstErr  sync.Once
		errText   string
	)
	workers := make([]worker, l.Conns)
	began := time.Now()
	for i := range workers {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			w.run(ctx, l, began, &seq, &measuring, &stop, func(s string) { firstErr.Do(func() { errText = s }) })
		}(&workers[i])
	}
	ok := sleep(ctx, l.Warmup)
	var cpu0 []time.Duration
	if l.CPU != nil {
		cpu0 = l.CPU()
	}
	start := time.Now()
	measuring.Store(true)
	ok = ok && sleep(ctx, l.Duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	var cpu []time.Duration
	if l.CPU != nil {
		cpu = l.CPU()
		for i := range min(len(cpu), len(cpu0)) {
			cpu[i] -= cpu0[i]
		}
	}
	stop.Store(true)
	wg.Wait()
	if !ok {
		return Result{}, ctx.Err()
	}
	res := Result{Start: start, Elapsed: elapsed, FirstError: errText, CPU: cpu}
	var lat []time.Duration
	for i := range workers {
		res.Requests += workers[i].ok
		res.Errors += workers[i].errs
		lat = append(lat, workers[i].lat...)
	}
	res.P50, res.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return res, nil
}

// percentile returns the q-quantile of d (sorted in place); 0 when empty.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(q*float64(len(d))+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// worker is one connection's loop and its counts.
type worker struct {
	ok, errs int
	lat      []time.Duration
}

// ioTimeout bounds each request and answer, so a stalled server cannot hang a run.
const ioTimeout = 10 * time.Second

func (w *worker) run(ctx context.Context, l Load, began time.Time, seq *atomic.Uint64, measuring, stop *atomic.Bool, report func(string)) {
	var (
		conn net.Conn
		rd   *bufio.Reader
		buf  []byte
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	fail := func(s string) {
		if measuring.Load() {
			w.errs++
			report(s)
		}
		if conn != nil {
			conn.Close()
			conn = nil
		}
	}
	d := net.Dialer{Timeout: ioTimeout}
	for !stop.Load() && ctx.Err() == nil {
		if conn == nil {
			c, err := d.DialContext(ctx, "tcp", l.Addr)
			if err != nil {
				fail(err.Error())
				time.Sleep(10 * time.Millisecond) // a refused dial must not spin
				continue
			}
			conn, rd = c, bufio.NewReaderSize(c, 16<<10)
		}
		n := seq.Add(1) - 1
		buf = l.Request(buf[:0], n)
		t0 := time.Now()
		if l.Rate > 0 {
			due := began.Add(time.Duration(float64(n) / l.Rate * float64(time.Second)))
			if wait := due.Sub(t0); wait <= 0 {
				t0 = due
			} else if !sleep(ctx, wait) {
				return
			} else {
				t0 = time.Now()
			}
		}
		conn.SetDeadline(t0.Add(ioTimeout))
		if _, err := conn.Write(buf); err != nil {
			fail(err.Error())
			continue
		}
		status, keep, err := readResponse(rd)
		if err != nil {
			fail(err.Error())
			continue
		}
		dt := time.Since(t0)
		// An answer counts when it arrives in the window, as wrk counts: a
		// slow endpoint (a login) still shows its rate in a short window.
		if measuring.Load() {
			if status == l.Status {
				w.ok++
				w.lat = append(w.lat, dt)
			} else {
				w.errs++
				report("status " + strconv.Itoa(status))
			}
		}
		if !keep {
			conn.Close()
			conn = nil
		}
	}
}

// sleep waits d, or less when ctx ends first; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// readResponse reads one HTTP/1.1 answer to a request that was not HEAD,
// discarding its body, and returns its status and whether the connection
// stays open.
func readResponse(rd *bufio.Reader) (status int, keepAlive bool, err error) {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	keepAlive = true
	length, chunked := int64(-1), false
	for {
		line, err = rd.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		h := bytes.TrimRight(line, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil {
				return 0, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keepAlive = !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		err = discardChunked(rd)
	case length >= 0:
		_, err = rd.Discard(int(length))
	case status == 204 || status == 304:
	default: // no length: the body runs to the end of the connection
		_, err = io.Copy(io.Discard, rd)
		keepAlive = false
	}
	return status, keepAlive, err
}

// discardChunked reads a chunked body to its end, trailers included.
func discardChunked(rd *bufio.Reader) error {
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			return err
		}
		sz, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(sz), 16, 64)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", sz)
		}
		if n == 0 {
			for { // trailers, then the blank line
				line, err = rd.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := rd.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}
