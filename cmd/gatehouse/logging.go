package main

import (
	"io"
	stdlog "log"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/internal/asynclog"
)

// setLogGlobals sets zerolog's process-wide formats once, from main: RFC 3339
// timestamps in UTC with sub-second precision.
func setLogGlobals() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.TimestampFunc = func() time.Time { return time.Now().UTC() }
}

// newLogger returns the base logger writing to w: JSON lines, or zerolog's
// console format when cfg.Log.Format is "pretty", or "auto" and w is a terminal.
// The level is cfg.Log.Level (Validate has checked it; info when unknown). Every
// record carries a timestamp.
func newLogger(cfg Config, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(cfg.Log.Level)
	if err != nil || cfg.Log.Level == "" {
		level = zerolog.InfoLevel
	}
	if prettyLogs(cfg.Log.Format, w) {
		w = zerolog.ConsoleWriter{
			Out:        w,
			NoColor:    os.Getenv("NO_COLOR") != "" || !isTerminal(w),
			TimeFormat: "15:04:05.000",
		}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// newAccessLog returns the writer of the access lines (one per request):
// JSON lines at cfg's level, like newLogger's, written to w through a
// buffered, asynchronous writer, so that a request does not wait for a write
// syscall: lines go out in order, in batches, at least every 100 ms and when
// the writer is closed (after the listeners shut down); when the buffer is
// full a line is dropped and counted rather than making a request wait. Other
// lines (failures, warnings) stay synchronous on the base logger. When the
// format is pretty (a terminal), it returns nil and the base logger writes
// the access lines too: the console writer formats one line a write.
func newAccessLog(cfg Config, w io.Writer) *asynclog.Writer {
	if prettyLogs(cfg.Log.Format, w) {
		return nil
	}
	return asynclog.New(w, asynclog.Options{})
}

// prettyLogs decides the log format: "json" and "pretty" force theirs, "auto"
// (the default) is pretty on a terminal only.
func prettyLogs(format string, w io.Writer) bool {
	switch format {
	case "pretty":
		return true
	case "json":
		return false
	default:
		return isTerminal(w)
	}
}

// isTerminal reports whether w is a terminal (a Cygwin one included).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	fd := f.Fd()
	return isatty.IsTerminal(fd) || isatty.IsCygwinTerminal(fd)
}

// stdLogger adapts log for net/http's ErrorLog: its lines become warn records.
func stdLogger(log zerolog.Logger) *stdlog.Logger {
	return stdlog.New(warnWriter{log.With().Str("component", "http").Logger()}, "", 0)
}

type warnWriter struct{ log zerolog.Logger }

func (w warnWriter) Write(p []byte) (int, error) {
	w.log.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
