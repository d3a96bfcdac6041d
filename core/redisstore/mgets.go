package redisstore

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// mgetFlights is how many of a store's verification reads (ReadAuth's MGET
// sent alone) are in flight at once before the next ones wait for one to
// land, and then go together, in one pipeline. One: in make bench's miss row
// (32 connections, 2 cores) two flights cost a quarter more CPU per miss, and
// missed the target in one run of five (docs/performance.md).
const mgetFlights = 1

// mgets sends the MGETs of concurrent verifications: each alone while fewer
// than mgetFlights are in flight, so that a lone verification waits for
// nothing but its own round trip; beyond that, those that arrive wait for a
// flight to land and then go together as one pipeline, one round trip for
// all of them (so a verification waits for at most one other round trip). Under load a round trip then serves several verifications:
// one write and one read on each side (Gatehouse and redis-server) for all
// of them, where each cost its own.
//
// Only on one server (Sentinel's included): on a Cluster a pipeline waits
// for its slowest node, and a node that stalls would hold the reads of
// every other node's users that went with them; there each read goes alone.
type mgets struct {
	together bool // one server: reads may go together

	mu      sync.Mutex
	flights int         // in flight now, alone or together
	queue   []*mgetCall // waiting for a flight to land
}

// mgetCall is one MGET waiting in mgets' queue, then in its flight.
type mgetCall struct {
	ctx  context.Context
	keys []string
	vals []any
	err  error
	done chan struct{} // closed once vals and err are set
}

// mget sends MGET keys (one slot), alone or with others, and returns its
// values. It returns when ctx ends, whatever the flight it waits for.
func (s *Store) mget(ctx context.Context, keys []string) ([]any, error) {
	m := &s.mgets
	if !m.together {
		return s.rdb.MGet(ctx, keys...).Result()
	}
	m.mu.Lock()
	if m.flights < mgetFlights {
		m.flights++
		m.mu.Unlock()
		defer s.landed()
		return s.rdb.MGet(ctx, keys...).Result()
	}
	c := &mgetCall{ctx: ctx, keys: keys, done: make(chan struct{})}
	m.queue = append(m.queue, c)
	m.mu.Unlock()
	select {
	case <-c.done:
		return c.vals, c.err
	case <-ctx.Done():
		// Its flight drops it, or sends it and nobody reads the answer.
		return nil, ctx.Err()
	}
}

// landed ends a flight: the calls waiting meanwhile take its place, in one
// flight of their own (on a goroutine of its own: the caller whose flight
// landed has its answer, and waits for no one else's).
func (s *Store) landed() {
	m := &s.mgets
	m.mu.Lock()
	q := m.queue
	if len(q) == 0 {
		m.flights--
		m.mu.Unlock()
		return
	}
	m.queue = nil
	m.mu.Unlock()
	go s.flight(q)
}

// flight sends the MGETs of calls that are still waiting as one pipeline,
// under the earliest of their bounds and none of their cancellations (one
// caller leaving must not fail the others), and hands each its answer.
func (s *Store) flight(calls []*mgetCall) {
	defer s.landed()
	live := calls[:0]
	var first time.Time
	for _, c := range calls {
		if c.ctx.Err() != nil {
			continue // gone: its caller returned
		}
		if d, ok := c.ctx.Deadline(); ok && (first.IsZero() || d.Before(first)) {
			first = d
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	ctx := context.WithoutCancel(live[0].ctx)
	if !first.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, first)
		defer cancel()
	}
	cmds := make([]*redis.SliceCmd, len(live))
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range live {
			cmds[i] = p.MGet(ctx, c.keys...)
		}
		return nil
	})
	for i, c := range live {
		c.vals, c.err = cmds[i].Result()
		close(c.done)
	}
}
