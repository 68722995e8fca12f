package rules

import (
	"fmt"
	"strconv"
	"strings"
)

// Match appends to dst the routes message m takes, in evaluation order
// (highest priority first, then file order), and returns the extended slice.
// It stops at the first matching route unless that route has continue: true.
// When nothing matched and the default action is ActionRoute, it appends the
// synthetic "default" route. A route whose match expression fails at run time
// does not match; the failure is counted in its EvalErrors.
//
// The payload is decoded at most once, and only when a candidate route (or the
// index) reads the body or a matched route has a schema. Match is safe for
// concurrent use and counts into Route.Matches.
func (s *Set) Match(m *Message, dst []Match) []Match {
	return s.match(m, dst, true)
}

func (s *Set) match(m *Message, dst []Match, count bool) []Match {
	first := len(dst)
	st := s.getState()
	defer s.putState(st)
	st.reset(m, s.uses, s.shape)
	if s.shape != nil {
		st.reuseMaps(s.shapeNodes)
	}
	s.idx.start(st)

	matched := false
	for {
		i, ok := st.next()
		if !ok {
			break
		}
		r := s.routes[i]
		if !r.acceptsStream(m.Stream) || !st.eval(r, count) {
			continue
		}
		matched = true
		if count {
			r.matches.Add(1)
		}
		dst = append(dst, st.resolve(r))
		if !r.Continue {
			break
		}
	}
	if !matched && s.defRoute != nil {
		if count {
			s.defRoute.matches.Add(1)
		}
		dst = append(dst, Match{Route: s.defRoute, Path: s.defRoute.Path})
	}
	if len(s.subs) > 0 {
		dst = s.matchSubscriptions(st, m, dst, count)
	}
	if st.state == bodyJSON {
		for i := first; i < len(dst); i++ {
			dst[i].JSON = true
		}
	}
	return dst
}

// eval runs r's match expression (what the index left of it). Run-time
// errors are a no-match.
func (st *evalState) eval(r *Route, count bool) bool {
	if r.eval == nil {
		return true
	}
	if r.readsBody {
		st.decodeBody()
	}
	if r.fast != nil {
		ok, err := r.fast.eval(st)
		if err != nil && count {
			r.evalErrors.Add(1)
		}
		return ok && err == nil
	}
	out, err := st.run(r.eval)
	if err != nil {
		if count {
			r.evalErrors.Add(1)
		}
		return false
	}
	b, _ := out.(bool)
	return b
}

// resolve checks the schema and computes the path of a matched route.
func (st *evalState) resolve(r *Route) Match {
	mt := Match{Route: r, Path: r.Path}
	if r.schema != nil {
		body, state := st.decodeBody()
		if state != bodyJSON {
			mt.Err = fmt.Errorf("%w: payload is not JSON", ErrSchema)
			return mt
		}
		if err := r.schema.Validate(body); err != nil {
			mt.Err = fmt.Errorf("%w: %s", ErrSchema, schemaErrorText(err))
			return mt
		}
	}
	if r.pathExpr != nil {
		if r.pathExpr.uses&usesBody != 0 {
			st.decodeBody()
		}
		out, err := st.run(r.pathExpr.prog)
		if err != nil {
			mt.Err = fmt.Errorf("%w: %s", ErrPath, oneLine(err.Error()))
			return mt
		}
		p, ok := out.(string)
		switch {
		case !ok:
			mt.Err = fmt.Errorf("%w: result is %T, not a string", ErrPath, out)
		case !ValidPath(p):
			mt.Err = fmt.Errorf("%w: result %q %s", ErrPath, p, pathRule)
		default:
			mt.Path = p
		}
		if mt.Err != nil {
			return mt
		}
	}
	if r.orderKey != nil {
		mt.Key, mt.Err = st.key(r.orderKey)
	}
	return mt
}

// key evaluates an order_key program. Strings are used as they are, numbers
// (JSON ids) in their shortest decimal form; anything else, a run-time
// error or an empty key is an ErrOrderKey.
func (st *evalState) key(p *program) (string, error) {
	if p.uses&usesBody != 0 {
		st.decodeBody()
	}
	out, err := st.run(p.prog)
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrOrderKey, oneLine(err.Error()))
	}
	var k string
	switch v := out.(type) {
	case string:
		k = v
	case int:
		k = strconv.Itoa(v)
	case int64:
		k = strconv.FormatInt(v, 10)
	case float64:
		k = strconv.FormatFloat(v, 'f', -1, 64)
	case nil:
		return "", fmt.Errorf("%w: result is nil (a missing field?), not a string", ErrOrderKey)
	default:
		return "", fmt.Errorf("%w: result is %T, not a string", ErrOrderKey, out)
	}
	if k == "" {
		return "", fmt.Errorf("%w: key is empty", ErrOrderKey)
	}
	return k, nil
}

// oneLine keeps the first line of a multi-line library error (expr adds a
// source snippet, jsonschema a tree of causes), which is what fits in a
// dead-letter field.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Explanation is one route a message would take, in a JSON-friendly form for
// `gateway explain` and POST /explain.
type Explanation struct {
	Route    string   `json:"route"`
	Service  string   `json:"service"`
	Method   string   `json:"method"`
	Path     string   `json:"path"`
	Tags     []string `json:"tags"`
	Priority int      `json:"priority"`
	Continue bool     `json:"continue"`
	// OrderKey is the message's key on a route with order_key.
	OrderKey string `json:"order_key,omitempty"`
	Batch    *Batch `json:"batch,omitempty"`
	// Subscription: declared in Consul by the instances of Service.
	Subscription bool   `json:"subscription,omitempty"`
	Error        string `json:"error,omitempty"` // why the message cannot go on this route
}

// Explain reports the routes m would take, like Match, without counting into
// the routes' counters. The result is never nil, so it encodes as a JSON array.
func (s *Set) Explain(m *Message) []Explanation {
	matches := s.match(m, nil, false)
	out := make([]Explanation, 0, len(matches))
	for _, mt := range matches {
		e := Explanation{
			Route:        mt.Route.Name,
			Service:      mt.Route.Service,
			Method:       mt.Route.Method,
			Path:         mt.Path,
			Tags:         mt.Route.Tags,
			Priority:     mt.Route.Priority,
			Continue:     mt.Route.Continue,
			OrderKey:     mt.Key,
			Batch:        mt.Route.Batch,
			Subscription: mt.Route.Subscription,
		}
		if e.Tags == nil {
			e.Tags = []string{}
		}
		if mt.Err != nil {
			e.Error = mt.Err.Error()
		}
		out = append(out, e)
	}
	return out
}
