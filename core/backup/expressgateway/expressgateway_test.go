package expressgateway

import (
	"testing"
	"time"
)

// TestJSDate: the dates Express Gateway stores (String(new Date()) in any
// zone, or ISO strings) read as the same instant; anything else as the epoch,
// so a second import of a record compares equal.
func TestJSDate(t *testing.T) {
	want := time.Date(2026, 12, 6, 18, 35, 19, 0, time.UTC)
	for _, s := range []string{
		"Sun Dec 06 2026 18:35:19 GMT+0000 (Coordinated Universal Time)",
		"Sun Dec 06 2026 19:35:19 GMT+0100 (Central European Standard Time)",
		"Sun Dec 06 2026 18:35:19 GMT+0000",
		"2026-12-06T18:35:19Z",
	} {
		if got := jsDate(s); !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("jsDate(%q) = %v, want %v", s, got, want)
		}
	}
	for _, s := range []string{"", "yesterday"} {
		if got := jsDate(s); !got.Equal(time.Unix(0, 0)) {
			t.Errorf("jsDate(%q) = %v, want the epoch", s, got)
		}
	}
}
