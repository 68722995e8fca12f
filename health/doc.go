// Package health is the admin HTTP server: /healthz, /readyz, /metrics,
// /rules, /instances and POST /explain. It reports state through the
// functions it is given and never makes routing decisions.
package health
