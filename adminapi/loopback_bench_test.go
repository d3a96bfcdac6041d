package adminapi

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/internal/asynclog"
	"github.com/gatehouse/gatehouse/internal/bench"
)

// BenchmarkVerifyLoopback measures a /verify cache hit as a gateway sees it:
// over keep-alive loopback connections to a net/http server, the public API
// built as serve builds it (the access log written asynchronously), beside
// the bare ceiling of make bench (a fixed JSON answer) in the same process.
// Besides ns/op (the wall time of an answer, from 4 connections) it reports
// cpu-µs/op: the process's CPU time (server and client) per answer, which
// depends much less on what else the machine runs. The difference between
// the two sub-benchmarks is what Gatehouse's hit path costs over net/http's
// own work; `-cpuprofile` shows where.
func BenchmarkVerifyLoopback(b *testing.B) {
	e := benchEnv(b, core.VerifyCacheOptions{Size: core.DefaultVerifyCacheSize, TTL: core.MaxVerifyCacheTTL})
	f := newVerifyFixture(e)
	aw := asynclog.New(io.Discard, asynclog.Options{})
	b.Cleanup(func() { aw.Close() })
	public := New(e.svc, Options{Log: zerolog.New(io.Discard).Level(zerolog.InfoLevel), AccessLog: aw}).Public()
	for _, c := range []struct {
		name string
		h    http.Handler
		req  string
	}{
		{"bare", bench.BareCeiling(), "GET /verify HTTP/1.1\r\nHost: bench\r\n\r\n"},
		{"key-auth-hit", public, "GET /verify HTTP/1.1\r\nHost: bench\r\nx-api-key: " + f.keyID + ":" + f.keySecret + "\r\n\r\n"},
	} {
		b.Run(c.name, func(b *testing.B) { loopback(b, c.h, c.req) })
	}
}

// loopback serves h on a loopback port and sends req on 4 keep-alive
// connections, each its next request once the last answer is read.
func loopback(b *testing.B, h http.Handler, req string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	var size int
	b.SetParallelism(2) // 2 × GOMAXPROCS connections
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		rd := bufio.NewReaderSize(c, 4096)
		for pb.Next() {
			if _, err := io.WriteString(c, req); err != nil {
				b.Error(err)
				return
			}
			n, err := readAnswer(rd)
			if err != nil {
				b.Error(err)
				return
			}
			size = n
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(size), "answer-bytes")
}

// readAnswer reads one 200 answer with a Content-Length and returns its size.
func readAnswer(rd *bufio.Reader) (int, error) {
	size, length := 0, -1
	for first := true; ; first = false {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		size += len(line)
		if first && !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
			return 0, &net.AddrError{Err: "answer " + string(line)}
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, err
			}
		}
		if len(line) == 2 {
			break
		}
	}
	if length < 0 {
		return 0, &net.AddrError{Err: "no Content-Length"}
	}
	_, err := rd.Discard(length)
	return size + length, err
}

// processCPU returns the process's CPU time so far, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
