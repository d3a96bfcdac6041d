package backup

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// Attempts bounds the tries of one write that Redis did not answer in time (a
// busy machine, a failover); Backoff is the first pause between them, doubled
// each time.
const (
	Attempts = 5
	Backoff  = 100 * time.Millisecond
)

// Retry runs f until it succeeds, fails with another kind than Unavailable,
// or has run Attempts times. A create cut short by a timeout has rolled back
// or left what a crash would (doctor repairs it); its retry then finds the
// name free, or taken by that leftover. Bulk writers (import, gatehouse
// seed) use it so that one slow answer does not fail one item of thousands.
func Retry(ctx context.Context, f func() error) error {
	wait := Backoff
	for i := 1; ; i++ {
		err := f()
		if err == nil || core.KindOf(err) != core.Unavailable || i == Attempts {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}
