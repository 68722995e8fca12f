package retention

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// dlqBatch is how many dead letters one script call drops (and one log
// line lists); dlqBatchesPerPass bounds one pass's work, the rest waits
// for the next.
const (
	dlqBatch          = 100
	dlqBatchesPerPass = 100
)

// trimOldest drops up to ARGV[2] of the oldest entries of KEYS[1] beyond
// ARGV[1] entries and returns their IDs. It runs atomically, so the
// entries trimmed are exactly those listed even while dead letters are
// being added.
var trimOldest = redis.NewScript(`
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return {} end
local n = math.min(excess, tonumber(ARGV[2]))
local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', n)
local ids = {}
for i, e in ipairs(entries) do ids[i] = e[1] end
redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', redis.call('XLEN', KEYS[1]) - #ids)
return ids
`)

// boundDLQ trims the dead-letter stream to DLQMaxLen entries, oldest
// first, counting them in gateway_stream_trimmed_total and logging their
// IDs at warn (they are lost for replay).
func (t *Trimmer) boundDLQ(ctx context.Context) {
	dlq := t.cfg.DLQStream
	for range dlqBatchesPerPass {
		ids, err := trimOldest.Run(ctx, t.rdb, []string{dlq}, t.cfg.DLQMaxLen, dlqBatch).StringSlice()
		if err != nil {
			t.fail(ctx, dlq, "dlq_trim", fmt.Errorf("trim dlq %s: %w", dlq, err))
			return
		}
		if len(ids) == 0 {
			return
		}
		t.m.StreamTrimmed.WithLabelValues(dlq).Add(float64(len(ids)))
		t.cfg.Logger.Warn("dead letters trimmed (dlq_maxlen)", "stream", dlq, "dlq_maxlen", t.cfg.DLQMaxLen,
			"trimmed", len(ids), "ids", ids)
		if len(ids) < dlqBatch {
			return
		}
	}
}
