package redistest

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// CommandStats sums what INFO commandstats says of the server c talks to: how
// many commands it has run and the microseconds it spent running them (a
// script's own calls count too). With cmd set (lower case, e.g. "time"), only
// that command's. The INFO call itself counts once in the next call's figures.
func CommandStats(ctx context.Context, c redis.UniversalClient, cmd string) (calls, usec int64, err error) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		name, stats, ok := strings.Cut(line, ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd || (cmd != "" && name != cmd) {
			continue
		}
		for kv := range strings.SplitSeq(stats, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				calls += n
			case "usec":
				usec += n
			}
		}
	}
	return calls, usec, nil
}
