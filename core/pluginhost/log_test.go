package pluginhost

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"
)

func TestPluginLog(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	l := pluginLog{zerolog.New(&logs).With().Str("plugin", "p").Logger()}
	l.Log(t.Context(), "WARN", "w", map[string]string{"b": "2", "a": "1", "level": "x"})
	l.Log(t.Context(), "fatal", "f", nil)
	l.Log(t.Context(), "nonsense", "n", nil)
	want := []map[string]any{
		{"level": "warn", "plugin": "p", "a": "1", "b": "2", "arg_level": "x", "message": "w"},
		{"level": "error", "plugin": "p", "message": "f"},
		{"level": "info", "plugin": "p", "message": "n"},
	}
	if diff := cmp.Diff(want, logs.lines(t)); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestHCLogger(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	var l hclog.Logger = newHCLogger(zerolog.New(&logs).Level(zerolog.InfoLevel).With().Str("plugin", "p").Logger())
	if l.GetLevel() != hclog.Info || l.IsDebug() || !l.IsInfo() || !l.IsError() {
		t.Errorf("level %v", l.GetLevel())
	}
	l = l.Named("stderr").With("k", "v")
	if l.Name() != "stderr" {
		t.Errorf("Name = %q", l.Name())
	}
	l.Debug("hidden")
	l.Warn("w", "err", errors.New("boom"), "n", 3, "timestamp", "2020", "plugin", "x", "odd")
	l.Info("f", "msg", hclog.Fmt("%d-%s", 1, "a"))
	l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}).Print("std line")
	want := []map[string]any{
		{"level": "warn", "plugin": "p", "k": "v", "err": "boom", "n": 3.0, "arg_plugin": "x", "EXTRA_VALUE_AT_END": "odd", "message": "w"},
		{"level": "info", "plugin": "p", "k": "v", "msg": "1-a", "message": "f"},
		{"level": "error", "plugin": "p", "k": "v", "message": "std line"},
	}
	if diff := cmp.Diff(want, logs.lines(t)); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if off := newHCLogger(zerolog.Nop()); off.GetLevel() != hclog.Off || off.IsError() {
		t.Errorf("a disabled logger: %v", off.GetLevel())
	}
	if strings.Contains(logs.b.String(), "hidden") {
		t.Error("a debug line was written at info")
	}
}
