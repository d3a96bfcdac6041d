package core

import (
	"context"
	"strings"
	"sync"
	"time"
)

// ThrottleFeed is implemented by a ChangeFeed that also tells every process
// which of /verify's failure throttles are over their rate, so that a
// verification need not read them from the store.
type ThrottleFeed interface {
	// Throttled tells the other processes following the feed that the
	// Limiter key is over its rate for retryAfter: their sinks that are
	// ThrottleSinks hear it. Best effort, like the feed's own messages.
	Throttled(ctx context.Context, key string, retryAfter time.Duration)
}

// ThrottleSink is a ChangeSink that also hears, from a ThrottleFeed, of the
// throttles other processes found over their rate.
type ThrottleSink interface {
	ChangeSink
	Throttled(key string, retryAfter time.Duration)
}

// verifyThrottlePrefix begins the Limiter keys of /verify's failure
// throttles. They are counted only by refuse, which tells the process' set
// and the feed when one goes over its rate: the set is only trusted for them.
const verifyThrottlePrefix = "verify:"

// maxOverRate bounds the throttles the set holds; beyond it the set starts
// again, trusted only after its grace.
const maxOverRate = 100_000

// overRate is this process' set of /verify's failure throttles that are over
// their rate, with the time each opens again: filled by refuse when this
// process counted the failure that used a rate up, and by the ThrottleFeed for
// the failures counted elsewhere. While the feed is followed, a verification
// takes its throttles' state from the set instead of reading them from the
// store. A throttle is over its rate at most one interval of its rate (Per /
// Count) after the last failure counted against it (a failure refused counts
// nothing), so after the feed is (re)subscribed the set is trusted only once
// that long has passed: until then a throttle may be over through failures
// counted while this process heard nothing.
type overRate struct {
	grace time.Duration

	mu      sync.Mutex
	live    bool
	trusted time.Time // the set answers from then on (while live)
	until   map[string]time.Time
}

func newOverRate(grace time.Duration) *overRate {
	return &overRate{grace: grace, until: make(map[string]time.Time)}
}

// overRateGrace is the longest a /verify throttle of p stays over its rate
// after its last counted failure, plus a second for the clocks.
func overRateGrace(p Policy) time.Duration {
	g := time.Duration(0)
	for _, r := range []Rate{p.VerifyFailures, p.VerifyFailuresPerAddress} {
		if r.Count > 0 && r.Per > 0 {
			g = max(g, r.Per/time.Duration(r.Count))
		}
	}
	return g + time.Second
}

// Changed is a ChangeSink's: records do not affect the throttles.
func (o *overRate) Changed(string) {}

// Following makes the set usable (ok), once its grace has passed, or not.
// What it holds is kept: each entry is a fact until it expires.
func (o *overRate) Following(ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.live = ok
	o.trusted = time.Now().Add(o.grace)
}

// Throttled records that key is over its rate for retryAfter, from the feed.
func (o *overRate) Throttled(key string, retryAfter time.Duration) {
	o.add(key, time.Now().Add(retryAfter))
}

// add records that key is over its rate until t (or later, if known).
func (o *overRate) add(key string, t time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if old, ok := o.until[key]; ok && old.After(t) {
		return
	}
	if len(o.until) >= maxOverRate {
		now := time.Now()
		for k, u := range o.until {
			if !u.After(now) {
				delete(o.until, k)
			}
		}
		if len(o.until) >= maxOverRate {
			clear(o.until)
			o.trusted = now.Add(o.grace)
		}
	}
	o.until[key] = t
}

// ThrottlesFollowed reports whether /verify takes its failure throttles from
// the process' set rather than from the store: the change feed has been
// followed for longer than the set's grace (the bench's profiled copy waits
// for it, as a running process is past it).
func (s *Service) ThrottlesFollowed() bool {
	_, known := s.over.retryAfter([]Throttle{{Key: verifyThrottlePrefix}})
	return known
}

// retryAfter answers, from the set, how long until every throttle of ts
// takes one more failure (0: now); known is false when the set cannot say
// (the feed is not followed, or not for long enough, or a throttle is not
// one of /verify's): the store must be read then.
func (o *overRate) retryAfter(ts []Throttle) (wait time.Duration, known bool) {
	if len(ts) == 0 {
		return 0, false
	}
	for _, t := range ts {
		if !strings.HasPrefix(t.Key, verifyThrottlePrefix) {
			return 0, false
		}
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.live || now.Before(o.trusted) {
		return 0, false
	}
	for _, t := range ts {
		u, ok := o.until[t.Key]
		switch {
		case !ok:
		case u.After(now):
			wait = max(wait, u.Sub(now))
		default:
			delete(o.until, t.Key)
		}
	}
	return wait, true
}
