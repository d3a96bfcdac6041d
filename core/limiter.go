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
	// would fit (wait): 0 when they fit and were counted; > 0 when they do
	// not, and nothing was counted for that key. over is, for each, how long
	// until one more event fits after this call (what Allow with n = 0 would
	// answer then): > 0 once the key is over its rate, the count included.
	// The keys are the ones Allow and ReadAuth's Throttles use. Invalid for a
	// rate that is not positive or n < 1; Unavailable when the store cannot
	// answer.
	AllowEach(ctx context.Context, ts []Throttle, n int) (wait, over []time.Duration, err error)
	// Remaining reports how many events key may still count now at rate,
	// 0 to rate.Count, counting nothing. Unavailable when the store cannot
	// answer.
	Remaining(ctx context.Context, key string, rate Rate) (int, error)
}

// CallBudget is what CountCall reports: the rate a client's calls are held
// to and how many it may still make now.
type CallBudget struct {
	Limit     int
	Remaining int
}

// CountCall counts one call of a dialect's client (key names it: the
// dialect and its admin key) against Policy.DialectCalls and returns the
// budget left; RateLimited, with RetryAfter and the budget, beyond it.
// Without a limiter nothing is counted and the whole budget remains.
func (s *Service) CountCall(ctx context.Context, key string) (CallBudget, error) {
	const op = "core.CountCall"
	rate := s.policy.DialectCalls
	b := CallBudget{Limit: rate.Count, Remaining: rate.Count}
	if s.limiter == nil || rate.Count <= 0 || rate.Per <= 0 {
		return b, nil
	}
	key = "calls:" + key
	ok, retry, err := s.limiter.Allow(ctx, key, rate, 1)
	if err != nil {
		return b, err
	}
	if !ok {
		b.Remaining = 0
		return b, &Error{Kind: RateLimited, Op: op, Msg: "Too Many Attempts.", RetryAfter: max(retry, time.Second)}
	}
	if b.Remaining, err = s.limiter.Remaining(ctx, key, rate); err != nil {
		return b, err
	}
	return b, nil
}
