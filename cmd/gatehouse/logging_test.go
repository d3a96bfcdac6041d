package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewLogger(t *testing.T) {
	tests := []struct {
		name, level, format string
		wantJSON            bool
		wantDebug           bool
	}{
		{name: "auto off a terminal is JSON", level: "info", format: "auto", wantJSON: true},
		{name: "json", level: "debug", format: "json", wantJSON: true, wantDebug: true},
		{name: "pretty forced", level: "info", format: "pretty", wantJSON: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			cfg := DefaultConfig()
			cfg.Log = LogConfig{Level: tt.level, Format: tt.format}
			log := newLogger(cfg, &buf)
			log.Debug().Msg("debug line")
			log.Info().Str("k", "v").Msg("info line")
			out := buf.String()
			if got := strings.Contains(out, "debug line"); got != tt.wantDebug {
				t.Errorf("debug line logged = %v, want %v:\n%s", got, tt.wantDebug, out)
			}
			last := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
			var rec map[string]any
			isJSON := json.Unmarshal([]byte(last), &rec) == nil
			if isJSON != tt.wantJSON {
				t.Fatalf("JSON = %v, want %v: %q", isJSON, tt.wantJSON, last)
			}
			if isJSON && (rec["time"] == nil || rec["level"] != "info" || rec["message"] != "info line") {
				t.Errorf("record %v lacks time, level or message", rec)
			}
			if !strings.Contains(last, "info line") {
				t.Errorf("last line %q lacks the message", last)
			}
		})
	}
}
