package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrLost is returned by Grant.Ack when this replica no longer holds the
// stream's lease: another replica may own the stream now.
var ErrLost = errors.New("stream lease lost")

// Config tunes a Manager. Zero fields take the documented defaults.
type Config struct {
	Group string // consumer group; required (leases are per group)
	Owner string // this replica's consumer name; required, unique per replica
	// TTL is how long a lease outlives its owner's last renewal: another
	// replica takes a dead owner's streams within TTL+Interval. Default 10s.
	TTL time.Duration
	// Interval is the renew, heartbeat and rebalance period; default
	// min(TTL/3, 500ms).
	Interval time.Duration
	// Margin: an owner considers its lease lost TTL-Margin after the start
	// of its last successful renewal, so it stops before Redis frees the
	// key. Default TTL/4.
	Margin time.Duration
	Logger *slog.Logger // default slog.Default()
}

func (c *Config) fill() error {
	if c.Group == "" || c.Owner == "" {
		return errors.New("lease: group and owner are required")
	}
	if c.TTL == 0 {
		c.TTL = 10 * time.Second
	}
	if c.Interval == 0 {
		c.Interval = min(c.TTL/3, 500*time.Millisecond)
	}
	if c.Margin == 0 {
		c.Margin = c.TTL / 4
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TTL < 0 || c.Interval <= 0 || c.Margin < 0 || c.Margin >= c.TTL || c.Interval >= c.TTL-c.Margin {
		return fmt.Errorf("lease: need 0 < interval < ttl-margin and 0 <= margin < ttl (ttl %v, interval %v, margin %v)", c.TTL, c.Interval, c.Margin)
	}
	return nil
}

// Manager acquires, renews, balances and releases stream leases for one
// replica. Create with New; run Run once; safe for concurrent use.
type Manager struct {
	cfg  Config
	rdb  redis.UniversalClient
	log  *slog.Logger
	wake chan struct{}

	mu      sync.Mutex
	streams map[string]*state
}

// state is what this replica knows of one stream.
type state struct {
	waiters   []chan *Grant // Acquire calls waiting for the lease
	grant     *Grant        // held (active or being handed over), or nil
	freeSince time.Time     // when the lease was first seen free while not wanted by the target
}

// New returns a Manager for rdb.
func New(rdb redis.UniversalClient, cfg Config) (*Manager, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, rdb: rdb, log: cfg.Logger, wake: make(chan struct{}, 1),
		streams: make(map[string]*state)}, nil
}

// TTL returns the lease lifetime in use.
func (m *Manager) TTL() time.Duration { return m.cfg.TTL }

// Margin returns how long before the TTL an owner stops.
func (m *Manager) Margin() time.Duration { return m.cfg.Margin }

func (m *Manager) leaseKey(stream string) string {
	return "gateway:lease:{" + stream + "}:" + m.cfg.Group
}

func (m *Manager) fenceKey(stream string) string { return m.leaseKey(stream) + ":fence" }

func (m *Manager) replicasKey() string { return "gateway:lease:" + m.cfg.Group + ":replicas" }

// Acquire waits until this replica owns stream and returns the grant, or
// ctx's error. While a call waits, the stream counts as one this replica
// wants to read; the caller must Release the grant when done with it.
func (m *Manager) Acquire(ctx context.Context, stream string) (*Grant, error) {
	ch := make(chan *Grant, 1)
	m.mu.Lock()
	st := m.state(stream)
	st.waiters = append(st.waiters, ch)
	m.mu.Unlock()
	m.poke()
	select {
	case g := <-ch:
		return g, nil
	case <-ctx.Done():
	}
	m.mu.Lock()
	for i, w := range st.waiters {
		if w == ch {
			st.waiters = append(st.waiters[:i], st.waiters[i+1:]...)
			break
		}
	}
	m.mu.Unlock()
	select {
	case g := <-ch: // granted meanwhile: give it back
		g.Release()
	default:
	}
	return nil, ctx.Err()
}

// Owner returns the consumer name that holds stream's lease, or "" when
// the stream has no owner.
func (m *Manager) Owner(ctx context.Context, stream string) (string, error) {
	v, err := m.rdb.Get(ctx, m.leaseKey(stream)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("get lease %s: %w", stream, err)
	}
	if i := strings.LastIndexByte(v, ' '); i >= 0 {
		return v[:i], nil // "OWNER TOKEN"; the owner may contain spaces
	}
	return v, nil
}

func (m *Manager) state(stream string) *state {
	st, ok := m.streams[stream]
	if !ok {
		st = &state{}
		m.streams[stream] = st
	}
	return st
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run heartbeats, renews, balances and acquires until ctx ends, then
// releases every lease still held and leaves the replica set, so the other
// replicas take over at once. It returns nil on a normal stop.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		m.round(ctx)
		select {
		case <-ctx.Done():
			m.stop()
			return nil
		case <-t.C:
		case <-m.wake:
		}
	}
}

// stop releases what is left and removes this replica's heartbeat.
func (m *Manager) stop() {
	m.mu.Lock()
	var held []*Grant
	for _, st := range m.streams {
		if st.grant != nil {
			held = append(held, st.grant)
		}
	}
	m.mu.Unlock()
	for _, g := range held {
		g.Release()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := m.rdb.ZRem(ctx, m.replicasKey(), m.cfg.Owner).Err(); err != nil {
		m.log.Warn("leaving the replica set failed", "err", err)
	}
}

// round is one period's work: heartbeat, renew held leases, hand over
// extras, take free streams up to the target.
func (m *Manager) round(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	rank, replicas, hbErr := m.heartbeat(ctx)
	if hbErr != nil {
		m.log.Warn("lease heartbeat failed", "err", hbErr)
	}
	m.mu.Lock()
	var held []*Grant
	var wanted, free []string
	for s, st := range m.streams {
		switch {
		case st.grant != nil:
			held = append(held, st.grant)
			wanted = append(wanted, s)
		case len(st.waiters) > 0:
			wanted = append(wanted, s)
			free = append(free, s)
		}
	}
	m.mu.Unlock()
	active := 0
	for _, g := range held {
		if m.renew(ctx, g) && !g.handingOver() {
			active++
		}
	}
	if hbErr != nil {
		return // without the replica set, only keep what is held
	}
	target := targetFor(len(wanted), replicas, rank)
	if active > target {
		m.handOver(held, active-target)
		return
	}
	m.take(ctx, free, target-active)
}

// targetFor is how many of n streams the replica of rank (0-based, by
// name) among r should own.
func targetFor(n, r, rank int) int {
	if r <= 0 {
		return n
	}
	t := n / r
	if rank < n%r {
		t++
	}
	return t
}

// heartbeat announces this replica and returns its rank among the live
// replicas (sorted by name) and their number.
func (m *Manager) heartbeat(ctx context.Context) (rank, n int, err error) {
	now := time.Now().UnixMilli()
	key := m.replicasKey()
	pipe := m.rdb.TxPipeline()
	pipe.ZAdd(ctx, key, redis.Z{Score: float64(now + m.cfg.TTL.Milliseconds()), Member: m.cfg.Owner})
	pipe.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatInt(now, 10))
	members := pipe.ZRange(ctx, key, 0, -1)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, 0, fmt.Errorf("lease heartbeat: %w", err)
	}
	names := members.Val()
	rank = 0
	for _, name := range names {
		if name < m.cfg.Owner {
			rank++
		}
	}
	return rank, len(names), nil
}
