// Package discovery watches Consul for the healthy instances of the
// services the active rules route to, and publishes them as immutable
// snapshots: to a callback (the balancer's Update) on every change, and on
// demand through Instances.
//
// Each watched service has one goroutine running Consul blocking queries
// against the health endpoint (passing instances only, stale reads
// allowed), rate-limited and with jittered, capped exponential backoff on
// errors. While Consul is unreachable the last snapshot stays in force:
// only a successful answer can shrink a service's set.
package discovery
