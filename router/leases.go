package router

import (
	"sync"
	"time"
)

// leases tracks the jobs in flight on this replica and since when, so the
// renew loop can keep other replicas from claiming their entries. The
// jobs form a doubly linked list through their lease links: adding and
// removing one is a few pointer writes under the lock, where a map keyed
// by job cost a hash insert and delete per message.
type leases struct {
	mu    sync.Mutex
	first *job // any order; nil when none
	n     int
}

// leaseLink is a job's place in leases; guarded by leases.mu.
type leaseLink struct {
	prev, next *job
	in         bool // in the list
}

func newLeases() *leases { return &leases{} }

// add records that j is in flight since now.
func (l *leases) add(j *job, now time.Time) {
	l.mu.Lock()
	l.push(j, now)
	l.mu.Unlock()
}

// addAll records that jobs are in flight since now, under one lock.
func (l *leases) addAll(jobs []*job, now time.Time) {
	l.mu.Lock()
	for _, j := range jobs {
		l.push(j, now)
	}
	l.mu.Unlock()
}

// push links j first. Called with mu held.
func (l *leases) push(j *job, now time.Time) {
	j.since = now
	if j.lease.in {
		return
	}
	j.lease = leaseLink{next: l.first, in: true}
	if l.first != nil {
		l.first.lease.prev = j
	}
	l.first = j
	l.n++
}

// remove forgets j; a job not added (or already removed) is ignored.
func (l *leases) remove(j *job) {
	l.mu.Lock()
	if ln := &j.lease; ln.in {
		if ln.prev != nil {
			ln.prev.lease.next = ln.next
		} else {
			l.first = ln.next
		}
		if ln.next != nil {
			ln.next.lease.prev = ln.prev
		}
		*ln = leaseLink{}
		l.n--
	}
	l.mu.Unlock()
}

// olderThan returns, per stream, the IDs of entries in flight since before
// t, and restarts their clock (they are about to be renewed).
func (l *leases) olderThan(t time.Time) map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out map[string][]string
	now := time.Now()
	for j := l.first; j != nil; j = j.lease.next {
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

// count returns how many jobs of stream are in flight.
func (l *leases) count(stream string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for j := l.first; j != nil; j = j.lease.next {
		if j.e.Stream == stream {
			n++
		}
	}
	return n
}
