package redisstore

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// The change feed (core.ChangeFeed). Every write method that can change what a
// verification answers ends with changed: the sinks of this process are told at
// once, then "<origin> <user id>" ("*" for the scope registry) is published
// on the channel P changes, which FollowChanges in every process listens to;
// a store skips the messages of its own origin, whose sinks it told already.
// The channel is not a key: PUBLISH reaches every node of a Cluster.

// allChanged is the message that says any verification may have changed.
const allChanged = "*"

// overRateMark begins the part of a message "<origin> !<ms> <key>" that says
// that the Limiter key is over its rate for ms milliseconds (Throttled). A
// process of a version before it takes it for a user id that does not exist.
const overRateMark = "!"

// Timing of FollowChanges: after changesQuiet without a message it pings
// through the subscription, and a ping unanswered for as long again means the
// subscription is lost; a lost one is retried after changesRetry.
const (
	changesQuiet = time.Second
	changesRetry = 200 * time.Millisecond
)

func (k keys) changes() string { return k.p + "changes" }

var (
	_ core.ChangeFeed   = (*Store)(nil)
	_ core.ThrottleFeed = (*Store)(nil)
)

// changed reports that a write in userID's slot ("" : the scope registry) may
// have changed a verification's answer, unless err says that nothing was
// written. A write whose outcome is unknown (Redis failed half-way) is
// reported too. The publish is best effort: a process that misses it keeps a
// stale answer no longer than its cache's TTL.
func (s *Store) changed(ctx context.Context, userID string, err error) {
	switch core.KindOf(err) {
	case core.NotFound, core.Invalid, core.Conflict, core.Malformed, core.PreconditionFailed:
		if err != nil {
			return
		}
	}
	s.sinksMu.Lock()
	sinks := s.sinks
	s.sinksMu.Unlock()
	for _, sink := range sinks {
		sink.Changed(userID)
	}
	msg := s.origin + " " + userID
	if userID == "" {
		msg = s.origin + " " + allChanged
	}
	ctx, cancel := s.bounds.cleanup(ctx)
	defer cancel()
	_ = s.rdb.Publish(ctx, s.k.changes(), msg).Err()
}

// Throttled publishes on the change channel that key is over its rate for
// retryAfter (rounded up to the millisecond), for the ThrottleSinks of the
// other processes. Best effort, like changed's publish.
func (s *Store) Throttled(ctx context.Context, key string, retryAfter time.Duration) {
	ms := (retryAfter + time.Millisecond - 1) / time.Millisecond
	ctx, cancel := s.bounds.cleanup(ctx)
	defer cancel()
	_ = s.rdb.Publish(ctx, s.k.changes(), s.origin+" "+overRateMark+strconv.FormatInt(int64(ms), 10)+" "+key).Err()
}

// FollowChanges delivers to sink the changes this process writes, at once,
// and those every process writes, through a subscription to the change
// channel: Following(true) once the subscription is confirmed, Following(false)
// as soon as it is lost (the connection failed, or a ping through it went
// unanswered), after which it subscribes again. It returns when ctx ends.
func (s *Store) FollowChanges(ctx context.Context, sink core.ChangeSink) {
	sink.Following(false)
	s.sinksMu.Lock()
	s.sinks = append(slices.Clip(s.sinks), sink)
	s.sinksMu.Unlock()
	defer func() {
		s.sinksMu.Lock()
		s.sinks = slices.DeleteFunc(slices.Clone(s.sinks), func(x core.ChangeSink) bool { return x == sink })
		s.sinksMu.Unlock()
		sink.Following(false)
	}()
	for ctx.Err() == nil {
		s.subscribeOnce(ctx, sink)
		sink.Following(false)
		select {
		case <-ctx.Done():
		case <-time.After(changesRetry):
		}
	}
}

// subscribeOnce subscribes and delivers until the subscription fails or ctx
// ends. A fresh subscription each time, rather than go-redis' own reconnection,
// so that no message is received before this process knows it was cut off.
func (s *Store) subscribeOnce(ctx context.Context, sink core.ChangeSink) {
	ps := s.rdb.Subscribe(ctx, s.k.changes())
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { ps.Close() }) // unblocks Receive
	defer stop()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, changesQuiet)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() && !pinged {
				// Quiet: ask the connection for a sign of life.
				pinged = true
				if ps.Ping(ctx) == nil {
					continue
				}
			}
			return
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				return
			}
			sink.Following(true)
		case *redis.Message:
			origin, uid, _ := strings.Cut(m.Payload, " ")
			switch {
			case origin == s.origin:
			case strings.HasPrefix(uid, overRateMark):
				ms, key, _ := strings.Cut(uid[len(overRateMark):], " ")
				n, err := strconv.ParseInt(ms, 10, 64)
				if ts, ok := sink.(core.ThrottleSink); ok && err == nil && n > 0 && key != "" {
					ts.Throttled(key, time.Duration(n)*time.Millisecond)
				}
			case uid == allChanged:
				sink.Changed("")
			default:
				sink.Changed(uid)
			}
		}
	}
}
