// Package subscriptions lets service instances declare, in their Consul
// service meta, the messages they consume: keys gateway-sub-NAME whose
// values are JSON objects with the route fields stream, match, method,
// path, path_expr, timeout and order_key.
//
// A Registry collects the declarations of the healthy instances discovery
// reports, compiles each distinct (service, value) once with
// rules.CompileSubscription, and publishes the file rule set composed with
// the valid ones (rules.Set.WithSubscriptions) each time either changes.
// A declaration that does not compile is left out alone and reported in
// Status. The router keeps loading one set per message, so messages in
// flight finish under the set they started with.
//
// Delivery rule: each distinct value of gateway-sub-NAME is its own route
// variant (named SERVICE/NAME, like the others), delivered only to the
// instances that declared exactly that value. During a rolling upgrade
// that changes a declaration, old instances get what the old value
// matches and new instances what the new one matches.
package subscriptions
