package redisstore

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// timerNotRun is a context whose deadline has passed but whose timer had not
// run yet when it was first asked: Err said nil then, as when a socket
// deadline fires first.
type timerNotRun struct {
	context.Context
	asked bool
}

func (c *timerNotRun) Err() error {
	if !c.asked {
		c.asked = true
		return nil
	}
	return c.Context.Err()
}

// TestTimedOutBeforeTheTimer: a call cut by the socket deadline of its bound
// reads as cut by the bound ("redis did not answer within …"), even when the
// context's timer has not run yet.
func TestTimedOutBeforeTheTimer(t *testing.T) {
	ctx, cancel := bounded(context.Background(), time.Millisecond)
	defer cancel()
	<-ctx.Done()
	err := timedOut(&timerNotRun{Context: ctx}, os.ErrDeadlineExceeded)
	if te, ok := errors.AsType[*timeoutError](err); !ok || te.d != time.Millisecond {
		t.Errorf("timedOut = %v, want the bound of 1ms named", err)
	}
	if err := timedOut(context.Background(), os.ErrDeadlineExceeded); err != os.ErrDeadlineExceeded {
		t.Errorf("timedOut without a bound = %v, want the error as it is", err)
	}
}
