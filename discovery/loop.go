package discovery

import (
	"context"
	"log/slog"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/msgroute/gateway/internal/backoff"
)

// loop runs one service's blocking queries until ctx is done.
func (w *Watcher) loop(ctx context.Context, wt *watch) {
	var (
		index    uint64
		failures int
		last     time.Time // start of the previous query, for MinInterval
	)
	for {
		if !last.IsZero() {
			if !backoff.Sleep(ctx, w.cfg.MinInterval-time.Since(last)) {
				return
			}
		}
		last = time.Now()
		entries, meta, err := w.query(ctx, wt.name, index)
		if ctx.Err() != nil {
			return
		}
		if err == nil && len(entries) == 0 && w.cfg.Token == "" && meta != nil && meta.DefaultACLPolicy == "deny" {
			// With ACLs on and deny by default, Consul answers an
			// anonymous query with an empty list, not a 403: without
			// this the gateway would look ready and route nothing.
			err = ErrNoToken
		}
		if err != nil {
			// After an error the next query must not block on the old
			// index: a restarted or failed-over Consul may be behind it
			// and would hold the query for the whole WaitTime before
			// answering with the lower index. Index 1 answers at once
			// (and, unlike 0, is still a blocking query's index).
			if index > 1 {
				index = 1
			}
			failures++
			w.failed(wt, err, failures)
			if !backoff.Sleep(ctx, backoff.Delay(failures, w.cfg.BackoffMin, w.cfg.BackoffMax)) {
				return
			}
			continue
		}
		if failures > 0 {
			w.cfg.Logger.Info("consul watch recovered", "service", wt.name, "failures", failures)
			failures = 0
		}
		index = nextIndex(index, meta.LastIndex)
		w.answer(wt, entries, index)
	}
}

// query runs one blocking query. The deadline covers Consul's wait, its
// jitter (up to wait/16) and slack, so a dead connection cannot hang the
// watch forever.
func (w *Watcher) query(ctx context.Context, service string, index uint64) ([]*api.ServiceEntry, *api.QueryMeta, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.WaitTime+w.cfg.WaitTime/16+requestSlack)
	defer cancel()
	q := (&api.QueryOptions{WaitIndex: index, WaitTime: w.cfg.WaitTime, AllowStale: true}).WithContext(ctx)
	return w.client.Service(service, "", true, q)
}

// nextIndex applies Consul's rules for blocking query indexes
// ("Implementation Details" of the blocking queries docs): an index that
// went backwards (a server restored from a snapshot, a stale follower)
// starts over, and an index below 1 is raised to 1, because index 0 makes
// the query non-blocking and the watch a busy loop.
func nextIndex(prev, got uint64) uint64 {
	if got < prev {
		got = 0
	}
	return max(got, 1)
}

// failed records a failed query. The snapshot is left alone: Consul being
// away is no evidence that instances went away.
func (w *Watcher) failed(wt *watch, err error, failures int) {
	now := w.cfg.Now()
	w.mu.Lock()
	if wt.failures == 0 {
		wt.failingSince = now
	}
	wt.failures = failures
	wt.lastError = err.Error()
	w.lastError, w.lastErrorAt = wt.lastError, now
	w.mu.Unlock()
	level := slog.LevelDebug
	if failures == 1 {
		level = slog.LevelWarn
	}
	w.cfg.Logger.Log(context.Background(), level, "consul query failed",
		"service", wt.name, "failures", failures, "error", err)
}

// answer records a successful query and publishes the snapshot if it
// changed (or is the first).
func (w *Watcher) answer(wt *watch, entries []*api.ServiceEntry, index uint64) {
	insts, bad := fromEntries(wt.name, entries)
	now := w.cfg.Now()

	w.mu.Lock()
	changed := !wt.answered || !equalSnapshots(wt.instances, insts)
	if changed {
		wt.instances = insts
	}
	wt.answered = true
	wt.index = index
	wt.lastSuccess, w.lastSuccess = now, now
	wt.failures, wt.failingSince, wt.lastError = 0, time.Time{}, ""
	newBad := wt.noteBadWeights(bad)
	current := w.watches[wt.name] == wt
	w.mu.Unlock()

	w.answered.Store(true)
	for _, b := range newBad {
		w.invalidWeights.Add(1)
		w.cfg.Logger.Warn("invalid instance weight, using 1", "service", wt.name,
			"instance", b.key.id, "node", b.key.node, "weight", b.raw)
	}
	if changed && current {
		w.cfg.Logger.Debug("instances changed", "service", wt.name, "instances", len(insts))
		w.onUpdate(wt.name, insts)
	}
}

// noteBadWeights remembers the instances with unusable weights and
// returns those not reported before (with this value). Instances that
// left are forgotten, so the memory is bounded by the snapshot.
func (wt *watch) noteBadWeights(bad []badWeight) []badWeight {
	if len(bad) == 0 && len(wt.badWeights) == 0 {
		return nil
	}
	next := make(map[instanceKey]string, len(bad))
	var fresh []badWeight
	for _, b := range bad {
		if old, ok := wt.badWeights[b.key]; !ok || old != b.raw {
			fresh = append(fresh, b)
		}
		next[b.key] = b.raw
	}
	wt.badWeights = next
	return fresh
}
