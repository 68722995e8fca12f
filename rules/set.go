package rules

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Source is one rules file's name and contents, as given to Compile. Name is
// used in problems and to resolve schema paths (relative to its directory).
type Source struct {
	Name string
	Data []byte
}

// Action is what happens to a message no route matched.
type Action string

// Default actions.
const (
	ActionDLQ   Action = "dlq"   // dead-letter with reason no_route (the default)
	ActionDrop  Action = "drop"  // acknowledge and forget
	ActionRoute Action = "route" // send to Default.Service through the synthetic route "default"
)

// DefaultRouteName is the name of the synthetic route Match returns when no
// route matched and the default action is ActionRoute.
const DefaultRouteName = "default"

// Default is the rule set's handling of unmatched messages.
type Default struct {
	Action  Action // ActionDLQ when the rules do not say
	Service string // only with ActionRoute
}

// Route is one compiled route. Its exported fields are read-only after
// Compile; the match counters are the only mutable part and are atomic, so a
// Route is safe for concurrent use.
type Route struct {
	Name    string
	Service string
	Method  string   // upper case; "POST" when the rules do not say
	Streams []string // nil: every consumed stream
	Tags    []string // instances must carry all of these
	// Priority orders evaluation: higher first, then file order.
	Priority int
	Retries  int           // extra attempts on another instance
	Timeout  time.Duration // per attempt; 0 = the dispatcher's default
	Continue bool          // later matching routes also take the message
	Batch    *Batch        // nil: one request per message
	// MatchExpr, Path, PathExpr and Schema are the rules as written, for
	// display; Match resolves the path.
	MatchExpr string // "" = matches every message on its streams
	Path      string // static path, "/" when not set
	PathExpr  string
	// OrderKey is the order_key expression as written; "" = unordered.
	// Messages of the route with equal keys are delivered one at a time,
	// in stream order (see Match.Key).
	OrderKey string
	Schema   string // schema file as written in the rules
	// OnFailure is the stream a failure event is written to when this
	// route dead-letters a message; "" = none.
	OnFailure string
	File      string // rules file and line where the route's entry starts
	Line      int
	// Subscription: declared by instances in Consul (CompileSubscription),
	// not written in a rules file.
	Subscription bool
	settleKey    string // "" = Name

	streamSet  map[string]struct{}
	match      *program    // as written; nil: always true
	eval       *vm.Program // what Match runs: match minus the indexed conjunct; nil: always true
	fast       *pred       // eval without the VM, when it has a shape pred covers; nil: run eval
	pathExpr   *program
	orderKey   *program
	schema     *jsonschema.Schema
	readsBody  bool // eval reads body
	matches    atomic.Uint64
	evalErrors atomic.Uint64
}

// SettleKey tells apart the routes one message matched, for remembering
// which of them reached a final outcome: the name, and for a subscription
// also its declaration key, since the variants of one subscription
// (instances declaring one NAME with different values) share a name.
func (r *Route) SettleKey() string {
	if r.settleKey != "" {
		return r.settleKey
	}
	return r.Name
}

// Matches reports how many messages this route has matched through Set.Match.
func (r *Route) Matches() uint64 { return r.matches.Load() }

// EvalErrors reports how many times evaluating this route's match expression
// failed at run time (each counted as a no-match). Routes the index ruled out
// for a message are not evaluated, so they cannot fail.
func (r *Route) EvalErrors() uint64 { return r.evalErrors.Load() }

func (r *Route) acceptsStream(stream string) bool {
	if r.streamSet == nil {
		return true
	}
	_, ok := r.streamSet[stream]
	return ok
}

// Match is one route a message takes.
type Match struct {
	Route *Route
	// Path is the request path: the path_expr result, else the route's path,
	// else "/".
	Path string
	// Key is the order_key result when the route has one (Route.OrderKey
	// != ""): never empty when Err is nil.
	Key string
	// Err is non-nil when the route matched but the message cannot be sent on
	// it; it wraps ErrSchema, ErrPath or ErrOrderKey.
	Err error
	// JSON reports that matching decoded the payload and found it one JSON
	// value, which encoding/json.Valid accepts too (so a consumer that
	// embeds the payload raw need not scan it again). false says nothing:
	// the payload was not decoded (no rule read the body) or is not JSON.
	JSON bool
}

// Set is a compiled, validated rule set. It is immutable after Compile (apart
// from the routes' atomic counters) and safe for concurrent use; hot reload
// replaces a whole Set.
type Set struct {
	version  string
	files    []string
	schemas  []string
	loadedAt time.Time
	routes   []*Route // evaluation order
	def      Default
	defRoute *Route // synthetic route for ActionRoute, else nil
	services []string
	remarks  []Problem // warnings found while compiling (Check reports them)
	uses     varSet    // variables any expression reads
	shape    *shape    // the part of the body expressions observe; nil: all
	// shapeNodes is the number of nodes of shape (ids 0..shapeNodes-1).
	shapeNodes int
	idx        index
	states     sync.Pool // *evalState
	// Subscriptions (WithSubscriptions): evaluated after the file routes,
	// each independently. base is the file-only set they were added to.
	base   *Set
	subs   []*Route
	subIdx index // over subs; nil buckets when there are none
}

// Version is the hex SHA-256 of the sources (each file's name and contents,
// in load order, followed by the schema files the routes use).
func (s *Set) Version() string { return s.version }

// Files lists the rules files the set was built from, in load order.
func (s *Set) Files() []string { return s.files }

// SchemaFiles lists the absolute paths of the JSON Schema files the routes
// use, sorted, so a watcher can reload when one changes.
func (s *Set) SchemaFiles() []string { return s.schemas }

// LoadedAt is when the set was compiled.
func (s *Set) LoadedAt() time.Time { return s.loadedAt }

// Routes returns the routes in evaluation order. The synthetic default route
// is not included. The slice must not be modified.
func (s *Set) Routes() []*Route { return s.routes }

// Services lists, sorted and without duplicates, every service a route (or
// the default route) targets, so discovery knows what to watch.
func (s *Set) Services() []string { return s.services }

// Default returns how unmatched messages are handled.
func (s *Set) Default() Default { return s.def }

// DefaultRoute returns the synthetic route used when the default action is
// ActionRoute, or nil. Its counters count default-routed messages.
func (s *Set) DefaultRoute() *Route { return s.defRoute }

func (s *Set) getState() *evalState {
	if st, ok := s.states.Get().(*evalState); ok {
		return st
	}
	return newEvalState()
}

func (s *Set) putState(st *evalState) {
	st.release()
	s.states.Put(st)
}

// vmRun runs a program on the state's VM and environment.
func (st *evalState) run(p *vm.Program) (any, error) {
	return st.vm.Run(p, st.env)
}

// OrderedStreams returns, in the order given, those of consumed that a route
// with order_key reads (a file route or a subscription): such streams must
// be read by one consumer at a time.
func (s *Set) OrderedStreams(consumed []string) []string {
	var out []string
	for _, st := range consumed {
		if slices.ContainsFunc(s.routes, func(r *Route) bool { return r.orderKey != nil && r.acceptsStream(st) }) ||
			slices.ContainsFunc(s.subs, func(r *Route) bool { return r.orderKey != nil && r.acceptsStream(st) }) {
			out = append(out, st)
		}
	}
	return out
}
