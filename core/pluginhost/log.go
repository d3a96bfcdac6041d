package pluginhost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/plugins/sdk"
)

// hclogger is an hclog.Logger writing into a zerolog.Logger, the host's log
// tagged with the plugin's name. go-plugin logs through it: its own lines, and
// each JSON line the plugin writes on stderr, which go-plugin parses by
// hclog's keys (@level, @message, @timestamp) and re-logs at its level.
type hclogger struct {
	log  zerolog.Logger
	name string
	args []any // With's pairs
}

var _ hclog.Logger = (*hclogger)(nil)

// newHCLogger returns an hclog.Logger writing into log.
func newHCLogger(log zerolog.Logger) *hclogger { return &hclogger{log: log} }

// reservedKeys are the fields a plugin's line cannot set: zerolog's own and
// the plugin tag. "timestamp" is the plugin's clock, which go-plugin adds to
// every line it re-logs; the host's time is enough.
func reservedKey(k string) bool {
	return k == "plugin" || k == zerolog.LevelFieldName || k == zerolog.MessageFieldName ||
		k == zerolog.TimestampFieldName
}

// Log writes msg at level with args' key-value pairs.
func (l *hclogger) Log(level hclog.Level, msg string, args ...any) {
	e := l.log.WithLevel(zerologLevel(level))
	if !e.Enabled() {
		return
	}
	addPairs(e, l.args)
	addPairs(e, args)
	e.Msg(msg)
}

// addPairs adds hclog's alternating keys and values to e.
func addPairs(e *zerolog.Event, args []any) {
	for i := 0; i < len(args); i += 2 {
		key, ok := args[i].(string)
		if !ok {
			key = fmt.Sprint(args[i])
		}
		if i+1 == len(args) {
			e.Interface("EXTRA_VALUE_AT_END", args[i])
			break
		}
		if key == "timestamp" {
			continue
		}
		if reservedKey(key) {
			key = "arg_" + key
		}
		switch v := args[i+1].(type) {
		case string:
			e.Str(key, v)
		case error:
			e.Str(key, v.Error())
		case hclog.Format:
			e.Str(key, fmt.Sprintf(fmt.Sprint(v[0]), v[1:]...))
		case fmt.Stringer:
			e.Stringer(key, v)
		default:
			e.Interface(key, v)
		}
	}
}

func zerologLevel(l hclog.Level) zerolog.Level {
	switch l {
	case hclog.Trace:
		return zerolog.TraceLevel
	case hclog.Debug:
		return zerolog.DebugLevel
	case hclog.Warn:
		return zerolog.WarnLevel
	case hclog.Error:
		return zerolog.ErrorLevel
	default: // Info, NoLevel, and whatever else
		return zerolog.InfoLevel
	}
}

// Trace logs at trace level.
func (l *hclogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }

// Debug logs at debug level.
func (l *hclogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }

// Info logs at info level.
func (l *hclogger) Info(msg string, args ...any) { l.Log(hclog.Info, msg, args...) }

// Warn logs at warn level.
func (l *hclogger) Warn(msg string, args ...any) { l.Log(hclog.Warn, msg, args...) }

// Error logs at error level.
func (l *hclogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *hclogger) enabled(level hclog.Level) bool { return level >= l.GetLevel() }

// IsTrace reports whether trace lines are written.
func (l *hclogger) IsTrace() bool { return l.enabled(hclog.Trace) }

// IsDebug reports whether debug lines are written.
func (l *hclogger) IsDebug() bool { return l.enabled(hclog.Debug) }

// IsInfo reports whether info lines are written.
func (l *hclogger) IsInfo() bool { return l.enabled(hclog.Info) }

// IsWarn reports whether warnings are written.
func (l *hclogger) IsWarn() bool { return l.enabled(hclog.Warn) }

// IsError reports whether errors are written.
func (l *hclogger) IsError() bool { return l.enabled(hclog.Error) }

// ImpliedArgs returns With's pairs.
func (l *hclogger) ImpliedArgs() []any { return slices.Clone(l.args) }

// With returns a logger adding args to every line.
func (l *hclogger) With(args ...any) hclog.Logger {
	c := *l
	c.args = append(slices.Clone(l.args), args...)
	return &c
}

// Name returns the logger's name. go-plugin names the logger of a plugin's
// stderr after its executable; the name is not logged, the plugin tag is.
func (l *hclogger) Name() string { return l.name }

// Named returns a logger whose name has name appended.
func (l *hclogger) Named(name string) hclog.Logger {
	c := *l
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

// ResetNamed returns a logger named name.
func (l *hclogger) ResetNamed(name string) hclog.Logger {
	c := *l
	c.name = name
	return &c
}

// SetLevel does nothing: the host's logger decides.
func (l *hclogger) SetLevel(hclog.Level) {}

// GetLevel returns the host logger's level in hclog's terms.
func (l *hclogger) GetLevel() hclog.Level {
	lvl := max(l.log.GetLevel(), zerolog.GlobalLevel())
	switch {
	case lvl <= zerolog.TraceLevel:
		return hclog.Trace
	case lvl == zerolog.DebugLevel:
		return hclog.Debug
	case lvl == zerolog.InfoLevel:
		return hclog.Info
	case lvl == zerolog.WarnLevel:
		return hclog.Warn
	case lvl <= zerolog.PanicLevel:
		return hclog.Error
	default: // NoLevel, Disabled
		return hclog.Off
	}
}

// StandardLogger returns a log.Logger writing into l.
func (l *hclogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer logging each write as one line, at
// opts.ForceLevel or info.
func (l *hclogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return writerFunc(func(p []byte) (int, error) {
		l.Log(level, string(bytes.TrimRight(p, "\n")))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// pluginLog is the Log host service of one plugin: its lines land in the
// host's log, tagged with the plugin's name.
type pluginLog struct{ log zerolog.Logger }

var _ sdk.HostLogger = pluginLog{}

// Log writes a plugin's line. An unknown level is info, and fatal or panic
// are error: a plugin cannot stop the host. Fields that would collide with
// the host's own (level, message, time, plugin) get an "arg_" prefix.
func (l pluginLog) Log(_ context.Context, level, msg string, fields map[string]string) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	switch {
	case err != nil || lvl == zerolog.NoLevel || lvl == zerolog.Disabled:
		lvl = zerolog.InfoLevel
	case lvl > zerolog.ErrorLevel:
		lvl = zerolog.ErrorLevel
	}
	e := l.log.WithLevel(lvl)
	if !e.Enabled() {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		key := k
		if reservedKey(k) {
			key = "arg_" + k
		}
		e.Str(key, fields[k])
	}
	e.Msg(msg)
}
