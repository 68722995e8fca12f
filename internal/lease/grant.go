package lease

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Grant is this replica's ownership of one stream. Its Context ends when
// the ownership ends or is to end: the lease was lost (not renewed in
// time), or is to be handed over (rebalance, shutdown). The holder then
// stops reading and dispatching, and calls Release. Safe for concurrent use.
type Grant struct {
	m      *Manager
	stream string
	token  int64
	value  string
	ctx    context.Context
	cancel context.CancelFunc
	timer  *time.Timer // cancels ctx at the end of the lease's safe validity

	mu       sync.Mutex
	handover bool
	released bool
}

// Stream is the stream the grant is for.
func (g *Grant) Stream() string { return g.stream }

// Token is the grant's fencing token: larger than any earlier grant's.
func (g *Grant) Token() int64 { return g.token }

// Context ends when the holder must stop using the stream.
func (g *Grant) Context() context.Context { return g.ctx }

// Ack acknowledges ids of the stream in the consumer group, only if the
// lease is still this grant's (ErrLost otherwise).
func (g *Grant) Ack(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, 2+len(ids))
	args = append(args, g.value, g.m.cfg.Group)
	for _, id := range ids {
		args = append(args, id)
	}
	n, err := ackScript.Run(ctx, g.m.rdb, []string{g.m.leaseKey(g.stream), g.stream}, args...).Int64()
	if err != nil {
		return fmt.Errorf("fenced xack %s: %w", g.stream, err)
	}
	if n < 0 {
		return fmt.Errorf("fenced xack %s: %w", g.stream, ErrLost)
	}
	return nil
}

// SetDeliveries records n as the delivery counter of entry id (pending for
// this replica), only if the lease is still this grant's (ErrLost
// otherwise). In-process retries of an ordered stream count this way, so a
// new owner sees how often an entry was tried.
func (g *Grant) SetDeliveries(ctx context.Context, id string, n int64) error {
	r, err := countScript.Run(ctx, g.m.rdb, []string{g.m.leaseKey(g.stream), g.stream},
		g.value, g.m.cfg.Group, g.m.cfg.Owner, id, n).Int64()
	if err != nil {
		return fmt.Errorf("fenced xclaim %s %s: %w", g.stream, id, err)
	}
	if r < 0 {
		return fmt.Errorf("fenced xclaim %s %s: %w", g.stream, id, ErrLost)
	}
	return nil
}

// Release ends the grant: its context ends and, if the lease is still
// this grant's, it is deleted so another replica can take the stream at
// once. Later calls do nothing.
func (g *Grant) Release() {
	g.mu.Lock()
	if g.released {
		g.mu.Unlock()
		return
	}
	g.released = true
	g.mu.Unlock()
	g.timer.Stop()
	g.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := releaseScript.Run(ctx, g.m.rdb, []string{g.m.leaseKey(g.stream)}, g.value).Err(); err != nil {
		g.m.log.Warn("lease release failed; it expires on its own", "stream", g.stream, "err", err)
	}
	m := g.m
	m.mu.Lock()
	if st := m.streams[g.stream]; st != nil && st.grant == g {
		st.grant = nil
	}
	m.mu.Unlock()
	m.poke()
}

func (g *Grant) handingOver() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.handover || g.released
}

// renew extends g's lease and its safe validity. It reports whether the
// lease is still held; a lease found taken ends the grant's context. A
// Redis error changes nothing: the validity timer stops the holder in time.
func (m *Manager) renew(ctx context.Context, g *Grant) bool {
	start := time.Now()
	ok, err := renewScript.Run(ctx, m.rdb, []string{m.leaseKey(g.stream)}, g.value, m.cfg.TTL.Milliseconds()).Int64()
	if err != nil {
		m.log.Warn("lease renewal failed", "stream", g.stream, "err", err)
		return g.ctx.Err() == nil
	}
	if ok == 0 {
		m.log.Warn("lease lost", "stream", g.stream, "token", g.token)
		g.cancel()
		return false
	}
	g.timer.Reset(time.Until(start.Add(m.cfg.TTL - m.cfg.Margin)))
	return g.ctx.Err() == nil
}

// handOver ends the contexts of n active grants (the last by name), whose
// holders then drain and Release them.
func (m *Manager) handOver(held []*Grant, n int) {
	slices.SortFunc(held, func(a, b *Grant) int { return -compareStrings(a.stream, b.stream) })
	for _, g := range held {
		if n == 0 {
			return
		}
		g.mu.Lock()
		skip := g.handover || g.released || g.ctx.Err() != nil
		g.handover = true
		g.mu.Unlock()
		if skip {
			continue
		}
		m.log.Info("handing stream over", "stream", g.stream)
		g.cancel()
		n--
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// take acquires up to n of the free (wanted, not held) streams, starting
// at a per-replica offset so replicas do not all race for the same one.
// Beyond n, a stream whose lease has been free for a whole TTL is taken
// too: no stream stays unread because replicas disagree on the target.
func (m *Manager) take(ctx context.Context, free []string, n int) {
	if len(free) == 0 {
		return
	}
	slices.Sort(free)
	h := fnv.New32a()
	h.Write([]byte(m.cfg.Owner))
	off := int(h.Sum32() % uint32(len(free)))
	for i := range free {
		s := free[(off+i)%len(free)]
		if n <= 0 && !m.freeLong(ctx, s) {
			continue
		}
		if m.tryAcquire(ctx, s) {
			n--
		}
	}
}

// freeLong reports whether stream's lease has been seen free for a TTL.
func (m *Manager) freeLong(ctx context.Context, stream string) bool {
	n, err := m.rdb.Exists(ctx, m.leaseKey(stream)).Result()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state(stream)
	if err != nil || n > 0 {
		st.freeSince = time.Time{}
		return false
	}
	if st.freeSince.IsZero() {
		st.freeSince = time.Now()
	}
	return time.Since(st.freeSince) >= m.cfg.TTL
}

// tryAcquire takes stream's lease if it is free and hands the grant to the
// first waiting Acquire. It reports whether it did.
func (m *Manager) tryAcquire(ctx context.Context, stream string) bool {
	start := time.Now()
	tok, err := acquireScript.Run(ctx, m.rdb, []string{m.leaseKey(stream), m.fenceKey(stream)},
		m.cfg.Owner, m.cfg.TTL.Milliseconds()).Int64()
	if errors.Is(err, redis.Nil) {
		return false
	}
	if err != nil {
		m.log.Warn("lease acquire failed", "stream", stream, "err", err)
		return false
	}
	g := &Grant{m: m, stream: stream, token: tok, value: m.cfg.Owner + " " + strconv.FormatInt(tok, 10)}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.timer = time.AfterFunc(time.Until(start.Add(m.cfg.TTL-m.cfg.Margin)), g.cancel)
	m.mu.Lock()
	st := m.state(stream)
	st.freeSince = time.Time{}
	if len(st.waiters) == 0 { // the waiter left meanwhile
		m.mu.Unlock()
		g.Release()
		return false
	}
	ch := st.waiters[0]
	st.waiters = st.waiters[1:]
	st.grant = g
	m.mu.Unlock()
	m.log.Info("stream lease acquired", "stream", stream, "token", tok)
	ch <- g
	return true
}
