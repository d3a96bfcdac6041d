// Package asynclog is a buffered, asynchronous writer for high-volume log
// lines (the access log): a request appends its line to a bounded buffer and
// goes on, and one goroutine writes the buffer out in order, many lines a
// write, at least every Interval and at Close. When the buffer is full a line
// is dropped and counted rather than making the request wait.
package asynclog

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultSize     = 1 << 20 // 1 MiB: about 4,000 access lines
	DefaultInterval = 100 * time.Millisecond
)

// Options sizes a Writer.
type Options struct {
	// Size bounds the bytes waiting to be written; 0 means DefaultSize. A line
	// that does not fit is dropped and counted.
	Size int
	// Interval is the longest a line waits before it is written; 0 means
	// DefaultInterval. The buffer is also written as soon as it is half full.
	Interval time.Duration
}

// Writer writes whole lines (each Write call is one line, as zerolog makes
// them) to an io.Writer in the order they were written, from one goroutine.
// It is safe for concurrent use. Close it to write what is left.
type Writer struct {
	out      io.Writer
	size     int
	interval time.Duration

	mu     sync.Mutex
	buf    []byte
	closed bool

	spare   []byte // the loop's: the buffer it wrote last, reused
	dropped atomic.Uint64
	kick    chan struct{} // the buffer is half full
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New returns a Writer to out, and starts its goroutine.
func New(out io.Writer, opt Options) *Writer {
	w := &Writer{out: out, size: opt.Size, interval: opt.Interval,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if w.size <= 0 {
		w.size = DefaultSize
	}
	if w.interval <= 0 {
		w.interval = DefaultInterval
	}
	go w.loop()
	return w
}

// Write queues a copy of p. It never blocks on out: when p does not fit in
// the buffer it is dropped (and counted, see Dropped). After Close, p is
// written to out at once. It always reports success.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done // after the last batch, in order
		return w.out.Write(p)
	}
	if len(w.buf)+len(p) > w.size {
		w.mu.Unlock()
		w.dropped.Add(1)
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	half := len(w.buf) >= w.size/2
	w.mu.Unlock()
	if half {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Dropped returns how many lines were dropped because the buffer was full.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Close writes what is buffered and stops the goroutine; later lines are
// written synchronously. It returns once everything queued is written.
func (w *Writer) Close() error {
	w.once.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.stop)
	})
	<-w.done
	return nil
}

func (w *Writer) loop() {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.kick:
		case <-w.stop:
			w.flush()
			return
		}
		w.flush()
	}
}

// flush writes the buffer out in one write, swapping in the spare one so that
// lines keep arriving meanwhile. A write error loses the batch: there is no
// better place to report it than the log it failed to reach.
func (w *Writer) flush() {
	w.mu.Lock()
	b := w.buf
	w.buf = w.spare[:0]
	w.mu.Unlock()
	if len(b) > 0 {
		_, _ = w.out.Write(b)
	}
	w.spare = b[:0]
}
