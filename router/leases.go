package router

import (
	"sync"
	"time"
)

// leases tracks entries in flight on this replica and since when, so the
// renew loop can keep other replicas from claiming them.
type leases struct {
	mu    sync.Mutex
	since map[leaseKey]time.Time
}

type leaseKey struct{ stream, id string }

func newLeases() *leases { return &leases{since: make(map[leaseKey]time.Time)} }

// add records that id of stream is in flight since now.
func (l *leases) add(stream, id string, now time.Time) {
	l.mu.Lock()
	l.since[leaseKey{stream, id}] = now
	l.mu.Unlock()
}

func (l *leases) remove(stream, id string) {
	l.mu.Lock()
	delete(l.since, leaseKey{stream, id})
	l.mu.Unlock()
}

// olderThan returns, per stream, the entries in flight since before t, and
// restarts their clock (they are about to be renewed).
func (l *leases) olderThan(t time.Time) map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out map[string][]string
	now := time.Now()
	for k, since := range l.since {
		if since.Before(t) {
			if out == nil {
				out = make(map[string][]string)
			}
			out[k.stream] = append(out[k.stream], k.id)
			l.since[k] = now
		}
	}
	return out
}
