package subscriptions

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/msgroute/gateway/discovery"
	"github.com/msgroute/gateway/rules"
)

// Subscription states in Status and the gateway_subscriptions metric.
const (
	StateActive  = "active"
	StateInvalid = "invalid"
)

// Config configures a Registry. The zero value is valid.
type Config struct {
	// Streams is the allow-list of streams a declaration may name
	// (config consul.subscription_streams). Default nil: every stream;
	// the gateway passes its consumed streams.
	Streams []string
	// Logger receives one line per change of a subscription's state.
	// Default slog.Default().
	Logger *slog.Logger
}

// Deps are the Registry's outputs. Every callback is called with the
// Registry's lock held, so calls are serialized and in order; they must
// not call back into the Registry.
type Deps struct {
	// Publish receives each new composed rule set (file routes plus active
	// subscriptions). Required.
	Publish func(*rules.Set)
	// Watch receives the services discovery must follow: those the file
	// rules name and every service in the catalog. Optional.
	Watch func(services []string)
	// Count receives the number of active and invalid subscriptions after
	// every change. Optional.
	Count func(active, invalid int)
}

// Status is one subscription (one service, NAME and declared value) as
// shown in GET /rules.
type Status struct {
	Service string `json:"service"`
	Name    string `json:"name"`
	// Route is the route name, SERVICE/NAME.
	Route string `json:"route"`
	// Instances are the IDs of the healthy instances declaring it.
	Instances []string `json:"instances"`
	State     string   `json:"state"`
	Error     string   `json:"error,omitempty"`
	// Key identifies the declared value (discovery.DeclarationKey).
	Key string `json:"key"`
	// Declaration is the meta value as registered.
	Declaration string `json:"declaration"`
	Matches     uint64 `json:"matches"`
}

// Registry turns the subscriptions that healthy instances declare in
// Consul into routes and publishes the file rules composed with them. It
// is the one place that knows both: discovery reports instances (Update)
// and the service catalog (SetCatalog), the rules watcher reports file
// sets (SetRules). Every call recomposes what changed and publishes a new
// immutable set before it returns, so a change reaches the router as soon
// as Consul's answer does. All methods are safe for concurrent use.
type Registry struct {
	cfg  Config
	deps Deps

	mu       sync.Mutex
	file     *rules.Set
	catalog  []string                        // sorted; nil until the first answer
	declared map[string][]discovery.Instance // by service: instances with declarations
	cache    map[variantID]*variant          // compiled declarations in use
	status   atomic.Pointer[[]Status]
}

// variantID identifies one declared value of one NAME of one service.
type variantID struct{ service, key string }

// variant is a compiled declaration: a route, or why it is invalid.
type variant struct {
	service, name, value, key string
	route                     *rules.Route
	err                       error
}

// New returns a Registry that composes file (the rule set loaded at start)
// with subscriptions. It publishes nothing until the first call.
func New(cfg Config, file *rules.Set, deps Deps) *Registry {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Registry{cfg: cfg, deps: deps, file: file,
		declared: map[string][]discovery.Instance{}, cache: map[variantID]*variant{}}
	r.status.Store(&[]Status{})
	return r
}

// SetRules installs a new file rule set and publishes it with the current
// subscriptions.
func (r *Registry) SetRules(set *rules.Set) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.file = set
	r.forgetUnwatched()
	r.watch()
	r.compose()
}

// SetCatalog records the services in Consul's catalog that have meta.
func (r *Registry) SetCatalog(services []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.catalog = slices.Clone(services)
	changed := r.forgetUnwatched()
	r.watch()
	if changed {
		r.compose()
	}
}

// forgetUnwatched drops the declarations of services discovery stops
// watching (in neither the catalog nor the file rules): it will not report
// them again, and they have no instance with meta. A service still
// watched keeps what its last snapshot said; only discovery updates it.
// Caller holds mu.
func (r *Registry) forgetUnwatched() bool {
	changed := false
	for svc := range r.declared {
		if !r.watched(svc) {
			delete(r.declared, svc)
			changed = true
		}
	}
	return changed
}

// watched reports whether discovery follows service: it is in the catalog
// or the file rules name it. Caller holds mu.
func (r *Registry) watched(service string) bool {
	_, listed := slices.BinarySearch(r.catalog, service)
	return listed || slices.Contains(r.file.Services(), service)
}

// Update records a service's healthy instances (a discovery snapshot) and
// republishes when the declarations among them changed. A service neither
// in the catalog nor named by the file rules is ignored (discovery no
// longer watches it). instances is not modified or retained beyond its
// elements.
func (r *Registry) Update(service string, instances []discovery.Instance) {
	var decl []discovery.Instance
	for _, in := range instances {
		if len(in.Declarations) > 0 {
			decl = append(decl, in)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.watched(service) {
		// A late answer of a watch just stopped (the service left the
		// catalog): forgetUnwatched already dropped it, keep it dropped.
		return
	}
	if sameDeclarations(r.declared[service], decl) {
		return
	}
	if len(decl) == 0 {
		delete(r.declared, service)
	} else {
		r.declared[service] = decl
	}
	r.compose()
}

// Status returns the subscriptions, sorted by service, name and key, with
// their routes' match counts.
func (r *Registry) Status() []Status {
	st := *r.status.Load()
	out := slices.Clone(st)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range out {
		if v := r.cache[variantID{out[i].Service, out[i].Key}]; v != nil && v.route != nil {
			out[i].Matches = v.route.Matches()
		}
	}
	return out
}

// watch reports the services discovery must follow. Caller holds mu.
func (r *Registry) watch() {
	if r.deps.Watch == nil {
		return
	}
	services := slices.Clone(r.file.Services())
	for _, s := range r.catalog {
		if !slices.Contains(services, s) {
			services = append(services, s)
		}
	}
	slices.Sort(services)
	r.deps.Watch(services)
}

// compose compiles new declarations, publishes the composed set and logs
// what changed. Caller holds mu.
func (r *Registry) compose() {
	byID := map[variantID][]string{} // declaring instances
	var ids []variantID
	next := make(map[variantID]*variant, len(r.cache))
	for svc, insts := range r.declared {
		for _, in := range insts {
			for _, d := range in.Declarations {
				id := variantID{svc, d.Key}
				if _, seen := byID[id]; !seen {
					ids = append(ids, id)
					v := r.cache[id]
					if v == nil {
						v = &variant{service: svc, name: d.Name, value: d.Value, key: d.Key}
						v.route, v.err = rules.CompileSubscription(svc, d.Name, d.Value, d.Key, r.cfg.Streams)
					}
					next[id] = v
				}
				byID[id] = append(byID[id], in.ID)
			}
		}
	}
	slices.SortFunc(ids, func(a, b variantID) int {
		va, vb := next[a], next[b]
		return cmp.Or(cmp.Compare(va.service, vb.service), cmp.Compare(va.name, vb.name), cmp.Compare(va.key, vb.key))
	})
	var routes []*rules.Route
	status := make([]Status, 0, len(ids))
	active, invalid := 0, 0
	for _, id := range ids {
		v := next[id]
		insts := byID[id]
		slices.Sort(insts)
		st := Status{Service: v.service, Name: v.name, Route: v.service + "/" + v.name, Instances: insts,
			State: StateActive, Key: v.key, Declaration: v.value}
		if fr := r.fileRoute(st.Route); fr != nil && v.err == nil {
			// Checked here, not cached: the file rules may change.
			st.State, st.Error = StateInvalid, fmt.Sprintf("%v: route name %q is taken by the rules file route at %s:%d",
				rules.ErrDeclaration, st.Route, fr.File, fr.Line)
			invalid++
		} else if v.err != nil {
			st.State, st.Error = StateInvalid, v.err.Error()
			invalid++
		} else {
			routes = append(routes, v.route)
			active++
		}
		status = append(status, st)
	}
	r.logChanges(status)
	r.cache = next
	// Publish before the status shows the change: once /rules lists a
	// subscription, messages read from then on are matched against it.
	r.deps.Publish(r.file.WithSubscriptions(routes))
	r.status.Store(&status)
	if r.deps.Count != nil {
		r.deps.Count(active, invalid)
	}
}

// fileRoute returns the file route named name, or nil.
func (r *Registry) fileRoute(name string) *rules.Route {
	for _, fr := range r.file.Routes() {
		if fr.Name == name {
			return fr
		}
	}
	return nil
}

// logChanges logs each subscription that appeared, changed state (or
// error) or went away since the last composition: once per change, never
// per Consul answer.
func (r *Registry) logChanges(next []Status) {
	prev := map[variantID]Status{}
	for _, st := range *r.status.Load() {
		prev[variantID{st.Service, st.Key}] = st
	}
	for _, st := range next {
		id := variantID{st.Service, st.Key}
		old, seen := prev[id]
		delete(prev, id)
		switch {
		case seen && old.State == st.State && old.Error == st.Error:
		case st.State == StateInvalid:
			r.cfg.Logger.Warn("subscription declaration rejected", "service", st.Service, "route", st.Route,
				"key", st.Key, "instances", st.Instances, "err", st.Error)
		default:
			r.cfg.Logger.Info("subscription active", "service", st.Service, "route", st.Route,
				"key", st.Key, "instances", st.Instances)
		}
	}
	for _, st := range prev {
		r.cfg.Logger.Info("subscription removed", "service", st.Service, "route", st.Route, "key", st.Key)
	}
}

// sameDeclarations reports whether two snapshots' declaring instances are
// the same (by ID and declarations; snapshots are sorted).
func sameDeclarations(a, b []discovery.Instance) bool {
	return slices.EqualFunc(a, b, func(x, y discovery.Instance) bool {
		return x.ID == y.ID && x.Node == y.Node && slices.Equal(x.Declarations, y.Declarations)
	})
}
