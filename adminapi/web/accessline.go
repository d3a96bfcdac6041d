package web

import (
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// accessLine is one request's access-log line: what Site.access writes.
type accessLine struct {
	level                   zerolog.Level // info, or warn for a 5xx
	reqID, listener, method string
	route                   string
	status, size            int
	dur                     time.Duration
	client                  string
	adminKey, adminKeyID    string // the admin key that authorised it, if any
	at                      time.Time
}

// log writes the line through l, a zerolog logger (with a timestamp hook):
// the definition of the line's fields, their order and their encoding.
func (a *accessLine) log(l *zerolog.Logger) {
	ev := l.WithLevel(a.level)
	if ev == nil { // the level is off: build nothing
		return
	}
	ev = ev.Str("req_id", a.reqID).Str("listener", a.listener).Str("method", a.method).Str("route", a.route).Int("status", a.status).
		Int("size", a.size).Dur("dur", a.dur).Str("client", a.client)
	if a.adminKey != "" {
		ev = ev.Str("admin_key", a.adminKey).Str("admin_key_id", a.adminKeyID)
	}
	ev.Msg("request")
}

// lineWriter writes access lines to an io.Writer (one line a Write, as
// zerolog writes them) encoded by hand: the bytes accessLine.log writes
// through a zerolog logger over the same writer under serve's settings
// (zerolog's default field names, durations in milliseconds, RFC 3339
// timestamps in UTC with nanoseconds), without zerolog's event, its field
// calls and its time formatting, which cost a /verify hit about a tenth of
// its own work. A line with a string that JSON would escape (an admin key's
// name may hold anything) goes through zerolog itself; TestAccessLineBytes
// holds the two to the same bytes.
type lineWriter struct {
	out    io.Writer
	level  zerolog.Level // the lowest level written
	slow   zerolog.Logger
	bufs   sync.Pool                  // *[]byte
	second atomic.Pointer[timePrefix] // the timestamp's text up to its seconds
}

// timePrefix is `"time":"2006-01-02T15:04:05` for one second (UTC).
type timePrefix struct {
	sec int64
	b   []byte
}

func newLineWriter(out io.Writer, level zerolog.Level) *lineWriter {
	w := &lineWriter{out: out, level: level, slow: zerolog.New(out).Level(level).With().Timestamp().Logger()}
	w.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	return w
}

// write writes a's line, at a.at.
func (w *lineWriter) write(a *accessLine) {
	if a.level < w.level || a.level < zerolog.GlobalLevel() {
		return
	}
	if !plain(a.reqID) || !plain(a.listener) || !plain(a.method) || !plain(a.route) || !plain(a.client) || !plain(a.adminKey) || !plain(a.adminKeyID) {
		a.log(&w.slow)
		return
	}
	bp := w.bufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"level":"`...)
	b = append(b, a.level.String()...)
	b = append(b, `","req_id":"`...)
	b = append(b, a.reqID...)
	b = append(b, `","listener":"`...)
	b = append(b, a.listener...)
	b = append(b, `","method":"`...)
	b = append(b, a.method...)
	b = append(b, `","route":"`...)
	b = append(b, a.route...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(a.status), 10)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(a.size), 10)
	b = append(b, `,"dur":`...)
	b = appendMillis(b, a.dur)
	b = append(b, `,"client":"`...)
	b = append(b, a.client...)
	b = append(b, '"')
	if a.adminKey != "" {
		b = append(b, `,"admin_key":"`...)
		b = append(b, a.adminKey...)
		b = append(b, `","admin_key_id":"`...)
		b = append(b, a.adminKeyID...)
		b = append(b, '"')
	}
	b = w.appendTime(b, a.at)
	b = append(b, `,"message":"request"}`+"\n"...)
	_, _ = w.out.Write(b) // zerolog reports a failed write on stderr; the asynchronous writer never fails
	*bp = b
	w.bufs.Put(bp)
}

// plain reports whether s is written in JSON as it is: printable ASCII
// without a quote or a backslash.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendMillis appends d in milliseconds as zerolog writes a duration (a
// float64 of d/time.Millisecond in its shortest form): for a positive d
// below 10^15 ns (11 days), the exact decimal of d/10^6 is that shortest
// form, its at most 15 significant digits naming one float64 only.
func appendMillis(b []byte, d time.Duration) []byte {
	if d <= 0 || d >= 1e15 {
		return strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', -1, 64)
	}
	b = strconv.AppendInt(b, int64(d/time.Millisecond), 10)
	return appendFraction(b, int64(d%time.Millisecond), 6)
}

// appendFraction appends v, a fraction of width decimal digits (at most 9),
// as '.' and its digits without trailing zeros; nothing when v is 0.
func appendFraction(b []byte, v int64, width int) []byte {
	if v == 0 {
		return b
	}
	var digits [10]byte // '.' and up to nine digits
	digits[0] = '.'
	n := width + 1
	for i := width; i >= 1; i-- {
		digits[i] = byte('0' + v%10)
		v /= 10
	}
	for digits[n-1] == '0' {
		n--
	}
	return append(b, digits[:n]...)
}

// appendTime appends `,"time":"…"` for t as time.RFC3339Nano writes it in
// UTC: the text up to the seconds made once a second, then the fraction.
func (w *lineWriter) appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	sec := t.Unix()
	p := w.second.Load()
	if p == nil || p.sec != sec {
		p = &timePrefix{sec: sec, b: t.Truncate(time.Second).AppendFormat([]byte(`,"time":"`), "2006-01-02T15:04:05")}
		w.second.Store(p)
	}
	b = append(b, p.b...)
	b = appendFraction(b, int64(t.Nanosecond()), 9)
	return append(b, `Z"`...)
}
