package redistest

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// OnSend is a go-redis hook that calls itself with each round trip's commands
// (one command, or a pipeline's) before they are sent: what a test that counts
// or records a client's commands adds with AddHook(redistest.OnSend(f)).
type OnSend func(cmds ...redis.Cmder)

// DialHook leaves dialling as it is.
func (f OnSend) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook calls f with the command, then sends it.
func (f OnSend) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		f(cmd)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook calls f with the pipeline's commands, then sends them.
func (f OnSend) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		f(cmds...)
		return next(ctx, cmds)
	}
}
