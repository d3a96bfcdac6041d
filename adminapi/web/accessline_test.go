package web

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestAccessLineBytes: the access lines written by hand (Options.AccessLog)
// are byte for byte what zerolog writes for the same line under serve's
// settings (RFC 3339 timestamps in UTC with nanoseconds), whatever the
// duration, the instant, the level and the strings (those JSON escapes go
// through zerolog itself); and the lines' level is Log's.
func TestAccessLineBytes(t *testing.T) {
	format, stamp := zerolog.TimeFieldFormat, zerolog.TimestampFunc
	t.Cleanup(func() { zerolog.TimeFieldFormat, zerolog.TimestampFunc = format, stamp })
	zerolog.TimeFieldFormat = time.RFC3339Nano

	rnd := rand.New(rand.NewPCG(1, 2))
	durs := []time.Duration{0, 1, 10, 999, 1000, 123456, time.Millisecond, 1500 * time.Microsecond, 41873, 2*time.Second + 7, time.Hour, -5, 20 * 24 * time.Hour}
	for range 2000 {
		durs = append(durs, time.Duration(rnd.Int64N(int64(10*time.Second))), time.Duration(rnd.Int64N(1e6)), time.Duration(rnd.Int64N(1e3))*time.Microsecond)
	}
	base := time.Date(2026, 12, 7, 3, 21, 10, 0, time.UTC)
	ats := []time.Time{base, base.Add(100 * time.Millisecond), base.Add(123456789), base.Add(time.Second + 1), base.In(time.FixedZone("X", 3600)).Add(5e8)}
	lines := []accessLine{
		{reqID: "d4p2k3s5hb8c73bq1ln0", listener: "public", method: "GET", route: "/verify", status: 200, client: "127.0.0.1"},
		{reqID: "d4p2k3s5hb8c73bq1ln0", listener: "admin", method: "DELETE", route: "/users/:id", status: 503, size: 187, client: "::1", adminKey: "ops", adminKeyID: "k1"},
		{reqID: "d4p2k3s5hb8c73bq1ln0", listener: "admin", method: "GET", route: "/users", status: 200, size: 35000, client: "198.51.100.9", adminKey: `say "hi" \ é`, adminKeyID: "k2"},
		{reqID: "x", listener: "public", method: "GET", route: "unmatched", status: 404, size: 120, client: "bad\x01host"},
	}
	for i := range 3000 {
		a := lines[i%len(lines)]
		a.level = zerolog.InfoLevel
		if a.status >= 500 {
			a.level = zerolog.WarnLevel
		}
		a.dur = durs[i%len(durs)]
		a.at = ats[i%len(ats)].Add(time.Duration(rnd.Int64N(2e9)))
		if i%7 == 0 {
			a.at = a.at.Truncate(time.Millisecond)
		}
		var fast, slow bytes.Buffer
		zerolog.TimestampFunc = func() time.Time { return a.at.UTC() } // for the lines zerolog writes
		newLineWriter(&fast, zerolog.InfoLevel).write(&a)
		zl := zerolog.New(&slow).Level(zerolog.InfoLevel).With().Timestamp().Logger()
		a.log(&zl)
		if !bytes.Equal(fast.Bytes(), slow.Bytes()) {
			t.Fatalf("line %+v:\nby hand %s\nzerolog %s", a, fast.Bytes(), slow.Bytes())
		}
	}

	var out bytes.Buffer
	w := newLineWriter(&out, zerolog.WarnLevel)
	w.write(&accessLine{level: zerolog.InfoLevel, reqID: "a", listener: "public", method: "GET", route: "/verify", status: 200, at: base})
	if out.Len() != 0 {
		t.Errorf("an info line written at level warn: %s", out.Bytes())
	}
	w.write(&accessLine{level: zerolog.WarnLevel, reqID: "a", listener: "public", method: "GET", route: "/verify", status: 503, at: base})
	if !bytes.HasPrefix(out.Bytes(), []byte(`{"level":"warn","req_id":"a",`)) {
		t.Errorf("the 503's line at level warn: %q", out.Bytes())
	}
}

// BenchmarkAccessLine: one /verify hit's access line, through zerolog under
// serve's settings (what a Site without Options.AccessLog writes) and by
// hand (with it).
func BenchmarkAccessLine(b *testing.B) {
	format, stamp := zerolog.TimeFieldFormat, zerolog.TimestampFunc
	b.Cleanup(func() { zerolog.TimeFieldFormat, zerolog.TimestampFunc = format, stamp })
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.TimestampFunc = func() time.Time { return time.Now().UTC() }
	a := accessLine{level: zerolog.InfoLevel, reqID: "d4p2k3s5hb8c73bq1ln0", listener: "public", method: "GET", route: "/verify",
		status: 200, dur: 41873, client: "127.0.0.1", at: time.Now()}
	b.Run("zerolog", func(b *testing.B) {
		zl := zerolog.New(io.Discard).Level(zerolog.InfoLevel).With().Timestamp().Logger()
		b.ReportAllocs()
		for b.Loop() {
			a.log(&zl)
		}
	})
	b.Run("by-hand", func(b *testing.B) {
		w := newLineWriter(io.Discard, zerolog.InfoLevel)
		b.ReportAllocs()
		for b.Loop() {
			a.at = time.Now()
			w.write(&a)
		}
	})
}
