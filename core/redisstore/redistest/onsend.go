package redistest

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// OnSend is a go-redis hook that calls itself with each round trip's commands
// (one command, or a pipeline's) before they are sent: what a test that counts
// or records a client's commands adds with AddHook(redistest.OnSend(f)).
//
// The client's own upkeep is left out: a new connection's handshake, which
// go-redis sends (HELLO, then AUTH, SELECT, READONLY or CLIENT SETINFO)
// through the client's hooks whenever its pool dials, and a Cluster client's
// reads of the cluster's layout (CLUSTER SLOTS or SHARDS). Either can happen
// in the middle of any test (a busy machine makes the pool dial), and neither
// is a round trip of the code under test.
type OnSend func(cmds ...redis.Cmder)

// upkeep reports whether cmds are the client's own upkeep.
func upkeep(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		switch c.Name() {
		case "hello", "auth", "select", "readonly", "client", "cluster":
		default:
			return false
		}
	}
	return len(cmds) > 0
}

// DialHook leaves dialling as it is.
func (f OnSend) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook calls f with the command, then sends it.
func (f OnSend) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !upkeep([]redis.Cmder{cmd}) {
			f(cmd)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook calls f with the pipeline's commands, then sends them.
func (f OnSend) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !upkeep(cmds) {
			f(cmds...)
		}
		return next(ctx, cmds)
	}
}
