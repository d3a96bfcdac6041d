package core

import (
	"context"
	"fmt"
	"time"
)

// Rate is a limit of Count events per Per.
type Rate struct {
	Count int
	Per   time.Duration
}

func (r Rate) String() string { return fmt.Sprintf("%d per %s", r.Count, r.Per) }

// Limiter counts events per key against a rate (Redis-backed, shared by
// every instance). redisstore implements it with GCRA.
type Limiter interface {
	// Allow counts n events against key and reports whether they were within
	// rate; n = 0 counts nothing and reports whether one more event would be
	// allowed now (false, with retryAfter, once key has used its rate). When not
	// allowed, retryAfter says when to try again. Unavailable when the store
	// cannot answer.
	Allow(ctx context.Context, key string, rate Rate, n int) (allowed bool, retryAfter time.Duration, err error)
	// AllowEach counts n events (n >= 1) against each throttle's key at its
	// rate, all in one round trip, and returns for each how long until they
	// would fit: 0 when they fit and were counted; > 0 when they do not, and
	// nothing was counted for that key. The keys are the ones Allow and
	// ReadAuth's Throttles use. Invalid for a rate that is not positive or
	// n < 1; Unavailable when the store cannot answer.
	AllowEach(ctx context.Context, ts []Throttle, n int) (retryAfter []time.Duration, err error)
}
