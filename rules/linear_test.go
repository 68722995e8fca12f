package rules

import "github.com/expr-lang/expr"

// linearMatch is the reference semantics: evaluate every route in order with
// a fully built environment. The indexed Match must agree with it.
func linearMatch(s *Set, m *Message) []Match {
	env := map[string]any{
		varStream: m.Stream, varID: m.ID, varHeaders: m.Headers,
		varPayload: m.Payload, varDeliveries: int(m.Deliveries),
	}
	body, _ := decodeJSON(m.Payload)
	env[varBody] = body
	var out []Match
	for _, r := range s.routes {
		if !r.acceptsStream(m.Stream) {
			continue
		}
		if r.match != nil {
			v, err := expr.Run(r.match.prog, env)
			if b, _ := v.(bool); err != nil || !b {
				continue
			}
		}
		out = append(out, Match{Route: r})
		if !r.Continue {
			break
		}
	}
	if len(out) == 0 && s.defRoute != nil {
		out = append(out, Match{Route: s.defRoute})
	}
	return out
}
