package streams

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RouteRedisLogs sends go-redis's own log lines (failed dials, pool
// troubles) to log as warnings with the message "redis client" and the
// line under "text", so they come out in the gateway's log format instead
// of go-redis's plain-text stderr lines. go-redis keeps one logger per
// process: the last call wins.
func RouteRedisLogs(log *slog.Logger) {
	redis.SetLogger(redisLog{log})
}

// redisLog adapts slog to go-redis's Logging interface.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	text := strings.TrimSpace(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
	r.l.LogAttrs(ctx, slog.LevelWarn, "redis client", slog.String("text", text))
}
