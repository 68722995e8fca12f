package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/metrics"
)

// Mode says whether consumed streams are trimmed.
type Mode string

const (
	// Off never trims consumed streams (the default, as before retention
	// existed): producers or operators bound them.
	Off Mode = "off"
	// Acked trims each consumed stream up to the oldest entry that some
	// consumer group has not finished.
	Acked Mode = "acked"
)

// Config configures a Trimmer. Zero fields take the documented defaults.
type Config struct {
	Streams []string // consumed streams; required
	Group   string   // the gateway's consumer group, reported in /streams; required
	Mode    Mode     // Off (default) or Acked
	// Keep is history kept regardless of the groups: entries whose ID time
	// is within Keep of Redis's clock are never trimmed. Default 0.
	Keep time.Duration
	// TrimInterval is how often streams (and the DLQ) are trimmed; default 10s.
	TrimInterval time.Duration
	// StatsInterval is how often the streams are inspected for the gauges
	// and /streams; default 5s. Passes run every min(StatsInterval,
	// TrimInterval).
	StatsInterval time.Duration
	DLQStream     string // default "gateway:dlq"
	// DLQMaxLen bounds the dead-letter stream: the oldest entries beyond it
	// are trimmed (exactly) and their IDs logged. 0 = unbounded (default).
	DLQMaxLen int64
	// Ownership tells, for /streams, whether a stream is read in order and
	// which replica owns it. Nil: no ordered streams.
	Ownership func(stream string) (ordered bool, owner string)
	Logger    *slog.Logger // default slog.Default()
}

func (c *Config) fill() error {
	if len(c.Streams) == 0 {
		return errors.New("retention: no streams")
	}
	if c.Group == "" {
		return errors.New("retention: no group")
	}
	switch c.Mode {
	case "":
		c.Mode = Off
	case Off, Acked:
	default:
		return fmt.Errorf("retention: mode %q: want %q or %q", c.Mode, Off, Acked)
	}
	if c.Keep < 0 || c.TrimInterval < 0 || c.StatsInterval < 0 || c.DLQMaxLen < 0 {
		return fmt.Errorf("retention: negative setting in %+v", *c)
	}
	if c.TrimInterval == 0 {
		c.TrimInterval = 10 * time.Second
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = 5 * time.Second
	}
	if c.DLQStream == "" {
		c.DLQStream = "gateway:dlq"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Redis is what the Trimmer needs of a Redis client; a go-redis
// UniversalClient (single node or cluster) satisfies it. Every stream
// command and the DLQ script name one key, so a cluster client sends them
// to that stream's master; TIME may go to any node.
type Redis interface {
	XInfoStream(ctx context.Context, key string) *redis.XInfoStreamCmd
	XInfoGroups(ctx context.Context, key string) *redis.XInfoGroupsCmd
	XPending(ctx context.Context, stream, group string) *redis.XPendingCmd
	XRangeN(ctx context.Context, stream, start, stop string, count int64) *redis.XMessageSliceCmd
	XTrimMinID(ctx context.Context, key, minID string) *redis.IntCmd
	Time(ctx context.Context) *redis.TimeCmd
	redis.Scripter
}

// Trimmer inspects and trims the consumed streams. Streams is safe for
// concurrent use; Run must be called once.
type Trimmer struct {
	cfg      Config
	rdb      Redis
	m        *metrics.Metrics
	snapshot atomic.Pointer[[]StreamStatus]

	// Owned by the Run goroutine.
	lastTrim time.Time
	lastPass time.Time
	consumed map[string]float64 // counter values at lastPass
	trimmed  map[string]int64
	failing  map[string]bool // stream -> last inspection failed (log once)
}

// New returns a Trimmer over rdb that updates m: gateway_consumer_lag,
// gateway_pending_messages, gateway_stream_oldest_unfinished_age_seconds,
// gateway_stream_length and gateway_stream_trimmed_total (at 0 from the
// start for every consumed stream, and for the DLQ when it is bounded).
func New(cfg Config, rdb Redis, m *metrics.Metrics) (*Trimmer, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if rdb == nil || m == nil {
		return nil, errors.New("retention: nil redis client or metrics")
	}
	t := &Trimmer{cfg: cfg, rdb: rdb, m: m,
		consumed: map[string]float64{}, trimmed: map[string]int64{}, failing: map[string]bool{}}
	initial := make([]StreamStatus, 0, len(cfg.Streams))
	for _, s := range cfg.Streams {
		m.StreamTrimmed.WithLabelValues(s)
		initial = append(initial, StreamStatus{Stream: s, Group: cfg.Group})
	}
	if cfg.DLQMaxLen > 0 {
		m.StreamTrimmed.WithLabelValues(cfg.DLQStream)
	}
	t.snapshot.Store(&initial)
	return t, nil
}

// Run inspects (and, when due, trims) every pass until ctx is done. The
// first pass runs at once.
func (t *Trimmer) Run(ctx context.Context) error {
	tick := time.NewTicker(t.passInterval())
	defer tick.Stop()
	t.cfg.Logger.Info("stream retention", "mode", string(t.cfg.Mode), "keep", t.cfg.Keep,
		"interval", t.cfg.TrimInterval, "dlq_maxlen", t.cfg.DLQMaxLen)
	for {
		t.pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (t *Trimmer) passInterval() time.Duration {
	return min(t.cfg.StatsInterval, t.cfg.TrimInterval)
}

// pass inspects every stream, publishes the gauges and the /streams
// snapshot, and trims when TrimInterval has passed since the last trim.
func (t *Trimmer) pass(ctx context.Context) {
	now, err := t.rdb.Time(ctx).Result() // entry IDs carry Redis's clock, not ours
	if err != nil {
		if ctx.Err() == nil {
			t.m.Errors.WithLabelValues("time").Inc()
		}
		return
	}
	local := time.Now()
	// Half a pass of slack: a tick that comes a little early must not
	// push the trim to the pass after.
	due := local.Sub(t.lastTrim) >= t.cfg.TrimInterval-t.passInterval()/2
	if due {
		t.lastTrim = local
	}
	prev := *t.snapshot.Load()
	out := make([]StreamStatus, 0, len(t.cfg.Streams))
	for i, s := range t.cfg.Streams {
		st := t.stream(ctx, s, now, due && t.cfg.Mode == Acked, prev[i])
		st.ConsumedPerSec = t.consumedRate(s, local)
		out = append(out, st)
	}
	t.lastPass = local
	t.snapshot.Store(&out)
	if due && t.cfg.DLQMaxLen > 0 {
		t.boundDLQ(ctx)
	}
}

// stream inspects (and trims) one stream; on failure it keeps prev's
// figures.
func (t *Trimmer) stream(ctx context.Context, s string, now time.Time, trim bool, prev StreamStatus) StreamStatus {
	v, err := t.inspect(ctx, s)
	if err != nil {
		t.fail(ctx, s, "inspect", err)
		return prev
	}
	ok := true
	if trim && v.groups > 0 && v.length > 0 {
		ok = t.trim(ctx, s, &v, minID(v.bound, idAt(now.Add(-t.cfg.Keep))))
	}
	if ok && t.failing[s] {
		t.failing[s] = false
		t.cfg.Logger.Info("stream inspection recovered", "stream", s)
	}
	st := StreamStatus{Stream: s, Group: t.cfg.Group, Length: max(v.length, 0), Lag: v.ownLag,
		Pending: v.ownPending, TrimmedTotal: t.trimmed[s]}
	if v.length > 0 {
		st.OldestAgeSeconds = v.first.age(now).Seconds()
	}
	if v.hasUnfinished {
		st.OldestUnfinishedAgeSeconds = v.unfinished.age(now).Seconds()
	}
	if v.ownLag >= 0 {
		t.m.ConsumerLag.WithLabelValues(s).Set(float64(v.ownLag))
	}
	t.m.Pending.WithLabelValues(s).Set(float64(v.ownPending))
	t.m.StreamLength.WithLabelValues(s).Set(float64(st.Length))
	t.m.OldestUnfinishedAge.WithLabelValues(s).Set(st.OldestUnfinishedAgeSeconds)
	return st
}

// trim trims s below bound when its first entry is older, updating v's
// length and first entry; false when a command failed.
func (t *Trimmer) trim(ctx context.Context, s string, v *view, bound streamID) bool {
	if !v.first.less(bound) {
		return true
	}
	n, err := t.rdb.XTrimMinID(ctx, s, bound.String()).Result()
	if err != nil {
		t.fail(ctx, s, "xtrim", err)
		return false
	}
	t.trimmed[s] += n
	t.m.StreamTrimmed.WithLabelValues(s).Add(float64(n))
	v.length -= n
	t.cfg.Logger.Debug("stream trimmed", "stream", s, "min_id", bound.String(), "trimmed", n)
	if n == 0 || v.length <= 0 {
		return true
	}
	// Re-read the oldest entry left (one XRANGE COUNT 1), so /streams
	// shows its age, not the trimmed one's.
	msgs, err := t.rdb.XRangeN(ctx, s, "-", "+", 1).Result()
	if err != nil {
		t.fail(ctx, s, "xrange", err)
		return false
	}
	if len(msgs) == 0 {
		v.length = 0
		return true
	}
	if id, err := parseID(msgs[0].ID); err == nil {
		v.first = id
	}
	return true
}

// fail counts a failed operation on stream and logs the first failure of
// a run of them.
func (t *Trimmer) fail(ctx context.Context, stream, op string, err error) {
	if ctx.Err() != nil {
		return
	}
	t.m.Errors.WithLabelValues("retention_" + op).Inc()
	if !t.failing[stream] {
		t.failing[stream] = true
		t.cfg.Logger.Warn("stream inspection failed", "stream", stream, "op", op, "err", err)
	}
}
