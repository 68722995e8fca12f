package rules

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// MaxDeclarationBytes is the largest declaration value accepted: Consul's
// own limit on a service meta value.
const MaxDeclarationBytes = 512

// declarationFields are the route fields a subscription declaration may set
// (CONTRACT, "Subscriptions declared in Consul"). Everything else a rules
// file route has (name, service, priority, tags, retries, continue, schema,
// ...) is fixed by the gateway or not offered to services.
var declarationFields = []string{"stream", "match", "method", "path", "path_expr", "timeout", "order_key"}

// ErrDeclaration marks every error of CompileSubscription; decide with
// errors.Is.
var ErrDeclaration = errors.New("invalid subscription declaration")

// CompileSubscription compiles the subscription that service declares
// under meta key gateway-sub-NAME with value decl (a JSON object with
// stream, match and optionally method, path, path_expr, timeout,
// order_key). The value goes through the same compiler as a rules file
// route, so it gets the same checks and error messages. streams is the
// allow-list of streams a subscription may read; nil allows every stream.
//
// The route is named SERVICE/NAME, reads its one stream, takes a copy of
// every message it matches (Set.WithSubscriptions evaluates subscriptions
// beside the file routes) and asks for instances carrying tag key (the
// declaration's discovery.DeclarationKey), so only the instances that
// declared exactly this value receive it. Errors wrap ErrDeclaration and
// name the field at fault.
func CompileSubscription(service, name, decl, key string, streams []string) (*Route, error) {
	fail := func(format string, args ...any) (*Route, error) {
		return nil, fmt.Errorf("%w: %s", ErrDeclaration, fmt.Sprintf(format, args...))
	}
	switch {
	case !validSubscriptionName(name):
		return fail("name %q must be lower-case letters, digits and '-' (meta key gateway-sub-NAME)", name)
	case !validName(service):
		return fail("service %q must not contain spaces or control characters", service)
	case len(decl) > MaxDeclarationBytes:
		return fail("value is %d bytes, more than Consul's limit of %d for a meta value", len(decl), MaxDeclarationBytes)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(decl), &fields); err != nil || fields == nil {
		return fail("value must be a JSON object with stream and match: %s", jsonErrorText(err))
	}
	for k := range fields {
		if !slices.Contains(declarationFields, k) {
			return fail("unknown field %q (allowed: %s)", k, strings.Join(declarationFields, ", "))
		}
	}
	// JSON is YAML: the declaration parses into the node tree rules files
	// give the compiler, where "stream" becomes the route's one-element
	// "streams" and the gateway adds name, service and continue.
	root, perr := parseDocument([]byte(decl))
	if perr != nil || root == nil {
		return fail("value must be a JSON object")
	}
	var stream string
	var node yaml.Node
	node.Kind, node.Tag = yaml.MappingNode, "!!map"
	add := func(k string, v *yaml.Node) {
		node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, v)
	}
	str := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
	routeName := service + "/" + name
	add("name", str(routeName))
	add("service", str(service))
	hasMatch := false
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			return fail("field %q repeated", k.Value)
		}
		seen[k.Value] = true
		switch k.Value {
		case "stream":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || strings.TrimSpace(v.Value) == "" {
				return fail("stream must be one stream name (a non-empty string)")
			}
			stream = v.Value
			add("streams", &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{str(stream)}})
			continue
		case "match":
			hasMatch = true
		}
		if v.Kind == yaml.ScalarNode && v.Tag != "!!str" && v.Tag != "!!null" {
			return fail("%s must be a string", k.Value)
		}
		add(k.Value, v)
	}
	switch {
	case stream == "":
		return fail("stream is required")
	case !hasMatch:
		return fail("match is required")
	case streams != nil && !slices.Contains(streams, stream):
		return fail("stream %q is not one subscriptions may read (consul.subscription_streams: %s)", stream, strings.Join(streams, ", "))
	}
	c := &compiler{names: map[string]*Route{}, schemas: map[string]*jsonschema.Schema{},
		hash: sha256.New(), schemaC: jsonschema.NewCompiler()}
	r := c.compileRoute(DeclarationSource, &node)
	if r == nil || len(c.problems) > 0 {
		msgs := make([]string, 0, len(c.problems))
		for _, p := range c.problems {
			msgs = append(msgs, p.Message)
		}
		return fail("%s", strings.Join(msgs, "; "))
	}
	r.Line = 0
	r.Continue = true
	r.Tags = []string{key}
	r.Subscription = true
	r.settleKey = routeName + " " + key
	return r, nil
}

// DeclarationSource is the File of routes compiled from Consul declarations.
const DeclarationSource = "consul"

func jsonErrorText(err error) string {
	if err == nil {
		return "got null"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "got a JSON " + te.Value
	}
	return err.Error()
}

// validSubscriptionName reports whether name matches [a-z0-9-]+.
func validSubscriptionName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// WithSubscriptions returns a set with the file routes, default and
// version of s and the given subscription routes (from
// CompileSubscription), replacing any s already had. s is not modified;
// both stay safe for concurrent use. subs are evaluated after the file
// routes and the default route, each on its own: a subscription takes a
// copy of every message it matches whatever the file routes did, and a
// message only subscriptions match is routed (it is not unmatched).
// Subscriptions with the same name (instances declaring one NAME with
// different values) are evaluated in the order given.
func (s *Set) WithSubscriptions(subs []*Route) *Set {
	if s.base != nil {
		s = s.base
	}
	n := &Set{
		version: s.version, files: s.files, schemas: s.schemas, loadedAt: s.loadedAt,
		routes: s.routes, def: s.def, defRoute: s.defRoute, idx: s.idx, uses: s.uses,
		shape: s.shape, shapeNodes: s.shapeNodes, services: s.services,
		base: s, subs: subs,
	}
	if len(subs) == 0 {
		return n
	}
	n.subIdx = indexRoutes(subs, false)
	services := slices.Clone(s.services)
	for _, r := range subs {
		if r.match != nil {
			n.uses |= r.match.uses
		}
		if r.pathExpr != nil {
			n.uses |= r.pathExpr.uses
		}
		if !slices.Contains(services, r.Service) {
			services = append(services, r.Service)
		}
	}
	slices.Sort(services)
	n.services = services
	n.shape = bodyShape(append(slices.Clone(s.routes), subs...))
	n.shapeNodes = 0
	if n.shape != nil {
		n.shapeNodes = n.shape.number()
	}
	return n
}

// Subscriptions returns the subscription routes added by WithSubscriptions
// (nil for a set loaded from files). The slice must not be modified.
func (s *Set) Subscriptions() []*Route { return s.subs }

// matchSubscriptions appends the subscriptions m matches, narrowed by
// their own index (filed by stream and equality conjuncts like the file
// routes, but each evaluated whole).
func (s *Set) matchSubscriptions(st *evalState, m *Message, dst []Match, count bool) []Match {
	st.lists, st.pos = st.lists[:0], st.pos[:0]
	s.subIdx.start(st)
	for {
		i, ok := st.next()
		if !ok {
			break
		}
		r := s.subs[i]
		if !r.acceptsStream(m.Stream) || !st.eval(r, count) {
			continue
		}
		if count {
			r.matches.Add(1)
		}
		dst = append(dst, st.resolve(r))
	}
	return dst
}
