package router

import (
	"sync"
	"time"
)

// leases tracks the jobs in flight on this replica and since when, so the
// renew loop can keep other replicas from claiming their entries. Jobs are
// keyed by pointer: hashing a pointer is cheaper than hashing the entry's
// stream and ID on every add and remove.
type leases struct {
	mu   sync.Mutex
	jobs map[*job]struct{}
}

func newLeases() *leases { return &leases{jobs: make(map[*job]struct{})} }

// add records that j is in flight since now.
func (l *leases) add(j *job, now time.Time) {
	l.mu.Lock()
	j.since = now
	l.jobs[j] = struct{}{}
	l.mu.Unlock()
}

func (l *leases) remove(j *job) {
	l.mu.Lock()
	delete(l.jobs, j)
	l.mu.Unlock()
}

// olderThan returns, per stream, the IDs of entries in flight since before
// t, and restarts their clock (they are about to be renewed).
func (l *leases) olderThan(t time.Time) map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out map[string][]string
	now := time.Now()
	for j := range l.jobs {
		if j.since.Before(t) {
			if out == nil {
				out = make(map[string][]string)
			}
			out[j.e.Stream] = append(out[j.e.Stream], j.e.ID)
			j.since = now
		}
	}
	return out
}
