// Package backend is a configurable HTTP service standing in for the
// gateway's downstream instances: it answers every request with a small JSON
// acknowledgement after a modelled latency (fixed or lognormal, optionally
// scaled) and fails a chosen fraction of requests with 503.
//
// It counts what it receives (requests, errors, requests in flight and the
// maximum in flight ever observed) so that cmd/demoservice can run it as a
// standalone process and bench/ can run many in-process and read their
// counters directly. It also registers instances with Consul.
package backend
