package discovery

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
)

// healthClient is the part of Consul's API the watcher uses; *api.Health
// implements it, tests use fakes.
type healthClient interface {
	Service(service, tag string, passingOnly bool, q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error)
}

// Watcher keeps one Consul watch per service named through SetServices.
// All methods are safe for concurrent use.
type Watcher struct {
	cfg      Config
	client   healthClient
	onUpdate func(service string, instances []Instance)

	answered       atomic.Bool
	invalidWeights atomic.Uint64

	mu          sync.Mutex
	watches     map[string]*watch
	runCtx      context.Context // set while Run runs
	ran         bool
	wg          sync.WaitGroup
	lastSuccess time.Time
	lastError   string
	lastErrorAt time.Time
}

// watch is one service's watch. Its fields after done are guarded by the
// Watcher's mu.
type watch struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine exited
	prev   chan struct{} // done of the watch this one replaces, or nil

	answered     bool
	instances    []Instance
	index        uint64
	lastSuccess  time.Time
	failingSince time.Time
	failures     int
	lastError    string
	badWeights   map[instanceKey]string
}

// ErrAlreadyRan is returned by a second call of Run.
var ErrAlreadyRan = errors.New("discovery: watcher already ran")

// ErrNoToken reports an empty answer from a Consul agent whose ACLs deny by
// default while no token is configured: the empty list most likely hides
// instances the anonymous token may not read. It counts as a failed query
// (the last snapshot stays in force; readiness fails until Consul answers).
var ErrNoToken = errors.New("consul ACL default policy is deny and no consul.token is set (empty answer)")

// New returns a Watcher for the Consul agent in cfg. onUpdate, if not nil,
// is called with a service's new snapshot each time Consul answers with a
// different set than before (and after the first answer, even if empty).
// Calls for one service are serialized; calls for different services may
// run concurrently. onUpdate must not block for long and must not modify
// the slice. No query is made before Run.
func New(cfg Config, onUpdate func(service string, instances []Instance)) (*Watcher, error) {
	cfg, client, err := cfg.client()
	if err != nil {
		return nil, err
	}
	return newWatcher(cfg, client.Health(), onUpdate), nil
}

func newWatcher(cfg Config, client healthClient, onUpdate func(string, []Instance)) *Watcher {
	if onUpdate == nil {
		onUpdate = func(string, []Instance) {}
	}
	return &Watcher{cfg: cfg, client: client, onUpdate: onUpdate, watches: map[string]*watch{}}
}

// Run starts the watches for the services set so far, keeps starting and
// stopping them as SetServices is called, and returns nil once ctx is done
// and every watch goroutine has exited. It may be called once.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.ran {
		w.mu.Unlock()
		return ErrAlreadyRan
	}
	w.ran = true
	w.runCtx = ctx
	for _, wt := range w.watches {
		w.start(wt)
	}
	w.mu.Unlock()

	<-ctx.Done()

	w.mu.Lock()
	w.runCtx = nil
	for _, wt := range w.watches {
		if wt.cancel != nil {
			wt.cancel()
		}
	}
	w.mu.Unlock()
	w.wg.Wait()
	return nil
}

// SetServices makes services the watched set: watches for new names start
// (when Run is running), watches for names no longer listed stop and their
// snapshots are forgotten. onUpdate is not called for a removed service,
// so a router still finishing messages under the previous rules keeps
// its instances. Duplicates and empty names are ignored.
func (w *Watcher) SetServices(services []string) {
	want := make(map[string]bool, len(services))
	for _, s := range services {
		if s != "" {
			want[s] = true
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	stopped := map[string]chan struct{}{}
	for name, wt := range w.watches {
		if !want[name] {
			if wt.cancel != nil { // started: its goroutine will close done
				wt.cancel()
				stopped[name] = wt.done
			}
			delete(w.watches, name)
		}
	}
	for name := range want {
		if _, ok := w.watches[name]; ok {
			continue
		}
		// A watch replacing a just-stopped one waits for it to exit, so
		// onUpdate calls for one service never overlap or reorder.
		wt := &watch{name: name, done: make(chan struct{}), prev: stopped[name]}
		w.watches[name] = wt
		if w.runCtx != nil {
			w.start(wt)
		}
	}
}

// start launches wt's goroutine. Caller holds mu and Run is running.
func (w *Watcher) start(wt *watch) {
	ctx, cancel := context.WithCancel(w.runCtx)
	wt.cancel = cancel
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(wt.done)
		defer cancel()
		if wt.prev != nil {
			select {
			case <-wt.prev:
			case <-ctx.Done():
				return
			}
		}
		w.loop(ctx, wt)
	}()
}

// Instances returns the last snapshot Consul answered for service, sorted
// by node and ID; nil if the service is not watched or not answered yet.
// The slice is shared: do not modify it.
func (w *Watcher) Instances(service string) []Instance {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt := w.watches[service]; wt != nil {
		return wt.instances
	}
	return nil
}

// Answered reports whether Consul has answered any query successfully
// (the discovery check of /readyz).
func (w *Watcher) Answered() bool { return w.answered.Load() }

// Status is a point-in-time view of discovery's health, for /readyz and
// metrics.
type Status struct {
	// Answered: Consul answered successfully at least once.
	Answered bool `json:"answered"`
	// Degraded: at least one watched service's latest query failed; its
	// last snapshot is still being served.
	Degraded bool `json:"degraded"`
	// LastSuccess is the latest successful answer for any service.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastError is the latest failed query's error ("" if none yet) and
	// LastErrorAt when it happened. Kept after recovery, for diagnosis.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// InvalidWeights counts instances seen with an unusable weight meta
	// (each instance and value once).
	InvalidWeights uint64 `json:"invalid_weights"`
	// Services holds one entry per watched service.
	Services map[string]ServiceStatus `json:"services"`
}

// ServiceStatus is one watched service's state.
type ServiceStatus struct {
	// Answered: Consul answered for this service at least once.
	Answered bool `json:"answered"`
	// Instances is the size of the snapshot being served.
	Instances int `json:"instances"`
	// Index is the Consul index the next blocking query waits on.
	Index uint64 `json:"index"`
	// LastSuccess is the latest successful answer.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// FailingSince is the first failure of the current run of failed
	// queries; zero while queries succeed.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// Failures counts consecutive failed queries.
	Failures int `json:"failures"`
	// LastError is the error of the latest query if it failed, else "".
	LastError string `json:"last_error,omitempty"`
}

// Staleness is how long the served snapshot has gone unconfirmed: zero
// while queries succeed (a blocking query confirms it continuously), else
// the time since the last successful answer (or since the first failure,
// if Consul never answered).
func (s ServiceStatus) Staleness(now time.Time) time.Duration {
	if s.FailingSince.IsZero() {
		return 0
	}
	if s.LastSuccess.IsZero() {
		return now.Sub(s.FailingSince)
	}
	return now.Sub(s.LastSuccess)
}

// Status returns a copy of the current state.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := Status{
		Answered:       w.answered.Load(),
		LastSuccess:    w.lastSuccess,
		LastError:      w.lastError,
		LastErrorAt:    w.lastErrorAt,
		InvalidWeights: w.invalidWeights.Load(),
		Services:       make(map[string]ServiceStatus, len(w.watches)),
	}
	for _, name := range slices.Sorted(maps.Keys(w.watches)) {
		wt := w.watches[name]
		st.Services[name] = ServiceStatus{
			Answered:     wt.answered,
			Instances:    len(wt.instances),
			Index:        wt.index,
			LastSuccess:  wt.lastSuccess,
			FailingSince: wt.failingSince,
			Failures:     wt.failures,
			LastError:    wt.lastError,
		}
		if wt.failures > 0 {
			st.Degraded = true
		}
	}
	return st
}
