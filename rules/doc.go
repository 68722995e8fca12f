// Package rules turns rules files into a compiled, immutable rule set and
// answers which routes a message takes. It is the pure core of the gateway's
// pipeline: the router loads a *Set once per message (hot reload swaps whole
// sets) and calls Set.Match; nothing here does I/O apart from reading rules
// and schema files in Load and Compile, starts goroutines, or logs.
//
// # Rules files
//
// The format is the one in the product contract (routes with name, streams,
// match, priority, service, tags, method, path, path_expr, timeout, retries,
// continue, schema, order_key; and default with action and service). Unknown keys,
// repeated keys, expressions that do not compile or type-check, and
// duplicate route names are errors reported as "file:line: message" with the
// route's name; a set with any error is rejected whole. A route without
// match takes every message on its streams. The name "default" is reserved
// for the synthetic default route.
//
// Expressions (github.com/expr-lang/expr) see stream, id, headers (map of
// attributes; a missing attribute reads as ""), payload, body (decoded JSON,
// nil when the payload is not JSON) and deliveries. A match expression that
// fails at run time, such as body.total > 1000 with a string total, is a
// no-match for that route and is counted in Route.EvalErrors.
//
// # Evaluation
//
// Routes are evaluated highest priority first, then in file order (files in
// load order). The first matching route wins unless it has continue: true,
// in which case evaluation goes on (fan-out). Set.Match does not scan every
// route: routes whose match requires stream, an attribute or a body string
// field to equal a constant (a top-level && conjunct like
// headers.type == "order.created", or an `in` list of constants, or a
// streams filter) are indexed by that value, and only the routes indexed
// under the message's own values, plus those that could not be indexed, are
// evaluated, each without the conjunct the index already decided. The
// result is the same as a linear scan's (a differential test and fuzz
// target hold Match to that), except that a route the index ruled out is
// not evaluated and so cannot count an evaluation error.
//
// The payload is decoded at most once per message, only when a candidate
// route reads body, and only as far as the set's expressions can observe:
// for rules reading body.total and body.customer.tier, other fields are
// skipped (but still validated, so a payload is JSON or not regardless).
// A route with a schema makes the whole body observable.
//
// # Rule tests
//
// RunTests runs a YAML file of cases against the rules it names, for
// `gateway test`:
//
//	rules: rules.yaml            # file or directory, relative to this file
//	cases:
//	  - name: big eu order goes to priority   # required, unique
//	    stream: orders
//	    id: 1700000000000-0                   # optional, default 0-1
//	    deliveries: 1                         # optional, default 1
//	    fields: {type: order.created}         # attributes and reserved fields
//	    payload: '{"total": 1500, "region": "eu"}'  # a string is sent verbatim;
//	                                          # a YAML mapping or list is JSON-encoded
//	    expect: [eu-big-orders]               # route names taken, in order
//
// expect is required: [] means no route matched (the default action is dlq
// or drop), [default] means the default route took the message. A route that
// matched but whose schema or path_expr fails still counts as taken (the
// message is dead-lettered from it); the report notes the error.
// testdata/rules_test.yaml is a working example.
package rules
