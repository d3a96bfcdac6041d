package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// Waiting for the replicas (Options.WaitReplicas). Redis replicates
// asynchronously: a primary acknowledges a write before its replicas have it,
// and a failover to a replica that had not received it loses it although the
// caller was told it succeeded. With WaitReplicas set, every write method ends
// with replicated (deferred first thing in the method, so no return path
// skips it): once the method's own steps succeeded it sends, in one pipeline
// and so on one connection,
//
//	PUBLISH P fence <origin>
//	WAIT <WaitReplicas> <WaitTimeout in ms>
//
// and answers Unavailable unless WAIT counts enough replicas.
//
// WAIT waits for the replication offset of the last write of its own
// connection, and replication is one ordered stream: once the replicas have
// the fence they have every step the method wrote before it, on whichever
// pooled connection. The fence is the method's last write step, rather than
// the step each method happens to end with, because that step may write
// nothing (a ZADD of a member already there, a compare-and-delete that finds
// the value changed, a best-effort index update), and a command Redis does not
// propagate may leave its connection's offset where it was, so WAIT after it
// could answer at once without covering the steps before. PUBLISH is always
// propagated to replicas (outside a Cluster), changes no key and, on a
// channel nobody subscribes to, reaches no one. It costs no extra round trip:
// the pipeline is the one WAIT needs anyway.
//
// Not on a Cluster: there a keyless command goes to an arbitrary node and
// PUBLISH is not part of a master's replication stream, so New refuses
// WaitReplicas on a ClusterClient. Not on miniredis either, which implements
// neither replicas nor WAIT: WaitReplicas 0 (the zero Options) never sends
// the fence or WAIT.
//
// Writes whose loss does no harm do not wait: TouchAdminKey and TouchSession
// (a last-use time), Doctor's repairs (run again, they redo what was lost),
// the Limiter's counters.

// DefaultWaitTimeout is Options.WaitTimeout's default.
const DefaultWaitTimeout = time.Second

// fence is the channel the fence is published on; nothing subscribes to it.
func (k keys) fence() string { return k.p + "fence" }

// replicated ends a write method named op whose outcome is *err: when the
// method succeeded and the store waits for replicas, *err becomes the outcome
// of that wait. Use it as the method's first deferred call:
//
//	defer s.replicated(ctx, op, &err)
//
// fenced, when given, is set by a create that sent the fence and WAIT in its
// own last round trip (create.fenced): nothing is left to wait for.
func (s *Store) replicated(ctx context.Context, op string, err *error, fenced ...*bool) {
	if s.waitReplicas <= 0 || *err != nil || (len(fenced) > 0 && *fenced[0]) {
		return
	}
	*err = s.waitFor(ctx, op)
}

// waitFor sends the fence and WAIT in one pipeline, as one write step.
func (s *Store) waitFor(ctx context.Context, op string) error {
	var acks *redis.Cmd
	err := s.bounds.step(ctx, func(ctx context.Context) error {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Publish(ctx, s.k.fence(), s.origin)
			acks = p.Do(ctx, "WAIT", s.waitReplicas, s.waitTimeout.Milliseconds())
			return nil
		})
		return err
	})
	if err != nil {
		return fail(ctx, op, err)
	}
	return s.acknowledged(ctx, op, acks)
}

// acknowledged reads WAIT's reply: Unavailable unless enough replicas
// acknowledged.
func (s *Store) acknowledged(ctx context.Context, op string, acks *redis.Cmd) error {
	n, err := acks.Int()
	if err != nil {
		return fail(ctx, op, err)
	}
	if n < s.waitReplicas {
		return &core.Error{Kind: core.Unavailable, Op: op,
			Msg: fmt.Sprintf("the write reached the primary, but %d of the %d replicas required acknowledged it within %v: it may or may not be kept; try again",
				n, s.waitReplicas, s.waitTimeout)}
	}
	return nil
}
